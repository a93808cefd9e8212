"""Database maintenance checks (JC-MAINT-*), each proven to fail on its fault — and only it.

Faults are injected into the real local stack with SQL, as an incident or a careless
migration would: an index dropped or recreated wrong, autovacuum switched off, a mass
update, a big index nobody uses, a slow statement in pg_stat_statements.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import psycopg
import pytest

from fixtures.stack.backends.native import NativeStack
from tests.area_helpers import area, clean_app_repo  # noqa: F401 - fixtures

MAINT = ("checks/test_maintenance.py",)


def stats_reset(stack: NativeStack) -> str:
    """When the stack's database statistics were last reset, as the checks print it."""
    assert stack.info is not None
    with psycopg.connect(stack.info.database_url) as conn:
        row = conn.execute("SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()").fetchone()
    assert row is not None and row[0] is not None
    return str(row[0].astimezone(dt.UTC).isoformat(timespec="seconds"))


def warnings(run, inv: str) -> list[str]:  # type: ignore[no-untyped-def]
    assert run.certificate is not None
    return next(r.get("warnings", []) for r in run.certificate["invariants"] if r["id"] == inv)


def test_healthy_stack_passes_every_maintenance_and_security_check(healthy: NativeStack, area) -> None:  # type: ignore[no-untyped-def]
    run = area()
    assert run.exitcode == 0, run.output[-3000:]
    assert run.certificate is not None and run.certificate["verdict"] == "certified"
    assert set(run.outcomes()) == {f"JC-MAINT-0{i}" for i in range(1, 8)} | {f"JC-SEC-0{i}" for i in range(1, 6)}
    assert run.not_passed() == set()
    assert run.run_dir is not None
    bloat = json.loads((run.run_dir / "evidence" / "bloat-estimate.json").read_text())
    assert bloat["method"].startswith("statistical estimate") and bloat["judged"]


@pytest.mark.parametrize(
    ("index", "table", "columns", "constraint", "expected"),
    [
        # not in the runbook's list: only the foreign-key invariant fails
        ("idx_fila_mensagens_cliente_id", "fila_mensagens", "(cliente_id)", "fila_mensagens_cliente_id_fkey",
         {"JC-MAINT-01"}),
        # one of the runbook's named indices: both fail
        ("idx_business_events_medico_id", "business_events", "(medico_id)", "business_events_medico_id_fkey",
         {"JC-MAINT-01", "JC-MAINT-02"}),
        # the composite foreign key (conversa_grupo_id, grupo_id)
        ("idx_mensagens_grupo_conversa", "mensagens_grupo", "(conversa_grupo_id, grupo_id)",
         "mensagens_grupo_conversa_fkey", {"JC-MAINT-01"}),
    ],
    ids=["single-column", "single-column-runbook-named", "multi-column"],
)
def test_foreign_key_index_dropped(healthy: NativeStack, sql, area, index: str, table: str, columns: str,  # type: ignore[no-untyped-def]
                                   constraint: str, expected: set[str]) -> None:
    sql(f"DROP INDEX {index}")
    run = area(paths=MAINT)
    assert run.exitcode == 1
    assert run.not_passed() == expected
    msg = run.message("JC-MAINT-01")
    assert f"public.{table} {columns}" in msg and constraint in msg
    assert f"CREATE INDEX CONCURRENTLY idx_{table}_" in msg and f"ON public.{table} {columns};" in msg
    if "JC-MAINT-02" in expected:
        assert f"{index}: no index on {table} leads with {columns}" in run.message("JC-MAINT-02")


def test_right_columns_under_misleading_names_pass(healthy: NativeStack, sql, area) -> None:  # type: ignore[no-untyped-def]
    """Judged by definition: names that say nothing (or lie) do not matter; nor does the order
    of the key's columns at the head of the index, nor a predicate the key's lookup implies
    (the planner's rule, tests/test_maintenance_planner.py)."""
    sql("DROP INDEX idx_interacoes_cliente_id")
    sql("CREATE INDEX zz_tmp_misc ON interacoes (cliente_id, created_at)")
    sql("DROP INDEX idx_mensagens_grupo_conversa")
    sql("CREATE INDEX idx_mensagens_grupo_created_at_old ON mensagens_grupo (grupo_id, conversa_grupo_id, created_at)")
    sql("DROP INDEX idx_interacoes_conversa_id")
    sql("CREATE INDEX idx_interacoes_com_conversa ON interacoes (conversa_id) WHERE conversa_id IS NOT NULL")
    run = area(paths=MAINT)
    assert run.exitcode == 0, run.output[-3000:]
    assert run.not_passed() == set()


def test_index_not_leading_with_the_key_fails(healthy: NativeStack, sql, area) -> None:  # type: ignore[no-untyped-def]
    """The runbook's names on indices whose leading columns are not the key's."""
    sql("DROP INDEX idx_envios_campanha_id")
    sql("CREATE INDEX idx_envios_campanha_id ON envios (cliente_id, campanha_id)")
    sql("DROP INDEX idx_mensagens_grupo_conversa")
    sql("CREATE INDEX idx_mensagens_grupo_conversa ON mensagens_grupo (created_at, grupo_id, conversa_grupo_id)")
    run = area(paths=MAINT)
    assert run.not_passed() == {"JC-MAINT-01", "JC-MAINT-02"}
    fk = run.message("JC-MAINT-01")
    assert fk.startswith("2 foreign key(s) without a covering index: public.envios (campanha_id) "
                         "[envios_campanha_id_fkey; idx_envios_campanha_id (cliente_id, campanha_id): does not "
                         "lead with them] fix: CREATE INDEX CONCURRENTLY idx_envios_campanha_id ON public.envios "
                         "(campanha_id); | public.mensagens_grupo (conversa_grupo_id, grupo_id)"), fk
    # the certificate keeps one line; the full message is in the report
    assert ("[mensagens_grupo_conversa_fkey; idx_mensagens_grupo_conversa (created_at, grupo_id, "
            "conversa_grupo_id): does not lead with them] fix: CREATE INDEX CONCURRENTLY "
            "idx_mensagens_grupo_conversa_grupo_id_grupo_id ON public.mensagens_grupo (conversa_grupo_id, grupo_id);"
            ) in " ".join(run.output.split())
    req = run.message("JC-MAINT-02")
    assert req.startswith("1 of the runbook's 9 required indices missing: idx_envios_campanha_id: no index on "
                          "envios leads with (campanha_id) [idx_envios_campanha_id (cliente_id, campanha_id): "
                          "does not lead with them] fix: CREATE INDEX CONCURRENTLY idx_envios_campanha_id ON "
                          "public.envios (campanha_id);"), req


def test_partial_and_expression_indices_that_the_lookup_cannot_use(healthy: NativeStack, sql, area) -> None:  # type: ignore[no-untyped-def]
    """A partial index whose predicate the key's lookup does not imply, an index on an
    expression of the column, an index where the column is not leading: none counts, and the
    ones that hold the column are named with the reason. A partial index on `fk IS NOT NULL`
    (implied by `fk = $1`) counts: that key is not flagged."""
    sql("DROP INDEX idx_fila_mensagens_conversa_id")
    sql("CREATE INDEX idx_fila_mensagens_conversa_id ON fila_mensagens (conversa_id) WHERE NOT processada")
    sql("CREATE INDEX fila_mensagens_conversa_expr ON fila_mensagens ((conversa_id + 0))")
    sql("CREATE INDEX fila_mensagens_conversa_late ON fila_mensagens (created_at, conversa_id)")
    sql("DROP INDEX idx_fila_mensagens_cliente_id")
    sql("CREATE INDEX idx_fila_mensagens_cliente_id ON fila_mensagens (cliente_id) WHERE cliente_id IS NOT NULL")
    run = area(paths=MAINT)
    assert run.not_passed() == {"JC-MAINT-01"}
    msg = run.message("JC-MAINT-01")
    assert msg == ("1 foreign key(s) without a covering index: public.fila_mensagens (conversa_id) "
                   "[fila_mensagens_conversa_id_fkey; fila_mensagens_conversa_late (created_at, conversa_id): does "
                   "not lead with them; idx_fila_mensagens_conversa_id: partial (WHERE (NOT processada)), not "
                   "implied by the key's lookup] fix: CREATE INDEX CONCURRENTLY idx_fila_mensagens_conversa_id ON "
                   "public.fila_mensagens (conversa_id);"), msg


def test_autovacuum_disabled_and_mass_update(healthy: NativeStack, sql, area) -> None:  # type: ignore[no-untyped-def]
    sql("ALTER TABLE business_events SET (autovacuum_enabled = false)")
    sql("UPDATE business_events SET evento = evento WHERE id % 2 = 0")  # a third of the tuples die
    run = area(paths=MAINT)
    assert run.not_passed() == {"JC-MAINT-03"}
    msg = run.message("JC-MAINT-03")
    assert "business_events: 7500 dead of 22500 tuples (33% > 20%, autovacuum disabled on the table)" in msg


def test_a_tables_counters_reset_decide_nothing(healthy: NativeStack, sql, area) -> None:  # type: ignore[no-untyped-def]
    """No vacuum nor analyze on record for a high-volume table because its counters were just
    reset: the statistics are younger than the 8-day window, so JC-MAINT-03 cannot tell
    whether the weekly maintenance ran — undecidable, naming since when (issue 16, point 7;
    until then this was reported as "never vacuumed")."""
    sql("SELECT pg_stat_reset_single_table_counters('interacoes'::regclass)")
    run = area(paths=MAINT)
    assert run.outcomes()["JC-MAINT-03"] == "error"
    assert run.not_passed() == {"JC-MAINT-03"}
    msg = run.message("JC-MAINT-03")
    assert msg.startswith(f"statistics exist since {stats_reset(healthy)} (")
    assert "reset on this database), younger than the window: " \
           "interacoes: no vacuum on record (window 8 days); interacoes: no analyze on record (window 8 days)" in msg
    assert "never vacuumed" not in msg


def test_table_and_index_bloat(healthy: NativeStack, sql, area) -> None:  # type: ignore[no-untyped-def]
    """Three rows in four deleted then vacuumed (no REINDEX): no dead tuple left, the pages
    stay — in the tables and in their btree indices. business_events' indices are under
    bloat_min_bytes (not judged); job_executions' primary key and its widest index are not.
    A REINDEX then clears that index's finding, and only it."""
    for table, keep in (("business_events", "id % 4 = 0"),
                        ("job_executions", "right(job_id::text, 1) IN ('0', '1', '2', '3')")):
        sql(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
        sql(f"DELETE FROM {table} WHERE NOT ({keep})")
        sql(f"VACUUM ANALYZE {table}")
    run = area(paths=MAINT)
    assert run.not_passed() == {"JC-MAINT-04"}
    msg = " ".join(run.output.split())  # the certificate keeps one line; the report the whole message
    assert re.search(r"table public\.business_events: ~[\d.]+ MB of [\d.]+ MB \(7\d% > 50%\)", msg), msg
    assert re.search(r"table public\.job_executions: ~[\d.]+ MB of [\d.]+ MB \(7\d% > 50%\)", msg), msg
    assert re.search(r"index public\.job_executions_pkey: ~[\d.]+ (kB|MB) of 1\.\d MB \([789]\d% > 50%\)", msg), msg
    assert re.search(r"index public\.idx_job_executions_job_name_started_at_status: ~[\d.]+ MB of [\d.]+ MB "
                     r"\([789]\d% > 50%\)", msg), msg
    assert "statistical estimate" in run.message("JC-MAINT-04")

    sql("REINDEX INDEX job_executions_pkey")
    after = area(paths=MAINT)
    assert after.not_passed() == {"JC-MAINT-04"}
    msg = " ".join(after.output.split())
    assert "index public.job_executions_pkey:" not in msg
    assert "index public.idx_job_executions_job_name_started_at_status:" in msg
    assert "table public.job_executions:" in msg


def test_large_index_never_used(healthy: NativeStack, sql, area) -> None:  # type: ignore[no-untyped-def]
    """A large index nobody scanned. The stack's statistics are minutes old: on them, 0 scans
    prove nothing, and the warning says since when statistics exist instead of calling the
    index unused. Judged on statistics of any age (unused_index_window_days = 0, the runbook's
    query as written), the same index is named unused."""
    sql("CREATE INDEX idx_business_events_evento_payload ON business_events (evento, payload)")
    young = area(paths=MAINT)
    # A warning-level finding, never a blocker: the check passes and carries the warning, the
    # run exits 0 and the certificate's verdict stays certified.
    assert young.exitcode == 0, young.output[-2000:]
    assert young.not_passed() == set(), young.output[-2000:]
    msg = " ".join(warnings(young, "JC-MAINT-05"))
    assert msg.startswith("no index judged unused: statistics exist since "), msg
    assert "younger than the 30-day window (judged from " in msg and "fewer than 10 scans so far: " in msg
    assert re.search(r"public\.idx_business_events_evento_payload \(1\.\d MB, 0 scans\)", msg), msg

    run = area(("unused_index_window_days = 30", "unused_index_window_days = 0"), paths=MAINT)
    assert run.exitcode == 0, run.output[-2000:]
    assert run.not_passed() == set(), run.output[-2000:]
    assert run.certificate is not None and run.certificate["verdict"] == "certified"
    row = next(r for r in run.certificate["invariants"] if r["id"] == "JC-MAINT-05")
    assert row["severity"] == "minor"
    msg = " ".join(row.get("warnings", []))
    assert re.search(r"index\(es\) over 976\.6 kB with fewer than 10 scans \(statistics exist since ", msg), msg
    assert re.search(r"public\.idx_business_events_evento_payload \(1\.\d MB, 0 scans\)", msg), msg
    assert "warning JC-MAINT-05" in run.output


@pytest.mark.smoke
def test_slow_statement(healthy: NativeStack, sql, area) -> None:  # type: ignore[no-untyped-def]
    """pg_sleep executed until pg_stat_statements holds it at or over the minimum calls."""
    for _ in range(5):
        sql("SELECT pg_sleep(0.06)")
    run = area(("slow_query_mean_ms = 100", "slow_query_mean_ms = 50"), paths=MAINT)
    assert run.not_passed() == {"JC-MAINT-06"}
    msg = run.message("JC-MAINT-06")
    assert "averaging over 50 ms" in msg and "over 5 calls" in msg and "SELECT pg_sleep($1)" in msg


def test_slow_queries_skipped_without_pg_stat_statements(healthy: NativeStack, sql, area) -> None:  # type: ignore[no-untyped-def]
    sql("DROP EXTENSION pg_stat_statements")
    run = area(paths=MAINT)
    assert run.outcomes()["JC-MAINT-06"] == "skipped"
    assert run.not_passed() == {"JC-MAINT-06"}
    assert "pg_stat_statements extension is not installed" in run.message("JC-MAINT-06")


def test_table_growth_is_recorded_and_compared(healthy: NativeStack, sql, area) -> None:  # type: ignore[no-untyped-def]
    first = area(paths=MAINT)
    assert first.not_passed() == set()
    assert first.run_dir is not None
    before = json.loads((first.run_dir / "evidence" / "table-growth.json").read_text())
    assert before["previous"] is None and before["target"] == "local"
    assert {"job_executions", "business_events", "mensagens_grupo"} <= {t["table"] for t in before["tables"]}

    sql("INSERT INTO business_events (medico_id, conversa_id, evento, payload, created_at)"
        " SELECT medico_id, conversa_id, evento, payload, created_at FROM business_events")
    sql("VACUUM ANALYZE business_events")
    second = area(paths=MAINT)
    assert second.not_passed() == set()
    assert second.run_dir is not None
    after = json.loads((second.run_dir / "evidence" / "table-growth.json").read_text())
    assert after["previous"]["run"] == first.run_dir.name
    growth = {t["table"]: t["growth_bytes"] for t in after["tables"]}
    assert growth["business_events"] > 1_000_000
    assert growth["job_executions"] == 0


def test_a_runaway_writer_breaks_the_daily_volume(healthy: NativeStack, sql, area) -> None:  # type: ignore[no-untyped-def]
    """A job firing in a loop: job_executions gets 4× the runbook's ~10,000 rows in a day."""
    sql("INSERT INTO job_executions (job_name, status, started_at, ended_at, scheduler_instance)"
        " SELECT 'verificar-whatsapp', 'sucesso', now() - (i * interval '2 seconds'),"
        " now() - (i * interval '2 seconds') + interval '1 second', 'runaway'"
        " FROM generate_series(1, 40000) AS i")
    run = area(paths=MAINT)
    assert run.exitcode == 1, run.output[-3000:]
    assert run.not_passed() == {"JC-MAINT-07"}
    msg = run.message("JC-MAINT-07")
    assert "job_executions: more than 30,000 rows (runbook ~10,000/day)" in msg
    assert "business_events" not in msg
    assert run.run_dir is not None
    growth = json.loads((run.run_dir / "evidence" / "table-growth.json").read_text())
    over = {d["table"]: d for d in growth["last_day"]}
    assert over["job_executions"]["capped"] is True and over["interacoes"]["capped"] is False
