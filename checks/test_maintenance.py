"""Runbook › Database Maintenance: the weekly and monthly checks, as nightly invariants.

The runbook asks an operator to run its queries by hand every Monday and every first Monday;
here each query's *intent* is an invariant judged every night, with queries that are correct
on PostgreSQL 13–18 (the runbook's FK-index and pg_stat_statements queries are not — see
fixtures/probes/maintenance/). Everything is read-only and catalog-only: no table or index
is scanned, so the checks are safe against production.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest

from fixtures.connections import Database
from fixtures.evidence import Evidence
from fixtures.probes import fallback
from fixtures.probes import maintenance as pm
from plugins.contract.drift import Dialects, DriftViolation
from plugins.contract.maintenance import MaintenanceContract, create_index_statement
from plugins.contract.runbook import Runbook
from plugins.contract.targets import RunContext
from plugins.contract.verdict import Undecidable, violated
from plugins.invariants import invariant


_SECTION = "Database Maintenance"
_REQUIRED_KEY = fallback.REQUIRED_KEY
_VOLUME_KEY = fallback.VOLUME_KEY


@pytest.fixture(scope="module")
def maintenance(runbook: Runbook) -> MaintenanceContract:
    contract: MaintenanceContract = runbook.section("maintenance")
    return contract


@pytest.fixture(scope="module")
def index_defs(db: Database, runbook: Runbook) -> list[pm.IndexDef]:
    return pm.indexes(db, [runbook.schema])


def _why_not(index: pm.IndexDef, columns: tuple[str, ...]) -> str | None:
    """Why an index that mentions the columns still does not count (None: unrelated), in
    the terms of pm.covers (the planner's rule for the key's lookup)."""
    if not set(columns) <= {c for c in index.columns if c}:
        return None
    if not index.usable:
        return f"{index.name}: invalid (failed CREATE INDEX CONCURRENTLY)"
    if index.method not in pm.EQUALITY_METHODS:
        return f"{index.name}: {index.method}, not btree"
    if not set(columns) <= {c for c in index.keys if c}:
        return f"{index.name}: columns only INCLUDEd"
    lead = index.keys[: len(columns)]
    if set(lead) != set(columns):
        if None in lead:
            return f"{index.name} {pm.describe_columns(index.keys)}: has an expression before them"
        return f"{index.name} {pm.describe_columns(index.keys)}: does not lead with them"
    if not pm.predicate_implied(index, columns):
        return f"{index.name}: partial (WHERE {index.predicate}), not implied by the key's lookup"
    return f"{index.name}: does not cover them"


@invariant(
    "JC-MAINT-01",
    title="every foreign key has a covering index",
    severity="critical",
    section=f"{_SECTION} › Creating Missing Indices (Critical)",
    remedy="PostgreSQL does not index foreign keys by itself: add the index without blocking "
    "queries, `CREATE INDEX CONCURRENTLY idx_table_fk_column ON table_name(foreign_key_column);` "
    "(the statement for each key is in the message).",
    tiers=("nightly",),
)
def test_foreign_keys_have_covering_index(db: Database, runbook: Runbook, index_defs: list[pm.IndexDef]) -> None:
    """A covering index is a usable btree, neither partial nor with an expression, whose
    leading key columns are the foreign key's columns in order; a name proves nothing (the runbook's query trusts names)."""
    missing = []
    for fk in pm.foreign_keys(db, [runbook.schema]):
        if pm.covering(index_defs, fk.table, fk.columns):
            continue
        near = [w for i in index_defs if i.table == fk.table and (w := _why_not(i, fk.columns))]
        missing.append({
            "table": f"{fk.schema}.{fk.table}", "columns": list(fk.columns), "constraint": fk.name,
            "references": fk.references, "not_counted": near,
            "fix": create_index_statement(fk.schema, fk.table, fk.columns),
        })
    if missing:
        # Short enough for the certificate's one line: the full list is the evidence.
        lines = [
            f"{m['table']} {pm.describe_columns(m['columns'])} [{'; '.join([m['constraint'], *m['not_counted']])}]"
            f" fix: {m['fix']}"
            for m in missing
        ]
        raise violated(f"{len(missing)} foreign key(s) without a covering index: " + " | ".join(lines),
                       evidence=missing)


@invariant(
    "JC-MAINT-02",
    title="the runbook's required indices exist (judged by definition)",
    severity="critical",
    section=f"{_SECTION} › Creating Missing Indices (Critical)",
    remedy="Create the missing index with the runbook's statement, e.g. `CREATE INDEX "
    "CONCURRENTLY idx_interacoes_cliente_id ON interacoes(cliente_id);`, then verify with "
    "`SELECT indexname FROM pg_indexes WHERE tablename = '…';`.",
    tiers=("nightly",),
)
def test_required_indices_exist(
    db: Database, runbook: Runbook, maintenance: MaintenanceContract, index_defs: list[pm.IndexDef],
    dialects: Dialects,
) -> None:
    """Each runbook entry is a table and its columns; any index leading with those columns,
    whatever its name, satisfies it — and an index with the runbook's name on other columns
    does not. An entry on a table or column the database lacks is never a missing index (its
    CREATE INDEX would fail): it is drift when another known dialect accounts for it, and
    otherwise a name the dialect in force gives that the database lacks — one line each."""
    required = maintenance.required_indices
    if not required:
        pytest.skip("runbook.toml lists no required indices")
    names = pm.table_columns(db, runbook.schema, fallback.required_index_tables(dialects, required))
    absent = [r for r in required if names.lacks(r.table, r.columns) is not None]
    missing = []
    for req in required:
        if req in absent or pm.covering(index_defs, req.table, req.columns):
            continue
        namesake = next((i for i in index_defs if i.table == req.table and i.name == req.name), None)
        near = [w for i in index_defs if i.table == req.table and (w := _why_not(i, req.columns))]
        if namesake is not None and not any(w.split(" ")[0].rstrip(":") == namesake.name for w in near):
            near.append(f"{namesake.name} {pm.describe_columns(namesake.keys)}: other columns")
        missing.append({
            "runbook_name": req.name, "table": req.table, "columns": list(req.columns),
            "not_counted": near, "fix": req.create_statement(runbook.schema),
        })
    drift, unaccounted = fallback.required_drift(dialects, names, absent) if absent else (None, [])
    lacking = (
        f"the database lacks what dialect '{runbook.dialect}' names ({_REQUIRED_KEY}), so no CREATE INDEX "
        "is proposed for it: " + "; ".join(
            f"{r.name} on {fallback.spelled(r.table, r.columns)}: {names.lacks(r.table, r.columns)}"
            for r in unaccounted)
    ) if unaccounted else ""
    if missing:
        lines = [
            f"{m['runbook_name']}: no index on {m['table']} leads with {pm.describe_columns(m['columns'])}"
            + (f" [{'; '.join(m['not_counted'])}]" if m["not_counted"] else "") + f" fix: {m['fix']}"
            for m in missing
        ]
        if lacking:
            lines.append(lacking)
        message = f"{len(missing)} of the runbook's {len(required)} required indices missing: " + " | ".join(lines)
        if drift is not None:
            message += " | also drift: " + "; ".join(f.describe() for f in drift.findings)
            raise DriftViolation(message, drift.findings)
        raise violated(message, evidence=missing)
    if unaccounted:
        raise Undecidable(lacking, evidence=[{"name": r.name, "table": r.table, "columns": list(r.columns)}
                                             for r in unaccounted])
    if drift is not None:
        raise drift.undecidable(
            f"{len(absent)} of the {len(required)} required indices of dialect '{runbook.dialect}' name a table or "
            f"column the database lacks (no CREATE INDEX proposed); the other {len(required) - len(absent)} are "
            "covered")


@invariant(
    "JC-MAINT-03",
    title="high-volume tables: few dead tuples, vacuumed and analyzed within the window",
    severity="normal",
    section=f"{_SECTION} › Weekly Maintenance",
    remedy="Run the weekly maintenance in the Supabase SQL editor: `VACUUM ANALYZE <table>;` "
    "for each table named; if autovacuum is disabled on it, re-enable it "
    "(`ALTER TABLE <table> RESET (autovacuum_enabled);`).",
    tiers=("nightly",),
)
def test_dead_tuples_and_vacuum_window(db: Database, runbook: Runbook, maintenance: MaintenanceContract) -> None:
    """The runbook's weekly VACUUM ANALYZE keeps dead tuples down and statistics fresh on
    the tables that grow fastest; (auto)vacuum and (auto)analyze both count.

    Trusts: a vacuum or analyze time on record (a reset clears them, so one present is
    real), the tuple counts. Refuses: "never vacuumed in 8 days" on statistics younger than
    8 days (pm.stats_origin: a reset on this database, or a new or crashed cluster) — such a
    table cannot be told, and the check is undecidable naming since when statistics exist."""
    wanted = maintenance.high_volume_tables
    snap = pm.table_activity(db, runbook.schema, [t.table for t in wanted])
    origin = pm.stats_origin(db)
    absent = [t.table for t in wanted if t.table not in snap.tables]
    problems: list[str] = []
    undecided: list[str] = []
    evidence: list[dict[str, Any]] = []
    for spec in wanted:
        act = snap.tables.get(spec.table)
        if act is None:
            continue
        evidence.append({
            "table": spec.table, "live": act.live, "dead": act.dead, "dead_ratio": round(act.dead_ratio, 4),
            "last_vacuum": act.vacuumed, "last_analyze": act.analyzed,
            "autovacuum_enabled": act.autovacuum_enabled and snap.autovacuum_on,
        })
        found, unknown = pm.maintenance_findings(
            act, now=snap.now, origin=origin, autovacuum_on=snap.autovacuum_on,
            vacuum_within_days=spec.vacuum_within_days, analyze_within_days=spec.analyze_within_days,
            dead_max_ratio=maintenance.dead_tuple_max_ratio, dead_min_count=maintenance.dead_tuple_min_count,
        )
        problems += found
        undecided += unknown
    not_judged = (f"{origin.describe()}, younger than the window: " + "; ".join(undecided)
                  + " — whether they were done before cannot be told") if undecided else ""
    if problems:
        raise violated("expected maintained high-volume tables, found: " + "; ".join(problems)
                       + (f" | not judged: {not_judged}" if not_judged else ""), evidence=evidence)
    lacking = (f"the database lacks what dialect '{runbook.dialect}' names ({_VOLUME_KEY}): "
               + ", ".join(f"there is no table {runbook.schema}.{t}" for t in absent)) if absent else ""
    if undecided:
        raise Undecidable(not_judged + (f"; {lacking}" if lacking else "") + "; the other tables are maintained",
                          evidence={"statistics_since": origin.began, "tables": evidence})
    if absent:
        raise Undecidable(lacking + "; the other tables are maintained")


@invariant(
    "JC-MAINT-04",
    title="estimated table and index bloat under the thresholds",
    severity="normal",
    section=f"{_SECTION} › Monthly Maintenance",
    remedy="Reclaim space without blocking: `REINDEX INDEX CONCURRENTLY <index>;` for a bloated "
    "index; for a table, plain `VACUUM` makes the space reusable — `VACUUM FULL` blocks and is "
    "only for a low-traffic window (runbook: When to VACUUM vs VACUUM FULL).",
    tiers=("nightly",),
    evidence="bloat-estimate",
)
def test_bloat_under_thresholds(db: Database, runbook: Runbook, maintenance: MaintenanceContract,
                                evidence: Evidence) -> None:
    """Method: the statistical estimate (pm.BLOAT_METHOD), named in every failure message and
    in the evidence, kept on a pass too; relations below `bloat_min_bytes` are not judged."""
    estimates = pm.bloat_estimates(db, [runbook.schema])
    limit = {"table": maintenance.table_bloat_max_ratio, "index": maintenance.index_bloat_max_ratio}
    judged = [e for e in estimates if e.real_bytes >= maintenance.bloat_min_bytes]
    bloated = [e for e in judged if e.expected_bytes is not None and e.ratio > limit[e.kind]]
    judged_evidence = {
        "method": pm.BLOAT_METHOD,
        "judged": [
            {"kind": e.kind, "relation": e.name, "table": e.table, "real": pm.pretty_bytes(e.real_bytes),
             "expected": pm.pretty_bytes(e.expected_bytes) if e.expected_bytes is not None else None,
             "bloat_ratio": round(e.ratio, 3), "not_estimable": e.reason or None}
            for e in judged
        ],
    }
    if not bloated:
        evidence.keep(judged_evidence)
        return
    lines = [
        f"{e.kind} {e.schema}.{e.name}: ~{pm.pretty_bytes(e.bloat_bytes)} of {pm.pretty_bytes(e.real_bytes)} "
        f"({e.ratio:.0%} > {limit[e.kind]:.0%})"
        for e in sorted(bloated, key=lambda e: -e.bloat_bytes)
    ]
    raise violated(
        "expected estimated bloat under the thresholds, found: " + "; ".join(lines)
        + " [method: statistical estimate from pg_stats and pg_class (ioguix-style), no pages read]",
        evidence=judged_evidence,
    )


@invariant(
    "JC-MAINT-05",
    title="no large index left unused (warning)",
    severity="minor",
    section=f"{_SECTION} › Monthly Maintenance",
    remedy="Review each index named: if no query needs it, drop it without blocking "
    "(`DROP INDEX CONCURRENTLY <index>;`); if it is new, wait for the next run.",
    tiers=("nightly",),
)
def test_no_large_unused_index(db: Database, runbook: Runbook, maintenance: MaintenanceContract,
                               index_defs: list[pm.IndexDef], warn) -> None:  # type: ignore[no-untyped-def]
    """A warning, never a blocker (the issue's words): an unused index costs every write
    and its disk, but dropping one is a judgement, not an incident. The check passes and
    the certificate row, the terminal and the Allure result carry the warning with sizes.
    Indices that enforce a constraint (primary key, unique) or cover a foreign key are not
    counted: dropping them would break the constraint or JC-MAINT-01.

    Trusts: scan counts on statistics that reach back `unused_index_window_days` (a month:
    the runbook's monthly review). Refuses: few scans on younger statistics (a reset, a new
    or crashed cluster) — no index is called unused then; the warning says since when
    statistics exist and from when the indices can be judged."""
    scans = {(u.table, u.name): u.scans for u in pm.index_usage(db, [runbook.schema])}
    origin = pm.stats_origin(db)
    fks = pm.foreign_keys(db, [runbook.schema])
    fk_covers = {i.name for fk in fks for i in pm.covering(index_defs, fk.table, fk.columns)}
    few = [
        i for i in index_defs
        if i.size_bytes > maintenance.unused_index_min_bytes
        and not (i.unique or i.primary) and i.name not in fk_covers
        and scans.get((i.table, i.name), 0) < maintenance.unused_index_max_scans
    ]
    if not few:
        return
    # one line, the reason first: the certificate keeps 400 characters
    listed = "; ".join(f"{i.schema}.{i.name} ({pm.pretty_bytes(i.size_bytes)}, {scans.get((i.table, i.name), 0)} scans)"
                       for i in sorted(few, key=lambda i: -i.size_bytes))
    window = maintenance.unused_index_window_days
    size = pm.pretty_bytes(maintenance.unused_index_min_bytes)
    if not origin.covers(window):
        judged_from = origin.judged_from(window)
        warn(f"no index judged unused: {origin.describe()}, younger than the {window:g}-day window (judged from "
             f"{judged_from.date().isoformat() if judged_from else '?'}); fewer than "
             f"{maintenance.unused_index_max_scans} scans so far: {listed}")
        return
    since = origin.describe() if origin.began is not None else "statistics never reset"
    warn(f"{len(few)} index(es) over {size} with fewer than {maintenance.unused_index_max_scans} scans ({since}): "
         f"{listed}")


@invariant(
    "JC-MAINT-06",
    title="no slow statement in pg_stat_statements",
    severity="normal",
    section=f"{_SECTION} › Monthly Maintenance",
    remedy="Look at each statement named (Scenario 4: missing indices, N+1 queries); `EXPLAIN "
    "(ANALYZE, BUFFERS)` it on staging and add the index it lacks with CREATE INDEX CONCURRENTLY.",
    tiers=("nightly",),
)
def test_no_slow_statements(db: Database, maintenance: MaintenanceContract) -> None:
    """Application statements (SELECT / DML, not maintenance or monitoring) averaging more than
    the threshold. The timing columns are read from the catalog: `mean_exec_time` since
    PostgreSQL 13, `mean_time` before (the runbook's query uses the old names).

    Trusts: each statement's own mean over at least `slow_query_min_calls` calls — a mean
    needs no window, so young statistics only narrow what was seen, they decide nothing
    wrongly. Each finding says since when it is counted (stats_since, PostgreSQL 17+; else
    pg_stat_statements_info.stats_reset, 14+). Refuses: statements with fewer calls."""
    try:
        facts = pm.slow_statements(db, maintenance.slow_query_mean_ms, maintenance.slow_query_min_calls)
    except pm.StatementsUnavailable as exc:
        pytest.skip(f"slow queries not judged: {exc}")
    if facts.slow:
        lines = [
            f"{s.mean_ms:.0f} ms mean over {s.calls} calls {facts.since(s)} (max {s.max_ms:.0f} ms): "
            f"{s.query[:160]!r}"
            for s in facts.slow
        ]
        raise violated(
            f"expected no statement averaging over {maintenance.slow_query_mean_ms:g} ms "
            f"(≥ {maintenance.slow_query_min_calls} calls), found {len(facts.slow)}: " + " | ".join(lines),
            evidence={"columns": facts.columns.__dict__, "extension_schema": facts.schema,
                      "statistics_reset": facts.reset, "statements": [s.__dict__ for s in facts.slow]},
        )


# --- table growth: evidence for the next night's comparison -------------------------------

def _previous_growth(evidence: Evidence, target: str) -> dict[str, Any] | None:
    """The newest table-growth record of an earlier run against the same target."""
    best: dict[str, Any] | None = None
    for run, data in evidence.earlier():
        if data.get("target") != target or not isinstance(data.get("taken_at"), str):
            continue
        if best is None or data["taken_at"] > best["taken_at"]:
            best = {**data, "run": run}
    return best


@invariant(
    "JC-MAINT-07",
    title="High-volume tables grow within the runbook's Rows/Day (sizes recorded as growth evidence)",
    severity="minor",
    section=f"{_SECTION} › High-Volume Tables",
    remedy="Find what writes the table this fast (a job firing in a loop, a second scheduler — rule 4 — or "
    "a campaign); if the volume is real, update the runbook's High-Volume Tables and its maintenance, and "
    "archive old rows (Monthly Maintenance step 3: job_executions older than 90 days).",
    tiers=("nightly",),
    evidence="table-growth",
)
def test_table_growth_within_volumes(db: Database, runbook: Runbook, maintenance: MaintenanceContract,
                                     ctx: RunContext, evidence: Evidence, dialects: Dialects) -> None:
    """The runbook's weekly "check table sizes" query, kept as evidence (table names and
    sizes only: nothing a certificate may not carry) and compared with the last run; and
    each high-volume table's last 24 hours of rows against growth_max_factor × its Rows/Day,
    dated by the table's own time column (maintenance.high_volume_tables[].time_column, which
    a dialect respells: the deployment's business_events is stamped by ``ts``). A table or
    column the database lacks is read from the catalog first and named in one line.

    Trusts: the rows' own time column and the relations' sizes — no cumulative statistic, so
    neither a statistics reset nor a young cluster changes what it judges."""
    taken_at, sizes = pm.table_sizes(db, [runbook.schema], maintenance.growth_top_tables)
    previous = _previous_growth(evidence, ctx.target.name)
    before = {t["table"]: t["total_bytes"] for t in (previous or {}).get("tables", [])}
    factor = maintenance.growth_max_factor
    dated = [hv for hv in maintenance.high_volume_tables if hv.rows_per_day is not None and hv.time_column]
    names = pm.table_columns(db, runbook.schema, sorted({hv.table for hv in dated}))
    absent = [hv for hv in dated if names.lacks(hv.table, [hv.time_column or ""]) is not None]
    last_day: list[dict[str, Any]] = []
    for hv in dated:
        if hv in absent or hv.rows_per_day is None or hv.time_column is None:
            continue
        cap = math.ceil(hv.rows_per_day * factor)
        rows = pm.rows_last_day(db, runbook.schema, hv.table, hv.time_column, cap)
        last_day.append({"table": hv.table, "time_column": hv.time_column, "rows_last_24h": rows,
                         "capped": rows > cap, "runbook_rows_per_day": hv.rows_per_day, "limit": cap})
    evidence.keep({
        "target": ctx.target.name,
        "taken_at": taken_at.astimezone(dt.UTC).isoformat(timespec="seconds"),
        "previous": {"run": previous["run"], "taken_at": previous["taken_at"]} if previous else None,
        "tables": [
            {"table": f"{t.schema}.{t.table}" if t.schema != runbook.schema else t.table,
             "total_bytes": t.total_bytes, "total": pm.pretty_bytes(t.total_bytes),
             "table_bytes": t.table_bytes, "index_bytes": t.index_bytes, "rows_estimate": t.rows_estimate,
             "growth_bytes": (t.total_bytes - before[t.table]) if t.table in before else None}
            for t in sizes
        ],
        "last_day": last_day,
    })
    lacking = (
        f"the database lacks what dialect '{runbook.dialect}' dates rows by ({_VOLUME_KEY}): "
        + "; ".join(f"{hv.table} by {hv.time_column}: {names.lacks(hv.table, [hv.time_column or ''])}"
                    for hv in absent)
    ) if absent else ""
    over = [d for d in last_day if d["capped"]]
    if over:
        raise violated(
            f"expected each high-volume table's last 24 h within {factor:g}× the runbook's Rows/Day, found: "
            + "; ".join(f"{d['table']}: more than {d['limit']:,} rows (runbook ~{d['runbook_rows_per_day']:,.0f}/day)"
                        for d in over)
            + (f" | not counted: {lacking}" if lacking else ""),
            evidence=over,
        )
    if absent:
        drift = fallback.volume_drift(dialects, names, absent)
        if drift is not None:
            raise drift.undecidable(f"cannot count {', '.join(f'{hv.table} by {hv.time_column}' for hv in absent)} "
                                    f"(dialect '{runbook.dialect}'): no such column")
        raise Undecidable(lacking + "; the other tables are within their Rows/Day")
