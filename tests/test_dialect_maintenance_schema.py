"""The maintenance and schema checks in the deployment dialect, against the deployment's twin.

Issue 15 points 14–18, each with its fault injected into the twin (tests/deployment_app.py,
tests/data/deployment_schema.sql — the deployment's schema as whats-agents
bootstrap/01-schema.sql has it) and the suite run read-only in the deployment dialect, as
against production: exactly the invariants that should fail or err do, and the message names
the cause. Reuses the ``deployed`` fixture of tests/test_dialect_deployment.py.
"""

from __future__ import annotations

import json

import psycopg

from tests.test_dialect_deployment import (  # noqa: F401 - fixtures
    Deployed,
    deployed,
    not_passed,
    variant_template,
)
from tests.test_schema_units import real_layout

MAINT = ("checks/test_maintenance.py",)
SCHEMA = ("checks/test_schema.py",)
RUNTIME = ("checks/test_scheduler.py", "checks/test_jobs.py", "checks/test_queue.py", "checks/test_pause.py")


def _one_line_naming(message: str, *names: str) -> None:
    """A message that names the cause in one line: never the server's statement excerpt
    (``LINE 1: SELECT … ^``), always the names given (a table, a column, the dialect)."""
    assert "LINE" not in message and "^" not in message and "\n" not in message, message
    for name in names:
        assert name in message, (name, message)


def _catalog(deployed: Deployed, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(deployed.database_url) as conn:
        return conn.execute(query).fetchall()  # type: ignore[arg-type]


# --- point 14: a partial index on the key's IS NOT NULL covers it ------------------------------


def test_keys_indexed_only_by_an_implied_partial_index_pass(deployed: Deployed) -> None:
    """The twin, like the deployment's schema, indexes interacoes.attributed_campaign_id and
    business_events.interaction_id only with partial indexes WHERE <key> IS NOT NULL: the
    key's lookup implies the predicate, so JC-MAINT-01 and JC-MAINT-05 count them."""
    partial_only = _catalog(deployed, """
        SELECT c.conrelid::regclass::text, a.attname FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
        WHERE c.contype = 'f' AND cardinality(c.conkey) = 1
          AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.conrelid AND i.indkey[0] = c.conkey[1])
          AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.conrelid AND i.indkey[0] = c.conkey[1]
                          AND i.indpred IS NULL)
        ORDER BY 1, 2""")
    assert partial_only == [("business_events", "interaction_id"), ("interacoes", "attributed_campaign_id")]
    run = deployed.run("deployment", paths=MAINT)
    assert not_passed(run) == {}, run.output[-3000:]


def test_partial_index_the_lookup_does_not_imply_fails(deployed: Deployed) -> None:
    """mensagens_grupo.grupo_id keeps only the deployment's offers index (grupo_id, …) WHERE
    eh_oferta = true (bootstrap/01-schema.sql:6143): the key's lookup must find every
    message, not only offers — JC-MAINT-01 fails, and the runbook's required index with it."""
    deployed.sql("DROP INDEX idx_mensagens_grupo_grupo_id")
    run = deployed.run("deployment", paths=MAINT)
    assert not_passed(run) == {"JC-MAINT-01": "failed", "JC-MAINT-02": "failed"}, run.output[-3000:]
    fk = run.message("JC-MAINT-01")
    assert fk.startswith("1 foreign key(s) without a covering index: public.mensagens_grupo (grupo_id) "
                         "[mensagens_grupo_grupo_id_fkey; idx_mensagens_grupo_ofertas: partial (WHERE "
                         "(eh_oferta = true)), not implied by the key's lookup] fix: CREATE INDEX CONCURRENTLY "
                         "idx_mensagens_grupo_grupo_id ON public.mensagens_grupo (grupo_id);"), fk
    assert "idx_mensagens_grupo_grupo_id: no index on mensagens_grupo leads with (grupo_id)" in run.message("JC-MAINT-02")


# --- point 15: the runbook's required indices, respelled; none on a name the schema lacks ------


def test_required_index_on_the_respelled_column_is_judged_and_its_fix_applies(deployed: Deployed) -> None:
    """The runbook's business_events(conversa_id) is the deployment's conversation_id, which the
    real schema leaves unindexed: the fix proposed is for the column that exists, and running
    it as proposed (CONCURRENTLY, outside a transaction) makes both checks pass."""
    deployed.sql("DROP INDEX idx_business_events_conversation_id")
    run = deployed.run("deployment", paths=MAINT)
    assert not_passed(run) == {"JC-MAINT-01": "failed", "JC-MAINT-02": "failed"}, run.output[-3000:]
    req = run.message("JC-MAINT-02")
    assert req.startswith("1 of the runbook's 6 required indices missing: idx_business_events_conversa_id: no "
                          "index on business_events leads with (conversation_id) fix: CREATE INDEX CONCURRENTLY "
                          "idx_business_events_conversa_id ON public.business_events (conversation_id);"), req
    assert "business_events_conversation_id_fkey" in run.message("JC-MAINT-01")
    deployed.sql(req.split(" fix: ", 1)[1])
    assert not_passed(deployed.run("deployment", paths=MAINT)) == {}


def test_runbook_entries_on_names_the_schema_lacks_are_drift_never_a_create_index(deployed: Deployed) -> None:
    """Read in the runbook's words, five of its nine known missing indices name a table or
    column the deployment's schema lacks: drift — each quoted with the deployment's spelling
    or the disagreement the deployment dialect declares — and no CREATE INDEX that would
    fail. In the deployment dialect the same facts are declared drift and the check passes."""
    run = deployed.run(None, paths=(*MAINT, "checks/test_drift.py"))
    assert not_passed(run) == {"JC-MAINT-02": "error", "JC-MAINT-07": "error", "JC-DRIFT-01": "failed"}, \
        run.output[-3000:]
    msg = run.message("JC-MAINT-02")
    assert msg.startswith("drift, not an outage: 5 of the 9 required indices of dialect 'runbook' name a table or "
                          "column the database lacks (no CREATE INDEX proposed); the other 4 are covered"), msg
    assert "CREATE INDEX" not in msg.replace("no CREATE INDEX proposed", "")
    assert run.certificate is not None
    observed = {(d["runbook"], d["deployment"]): d for d in run.certificate["drift"]
                if d["key"] == "maintenance.required_indices" and "declared_in" not in d}
    assert set(observed) == {
        ("interacoes(conversa_id)", "interacoes(conversation_id)"),
        ("business_events(conversa_id)", "business_events(conversation_id)"),
        ("campanhas(criado_por)", "not listed (no idx_campanhas_criado_por)"),
        ("conversas_grupo(grupo_id)", "not listed (no idx_conversas_grupo_grupo_id)"),
        ("business_events(medico_id)", "not listed (no idx_business_events_medico_id)"),
    }
    assert observed[("interacoes(conversa_id)", "interacoes(conversation_id)")]["observed"] == \
        "public.interacoes has no column conversa_id"
    lacking = observed[("conversas_grupo(grupo_id)", "not listed (no idx_conversas_grupo_grupo_id)")]
    assert lacking["observed"] == "there is no table public.conversas_grupo"
    assert lacking["note"].startswith("declared in dialects/deployment.toml: the schema has no conversas_grupo table")
    assert "bootstrap/01-schema.sql" in lacking["note"]

    declared = deployed.run("deployment", paths=(*MAINT, "checks/test_drift.py"))
    assert not_passed(declared) == {}, declared.output[-3000:]
    assert declared.certificate is not None
    topics = {d["key"]: d for d in declared.certificate["drift"]}
    assert topics["maintenance.required_indices: campanhas(criado_por)"]["note"] == \
        "read from bootstrap/01-schema.sql:2873-2901"
    assert "maintenance.required_indices" in topics and "maintenance.high_volume_tables" in topics


# --- point 16: a table or column the dialect names that the database lacks --------------------


def test_missing_job_executions_is_one_line_naming_it_and_the_dialect(deployed: Deployed) -> None:
    """job_executions is absent from the deployment's bootstrap schema. Every check that names
    it says so in one line naming the table and the dialect — maintenance and schema exactly
    as listed; the runtime checks (their verdicts are another area's) at least in one line."""
    deployed.sql("DROP TABLE job_executions CASCADE")
    run = deployed.run("deployment", paths=(*MAINT, *SCHEMA, *RUNTIME))
    got = not_passed(run)
    ours = {i: o for i, o in got.items() if i.startswith(("JC-MAINT-", "JC-SCHEMA-", "JC-MIG-"))}
    assert ours == {"JC-MAINT-02": "error", "JC-MAINT-03": "error", "JC-MAINT-07": "error",
                    "JC-SCHEMA-03": "skipped"}, run.output[-4000:]
    assert run.message("JC-MAINT-02") == (
        "the database lacks what dialect 'deployment' names (maintenance.required_indices), so no CREATE INDEX "
        "is proposed for it: idx_job_executions_job_name on job_executions(job_name): there is no table "
        "public.job_executions")
    assert run.message("JC-MAINT-03").startswith(
        "the database lacks what dialect 'deployment' names (maintenance.high_volume_tables): there is no table "
        "public.job_executions")
    assert run.message("JC-MAINT-07").startswith(
        "the database lacks what dialect 'deployment' dates rows by (maintenance.high_volume_tables): "
        "job_executions by started_at: there is no table public.job_executions")
    readers = {i for i, o in got.items() if o in ("failed", "error")}
    assert {"JC-SCHED-01", "JC-JOBS-01"} <= readers, got
    for inv in readers:
        _one_line_naming(run.message(inv), "job_executions", "'deployment'")


def test_missing_column_the_contract_names_is_one_line(deployed: Deployed) -> None:
    """interacoes without created_at, the column both dialects date it by: JC-MAINT-07 cannot
    count it and says which column of which table, in which dialect, never the server's
    excerpt; the other high-volume tables are still counted."""
    deployed.sql("ALTER TABLE interacoes DROP COLUMN created_at CASCADE")
    run = deployed.run("deployment", paths=MAINT)
    assert not_passed(run) == {"JC-MAINT-07": "error"}, run.output[-3000:]
    assert run.message("JC-MAINT-07") == (
        "the database lacks what dialect 'deployment' dates rows by (maintenance.high_volume_tables): interacoes "
        "by created_at: public.interacoes has no column created_at; the other tables are within their Rows/Day")
    _one_line_naming(run.message("JC-MAINT-07"), "interacoes", "created_at", "'deployment'")


def test_missing_settings_table_is_one_line(deployed: Deployed) -> None:
    """The migration log of the deployment dialect is app_settings.schema_version: without the
    table, the schema checks that read it say which table and which dialect, in one line."""
    deployed.sql("DROP TABLE app_settings CASCADE")
    run = deployed.run("deployment", paths=SCHEMA)
    got = not_passed(run)
    readers = ("JC-MIG-01", "JC-MIG-03", "JC-MIG-04", "JC-MIG-05", "JC-MIG-06")
    # app_settings is one of the app's critical tables: its absence fails JC-SCHEMA-01
    assert got == {"JC-SCHEMA-01": "failed", **dict.fromkeys(readers, "error"), "JC-SCHEMA-03": "skipped"}, \
        run.output[-3000:]
    assert "app_settings (missing)" in run.message("JC-SCHEMA-01")
    assert "(database.critical_tables, dialect 'deployment')" in run.message("JC-SCHEMA-01")
    for inv in readers:
        _one_line_naming(run.message(inv), "app_settings", "'deployment'")


# --- point 17: the deployment's migrations folder ------------------------------------------------


def test_deployment_migrations_folder_without_the_convention(deployed: Deployed) -> None:
    """The deployment keeps migrations/sprint-NN/NNN_desc.sql and no file in the runbook's
    YYYYMMDD_ convention: JC-MIG-02 says so once; the checks comparing files with
    app_settings.schema_version are not judged."""
    folder = real_layout(deployed.tmp_path / "app")
    run = deployed.run("deployment", "--migrations-dir", str(folder), paths=SCHEMA)
    assert not_passed(run) == {"JC-MIG-02": "failed", **dict.fromkeys(("JC-MIG-01", "JC-MIG-05", "JC-MIG-06"),
                                                                        "skipped"), "JC-SCHEMA-03": "skipped"}
    assert run.message("JC-MIG-02").startswith("no migration file is named YYYYMMDD_description.sql")
    assert "sprint-25/001_chips_schema.sql" in run.message("JC-MIG-02")


# --- point 18: each table dated by its own time column --------------------------------------------


def test_business_events_is_counted_by_ts(deployed: Deployed) -> None:
    """The deployment's business_events is stamped by ts (no created_at): JC-MAINT-07 counts
    its last day by ts, and a runaway writer of events fails it, naming the table."""
    assert _catalog(deployed, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'business_events' "
                              "AND column_name IN ('ts', 'created_at')") == [(1,)]
    healthy = deployed.run("deployment", paths=MAINT)
    assert not_passed(healthy) == {}, healthy.output[-3000:]
    assert healthy.run_dir is not None
    growth = json.loads((healthy.run_dir / "evidence" / "table-growth.json").read_text())
    counted = {d["table"]: d for d in growth["last_day"]}
    assert counted["business_events"]["time_column"] == "ts"
    assert counted["job_executions"]["time_column"] == "started_at"

    deployed.sql("INSERT INTO business_events (event_type, source, ts) SELECT 'loop', 'backend', "
                 "now() - (i * interval '1 second') FROM generate_series(1, 16000) AS i")
    run = deployed.run("deployment", paths=MAINT)
    assert not_passed(run) == {"JC-MAINT-07": "failed"}, run.output[-3000:]
    assert "business_events: more than 15,000 rows (runbook ~5,000/day)" in run.message("JC-MAINT-07")

