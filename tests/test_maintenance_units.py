"""Pure parts of the maintenance checks: index coverage, the bloat estimate, the
pg_stat_statements column choice, the workload filter, and the `[maintenance]` contract."""

from __future__ import annotations

import datetime as dt
import math
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fixtures.probes import maintenance as pm
from plugins.contract.maintenance import create_index_statement, parse
from plugins.contract.toml_schema import ConfigError
from plugins.contract.verdict import Undecidable

ROOT = Path(__file__).resolve().parents[1]


def index(columns: tuple[str | None, ...], *, key_columns: int | None = None, partial: bool = False,
          usable: bool = True, method: str = "btree", name: str = "ix", predicate: str = "") -> pm.IndexDef:
    """``None`` in ``columns`` is an expression (as pm.indexes reads it); a ``predicate`` makes
    the index partial (as pg_get_expr deparses it)."""
    return pm.IndexDef(
        schema="public", table="t", name=name, method=method, columns=columns,
        key_columns=len(columns) if key_columns is None else key_columns, partial=partial or bool(predicate),
        usable=usable, unique=False, primary=False, size_bytes=8192, definition="", expressions=None in columns,
        predicate=predicate,
    )


# --- coverage ------------------------------------------------------------------------------
# Each case is the planner's verdict on the foreign key's lookup, proven with EXPLAIN on a
# real server in tests/test_maintenance_planner.py.


@pytest.mark.parametrize(
    ("idx", "cols", "expected"),
    [
        (index(("a",)), ("a",), True),
        (index(("a", "b")), ("a",), True),  # leading column
        (index(("a", "b")), ("a", "b"), True),
        (index(("b", "a")), ("a", "b"), True),  # both leading, other order: both are index conditions
        (index(("b", "a")), ("a",), False),  # not leading
        (index(("a",)), ("a", "b"), False),  # too short
        (index(("a", "b"), key_columns=1), ("a", "b"), False),  # b only INCLUDEd
        (index(("a",), partial=True), ("a",), False),  # a predicate we cannot read
        (index(("a",), predicate="(a IS NOT NULL)"), ("a",), True),  # implied by a = $1
        (index(("a", "c"), predicate="(a IS NOT NULL)"), ("a",), True),
        (index(("a", "b"), predicate="((a IS NOT NULL) AND (b IS NOT NULL))"), ("a", "b"), True),
        (index(("a", "b"), predicate="(b IS NOT NULL)"), ("a", "b"), True),
        (index(("a",), predicate="(status = 'x'::text)"), ("a",), False),
        (index(("a",), predicate="(eh_oferta = true)"), ("a",), False),
        (index(("a",), predicate="(deleted_at IS NULL)"), ("a",), False),
        (index(("a",), predicate="(c IS NOT NULL)"), ("a",), False),  # another column
        (index(("a",), predicate="((a IS NOT NULL) AND (status = 'x'::text))"), ("a",), False),
        (index(("a",), predicate="((a IS NOT NULL) OR (b IS NOT NULL))"), ("a",), False),
        (index((None,)), ("a",), False),  # expression
        (index((None, "a")), ("a",), False),  # an expression before the column
        (index(("a", None)), ("a",), True),  # an expression after the leading column
        (index(("a",), usable=False), ("a",), False),  # failed CREATE INDEX CONCURRENTLY
        (index(("a",), method="hash"), ("a",), True),  # answers a = $1
        (index(("a",), method="brin"), ("a",), False),
        (index(("a",), method="gin"), ("a",), False),
        (index(("a",)), (), False),
    ],
)
def test_covers(idx: pm.IndexDef, cols: tuple[str, ...], expected: bool) -> None:
    assert pm.covers(idx, cols) is expected


@pytest.mark.parametrize(
    ("predicate", "columns"),
    [
        ("(a IS NOT NULL)", {"a"}),
        ('("Odd Name" IS NOT NULL)', {"Odd Name"}),
        ("((a IS NOT NULL) AND ((b IS NOT NULL) AND (c IS NOT NULL)))", {"a", "b", "c"}),
        ("(a IS NULL)", None),
        ("(NOT (a IS NULL))", None),
        ("((a IS NOT NULL) OR (b IS NOT NULL))", None),
        ("(x.a IS NOT NULL)", None),  # not a plain column of the table
        ("((a IS NOT NULL) AND (status = 'x'::text))", None),
        ("", None),
        ("((", None),  # unparsable: never implied
    ],
)
def test_not_null_columns(predicate: str, columns: set[str] | None) -> None:
    assert pm.not_null_columns(predicate) == (frozenset(columns) if columns is not None else None)


_names = st.sampled_from(["a", "b", "c", "d", "e"])


@given(st.lists(_names, min_size=1, max_size=5, unique=True), st.lists(_names, max_size=3, unique=True),
       st.text(min_size=1, max_size=20))
def test_coverage_is_by_definition_not_name(cols: list[str], extra: list[str], name: str) -> None:
    """Any btree leading with the columns covers them, whatever follows and whatever its name;
    and a covering index covers every prefix of the columns. Partial, it covers exactly when
    its predicate is IS NOT NULL on some of them."""
    trailing = [c for c in extra if c not in cols]
    idx = index((*cols, *trailing), name=name)
    assert pm.covers(idx, cols)
    for k in range(1, len(cols) + 1):
        assert pm.covers(idx, cols[:k])
    assert not pm.covers(index((*cols, *trailing), name=name, partial=True), cols)
    implied = " AND ".join(f"({c} IS NOT NULL)" for c in cols)
    assert pm.covers(index((*cols, *trailing), name=name, predicate=f"({implied})"), cols)
    for c in trailing:
        assert not pm.covers(index((*cols, *trailing), name=name, predicate=f"({c} IS NOT NULL)"), cols)


@given(st.permutations(["a", "b", "c"]))
def test_any_order_of_the_leading_columns_covers(perm: list[str]) -> None:
    """Every column of the key is an index condition whatever their order in the index."""
    assert pm.covers(index(tuple(perm)), ("a", "b", "c"))
    assert pm.covers(index((*perm, "d")), ("a", "b", "c"))
    assert not pm.covers(index(("d", *perm)), ("a", "b", "c"))


# --- bloat estimate -----------------------------------------------------------------------


def rel(kind: str = "table", *, pages: int, tuples: float, width: float = 40.0, nulls: bool = False,
        columns: int = 4, with_stats: int | None = None, fillfactor: int | None = None,
        toast_pages: int = 0, toast_tuples: float = 0) -> pm.RelationStats:
    return pm.RelationStats(
        kind=kind, schema="public", table="t", name="t" if kind == "table" else "t_idx", pages=pages,
        tuples=tuples, toast_pages=toast_pages, toast_tuples=toast_tuples,
        fillfactor=fillfactor or (100 if kind == "table" else 90), columns=columns,
        columns_with_stats=columns if with_stats is None else with_stats, has_nulls=nulls,
        data_width=width, block_size=8192,
    )


def test_packed_table_has_no_bloat() -> None:
    # 40-byte rows: 4 + 24 + 40 = 68 bytes a tuple, 120 tuples an 8 kB page
    est = pm.estimate_bloat(rel(pages=100, tuples=12_000))
    assert est.expected_bytes == 100 * 8192 and est.ratio == 0.0


def test_table_with_three_quarters_free_is_75_percent_bloated() -> None:
    est = pm.estimate_bloat(rel(pages=400, tuples=12_000))
    assert est.ratio == pytest.approx(0.75)
    assert est.bloat_bytes == 300 * 8192


def test_fillfactor_leaves_room_that_is_not_bloat() -> None:
    # fillfactor 50: twice the pages are expected
    assert pm.estimate_bloat(rel(pages=200, tuples=12_000, fillfactor=50)).ratio == pytest.approx(0.0, abs=0.01)


def test_btree_index_estimate_counts_metapage_and_leaf_fillfactor() -> None:
    # bigint key: 4 + 8 + 8 = 20 bytes an entry; (8192-24-16)*0.9 / 20 = 366 entries a leaf
    est = pm.estimate_bloat(rel("index", pages=1 + math.ceil(100_000 / 366), tuples=100_000, width=8, columns=1))
    assert est.ratio == 0.0
    assert pm.estimate_bloat(rel("index", pages=2 * (1 + math.ceil(100_000 / 366)), tuples=100_000, width=8,
                                 columns=1)).ratio == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize(
    ("stats", "reason"),
    [
        (rel(pages=0, tuples=0), "empty"),
        (rel(pages=10, tuples=-1), "never analyzed"),
        (rel(pages=10, tuples=100, with_stats=2), "columns without statistics (run ANALYZE)"),
    ],
)
def test_not_estimable(stats: pm.RelationStats, reason: str) -> None:
    est = pm.estimate_bloat(stats)
    assert est.expected_bytes is None and est.reason == reason and est.ratio == 0.0


@given(st.integers(1, 100_000), st.integers(0, 5_000_000), st.floats(0, 3000, allow_nan=False),
       st.booleans(), st.sampled_from(["table", "index"]))
def test_bloat_ratio_is_a_ratio_and_grows_with_pages(pages: int, tuples: int, width: float, nulls: bool,
                                                      kind: str) -> None:
    a = pm.estimate_bloat(rel(kind, pages=pages, tuples=tuples, width=width, nulls=nulls))
    b = pm.estimate_bloat(rel(kind, pages=pages * 2, tuples=tuples, width=width, nulls=nulls))
    assert 0.0 <= a.ratio <= 1.0 and 0.0 <= b.ratio <= 1.0
    assert tuples == 0 or b.ratio < 1.0
    assert b.ratio >= a.ratio
    assert a.bloat_bytes <= a.real_bytes


# --- dead tuples and the weekly window ----------------------------------------------------

NOW = dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.UTC)


def activity(*, vacuumed: dt.datetime | None = NOW, analyzed: dt.datetime | None = NOW, live: int = 1000,
             dead: int = 0, autovacuum: bool = True, auto: bool = False) -> pm.TableActivity:
    """Manual (auto=False) or autovacuum / autoanalyze (auto=True) stamps."""
    return pm.TableActivity(
        table="interacoes", live=live, dead=dead,
        last_vacuum=None if auto else vacuumed, last_autovacuum=vacuumed if auto else None,
        last_analyze=None if auto else analyzed, last_autoanalyze=analyzed if auto else None,
        autovacuum_enabled=autovacuum,
    )


# Statistics that reach back 24 days: every 8-day window is covered.
OLD_STATS = pm.StatsOrigin(now=NOW, database_reset=None, cluster_reset=dt.datetime(2026, 11, 1, tzinfo=dt.UTC))


def judge(act: pm.TableActivity, *, window: int | None = 8, autovacuum_on: bool = True,
          origin: pm.StatsOrigin = OLD_STATS) -> tuple[list[str], list[str]]:
    return pm.maintenance_findings(act, now=NOW, origin=origin, autovacuum_on=autovacuum_on,
                                   vacuum_within_days=window, analyze_within_days=window,
                                   dead_max_ratio=0.2, dead_min_count=100)


def findings(act: pm.TableActivity, *, window: int | None = 8, autovacuum_on: bool = True) -> list[str]:
    problems, undecided = judge(act, window=window, autovacuum_on=autovacuum_on)
    assert undecided == []
    return problems


def test_vacuum_and_analyze_nine_days_ago_are_stale() -> None:
    nine = NOW - dt.timedelta(days=9)
    assert findings(activity(vacuumed=nine, analyzed=nine)) == [
        "interacoes: last vacuum 2026-11-16T03:00:00+00:00, 9 days ago (window 8 days)",
        "interacoes: last analyze 2026-11-16T03:00:00+00:00, 9 days ago (window 8 days)",
    ]


@pytest.mark.parametrize("auto", [False, True], ids=["manual", "autovacuum"])
def test_eight_days_ago_is_within_the_window(auto: bool) -> None:
    eight = NOW - dt.timedelta(days=8)
    assert findings(activity(vacuumed=eight, analyzed=eight, auto=auto)) == []


def test_stale_analyze_alone_fails() -> None:
    assert findings(activity(analyzed=NOW - dt.timedelta(days=9, hours=5))) == [
        "interacoes: last analyze 2026-11-15T22:00:00+00:00, 9 days ago (window 8 days)"]


def test_the_latest_of_manual_and_auto_counts() -> None:
    act = pm.TableActivity(table="interacoes", live=10, dead=0,
                           last_vacuum=NOW - dt.timedelta(days=30), last_autovacuum=NOW - dt.timedelta(days=1),
                           last_analyze=NOW - dt.timedelta(days=1), last_autoanalyze=NOW - dt.timedelta(days=30),
                           autovacuum_enabled=True)
    assert findings(act) == []


def test_never_vacuumed_and_autovacuum_off_are_named() -> None:
    assert findings(activity(vacuumed=None, analyzed=None, autovacuum=False)) == [
        "interacoes: never vacuumed since 2026-11-01T00:00:00+00:00 (window 8 days, autovacuum disabled on the table)",
        "interacoes: never analyzed since 2026-11-01T00:00:00+00:00 (window 8 days, autovacuum disabled on the table)",
    ]
    assert findings(activity(vacuumed=NOW - dt.timedelta(days=9)), autovacuum_on=False) == [
        "interacoes: last vacuum 2026-11-16T03:00:00+00:00, 9 days ago (window 8 days, autovacuum off server-wide)"]


def test_no_window_is_not_judged_and_dead_tuples_are() -> None:
    assert findings(activity(vacuumed=None, analyzed=None), window=None) == []
    assert findings(activity(live=300, dead=100)) == []  # 25 %, but not more than 100 dead
    assert findings(activity(live=300, dead=101)) == ["interacoes: 101 dead of 401 tuples (25% > 20%)"]
    assert findings(activity(live=1000, dead=250)) == []  # 20 %: at the threshold


# --- evidence younger than its window decides nothing (issue 16, point 7) -----------------

RESET_AN_HOUR_AGO = pm.StatsOrigin(now=NOW, database_reset=NOW - dt.timedelta(hours=1),
                                   cluster_reset=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
                                   server_started=dt.datetime(2026, 10, 1, tzinfo=dt.UTC))
NEW_CLUSTER = pm.StatsOrigin(now=NOW, database_reset=None, cluster_reset=NOW - dt.timedelta(minutes=10),
                             server_started=NOW - dt.timedelta(minutes=10))


def test_no_stamp_on_statistics_younger_than_the_window_is_undecided() -> None:
    never = activity(vacuumed=None, analyzed=None)
    for origin in (RESET_AN_HOUR_AGO, NEW_CLUSTER):
        assert judge(never, origin=origin) == ([], [
            "interacoes: no vacuum on record (window 8 days)", "interacoes: no analyze on record (window 8 days)"])
    # the same table on statistics older than the window is a finding
    assert judge(never, origin=OLD_STATS)[1] == []


def test_a_stamp_is_evidence_whatever_the_statistics_age() -> None:
    recent = activity(vacuumed=NOW - dt.timedelta(minutes=5), analyzed=NOW - dt.timedelta(minutes=5))
    assert judge(recent, origin=NEW_CLUSTER) == ([], [])
    # dead tuples are judged on young statistics too: they count what happened since
    assert judge(activity(vacuumed=None, live=300, dead=101), origin=NEW_CLUSTER) == (
        ["interacoes: 101 dead of 401 tuples (25% > 20%)"], ["interacoes: no vacuum on record (window 8 days)"])


def test_the_origin_is_the_latest_reset_and_says_why() -> None:
    assert RESET_AN_HOUR_AGO.began == NOW - dt.timedelta(hours=1)
    assert RESET_AN_HOUR_AGO.describe() == (
        "statistics exist since 2026-11-25T02:00:00+00:00 (1.0 h ago, reset on this database)")
    assert NEW_CLUSTER.describe() == (
        "statistics exist since 2026-11-25T02:50:00+00:00 (10 min ago, since the server started: a new cluster, "
        "or a crash or upgrade discarded them)")
    shared_reset = pm.StatsOrigin(now=NOW, database_reset=None, cluster_reset=NOW - dt.timedelta(hours=5),
                                  server_started=NOW - dt.timedelta(days=40))
    assert shared_reset.describe() == (
        "statistics exist since 2026-11-24T22:00:00+00:00 (5.0 h ago, when the cluster's statistics were reset; "
        "server up since 2026-10-16T03:00:00+00:00)")
    assert not NEW_CLUSTER.covers(8) and NEW_CLUSTER.covers(0) and OLD_STATS.covers(8)
    assert RESET_AN_HOUR_AGO.judged_from(30) == NOW - dt.timedelta(hours=1) + dt.timedelta(days=30)
    assert OLD_STATS.judged_from(8) is None
    unknown = pm.StatsOrigin(now=NOW, database_reset=None, cluster_reset=None)
    assert unknown.covers(365) and unknown.began is None
    three_days = pm.StatsOrigin(now=NOW, database_reset=NOW - dt.timedelta(days=3), cluster_reset=None)
    assert "(3.0 days ago, reset on this database)" in three_days.describe()


@given(st.floats(0, 400), st.floats(0, 400))
def test_covers_iff_the_statistics_are_at_least_the_window_old(age_days: float, window: float) -> None:
    origin = pm.StatsOrigin(now=NOW, database_reset=NOW - dt.timedelta(days=age_days), cluster_reset=None)
    assert origin.covers(window) is (dt.timedelta(days=age_days) >= dt.timedelta(days=window))


def test_slow_statements_say_since_when() -> None:
    facts = pm.StatementsFacts("public", pm.StatementColumns("mean_exec_time", "max_exec_time", "total_exec_time"),
                               [], reset=NOW - dt.timedelta(days=2))
    stmt = pm.SlowStatement(1, "SELECT 1", 5, 120.0, 200.0, 600.0)
    assert facts.since(stmt) == "since 2026-11-23T03:00:00+00:00 (pg_stat_statements_info.stats_reset)"
    pg17 = pm.SlowStatement(1, "SELECT 1", 5, 120.0, 200.0, 600.0, since=NOW - dt.timedelta(hours=3))
    assert facts.since(pg17) == "since 2026-11-25T00:00:00+00:00"
    pg13 = pm.StatementsFacts("public", facts.columns, [])
    assert pg13.since(stmt) == "since pg_stat_statements began (no reset time recorded before extension 1.9)"


# --- pg_stat_statements -------------------------------------------------------------------


def test_statement_columns_by_server_version() -> None:
    pg13 = {"queryid", "query", "calls", "mean_exec_time", "max_exec_time", "total_exec_time", "mean_plan_time"}
    pg12 = {"queryid", "query", "calls", "mean_time", "max_time", "total_time"}
    assert pm.statement_columns(pg13) == pm.StatementColumns("mean_exec_time", "max_exec_time", "total_exec_time")
    assert pm.statement_columns(pg12) == pm.StatementColumns("mean_time", "max_time", "total_time")
    with pytest.raises(Undecidable, match="neither mean_exec_time nor mean_time"):
        pm.statement_columns({"query", "calls"})


@pytest.mark.parametrize(
    ("query", "workload"),
    [
        ("SELECT * FROM interacoes WHERE conversa_id = $1", True),
        ("select pg_sleep($1)", True),
        ("/* app */ UPDATE fila_mensagens SET processada = $1", True),
        ("-- report\nWITH x AS (SELECT 1) SELECT * FROM x", True),
        ("INSERT INTO job_executions (job_name) VALUES ($1)", True),
        ("DELETE FROM envios WHERE id = $1", True),
        ("VACUUM ANALYZE business_events", False),
        ("CREATE INDEX CONCURRENTLY idx ON t (a)", False),
        ("ALTER TABLE t SET (autovacuum_enabled = false)", False),
        ("SELECT relname FROM pg_class WHERE relkind = $1", False),
        ("SELECT * FROM pg_stat_user_tables", False),
        ("select n.nspname from pg_catalog.pg_namespace n", False),
        ("SELECT count(*) FROM information_schema.tables", False),
        ("SELECT * FROM pg_stat_statements", False),
    ],
)
def test_workload_filter(query: str, workload: bool) -> None:
    assert pm.is_workload(query) is workload


# --- reloptions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("false", False), ("off", False), ("of", False), ("no", False), ("n", False), ("f", False), ("0", False),
     ("FALSE", False), ("true", True), ("on", True), ("yes", True), ("1", True), ("t", True)],
)
def test_parse_pg_bool(value: str, expected: bool) -> None:
    assert pm.parse_pg_bool(value) is expected


def test_reloption_enabled() -> None:
    assert pm.reloption_enabled(None, "autovacuum_enabled") is True
    assert pm.reloption_enabled(["fillfactor=90"], "autovacuum_enabled") is True
    assert pm.reloption_enabled(["fillfactor=90", "autovacuum_enabled=false"], "autovacuum_enabled") is False
    assert pm.reloption_enabled(["toast.autovacuum_enabled=false"], "autovacuum_enabled") is True


def test_pretty_bytes() -> None:
    assert pm.pretty_bytes(512) == "512 bytes"
    assert pm.pretty_bytes(1_512_000) == "1.4 MB"
    assert pm.pretty_bytes(3 * 1024**3) == "3.0 GB"


# --- the [maintenance] contract -------------------------------------------------------------


def shipped() -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads((ROOT / "runbook.toml").read_text())["maintenance"]
    return data


def test_shipped_section_parses_with_the_runbook_list() -> None:
    contract = parse(ROOT / "runbook.toml", shipped())
    names = {(r.table, r.columns) for r in contract.required_indices}
    assert ("mensagens_grupo", ("grupo_id",)) in names and len(names) == 9
    weekly = {t.table for t in contract.high_volume_tables if t.vacuum_within_days and t.vacuum_within_days <= 8}
    assert weekly == {"job_executions", "interacoes", "business_events", "mensagens_grupo"}
    assert contract.unused_index_window_days == 30
    data = shipped()
    del data["unused_index_window_days"]
    assert parse(ROOT / "runbook.toml", data).unused_index_window_days == 30
    data["unused_index_window_days"] = 0
    assert parse(ROOT / "runbook.toml", data).unused_index_window_days == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(extra=1), "maintenance.extra: unknown key"),
        (lambda d: d.pop("slow_query_mean_ms"), "maintenance.slow_query_mean_ms: missing required key"),
        (lambda d: d.update(dead_tuple_max_ratio=1.5), "maintenance.dead_tuple_max_ratio: must be a ratio in (0, 1]"),
        (lambda d: d.update(slow_query_min_calls=0), "maintenance.slow_query_min_calls: must be greater than 0"),
        (lambda d: d.update(bloat_min_bytes="1MB"), "maintenance.bloat_min_bytes: must be an integer"),
        (lambda d: d["high_volume_tables"].append({"table": "job_executions"}),
         "maintenance.high_volume_tables[6].table: 'job_executions' is listed twice"),
        (lambda d: d["high_volume_tables"][0].update(vacuum_within_days=0),
         "maintenance.high_volume_tables[0].vacuum_within_days: must be greater than 0"),
        (lambda d: d["high_volume_tables"][0].update(weekly=True), "maintenance.high_volume_tables[0].weekly: unknown key"),
        (lambda d: d["required_indices"][0].update(columns=[]), "maintenance.required_indices[0].columns: must not be empty"),
        (lambda d: d["required_indices"][0].update(columns=["a", "a"]),
         "maintenance.required_indices[0].columns: a column is listed twice"),
        (lambda d: d["required_indices"][1].update(columns=["cliente_id"]),
         "maintenance.required_indices[1]: interacoes(cliente_id) is listed twice"),
        (lambda d: d["required_indices"][0].update(columns="cliente_id"),
         "maintenance.required_indices[0].columns: must be a list"),
        (lambda d: d.update(unused_index_window_days=-1),
         "maintenance.unused_index_window_days: must be greater than or equal to 0"),
        (lambda d: d.update(unused_index_window_days=True),
         "maintenance.unused_index_window_days: must be a number"),
    ],
)
def test_bad_section_names_the_key(change: Any, message: str) -> None:
    data = shipped()
    change(data)
    with pytest.raises(ConfigError) as err:
        parse(Path("rb.toml"), data)
    assert str(err.value).startswith("rb.toml: ") and message in str(err.value)


def test_create_index_statement_quotes_only_when_needed() -> None:
    assert create_index_statement("public", "envios", ("campanha_id",)) == (
        "CREATE INDEX CONCURRENTLY idx_envios_campanha_id ON public.envios (campanha_id);")
    assert create_index_statement("public", "Pedidos", ("order", "user_id")) == (
        'CREATE INDEX CONCURRENTLY "idx_Pedidos_order_user_id" ON public."Pedidos" ("order", user_id);')
    long = create_index_statement("public", "t" * 40, ("c" * 30,))
    name = long.split()[3]
    assert len(name) == 63 and name.startswith("idx_")
