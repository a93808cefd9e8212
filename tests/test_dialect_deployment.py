"""Both dialects proven against the reference stack: the deployment's words and the runbook's.

The deployed system speaks its own dialect (dialects/deployment.toml). Here it is played by a
schema variant of the reference database and a loopback server answering the deployment's
routes and shapes from that database and the stack's Redis (tests/deployment_app.py). In the
deployment dialect the same invariants pass, and real faults fail exactly the invariants
they break; in the runbook dialect the route, shape, status-word, table and migration-log
differences are reported as drift (JC-DRIFT-01 fails; every other check that meets them
says "drift" and cannot decide) — never as an outage.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis

from datetime import UTC, datetime, timedelta

from fixtures.stack.dbsetup import MIGRATIONS_DIR, list_migrations, version_key
from fixtures.stack.launcher import TEMPLATE_DB, NativeStack, clone_database
from plugins import contract_runtime
from plugins.config import load_runbook
from tests.conftest import LOCAL_ENV, LOCAL_REF, ROOT, SuiteRun, run_suite
from tests.deployment_app import DeploymentApi, DeploymentApp, apply_schema_variant, compact, fill_job_history

AREA = ("checks/test_health.py", "checks/test_guards.py", "checks/test_health_extras.py",
        "checks/test_schema.py", "checks/test_runtime.py", "checks/test_maintenance.py",
        "checks/test_security.py", "checks/test_drift.py")
DEPLOYMENT_RUNTIME = load_runbook(ROOT / "runbook.toml", "deployment").section("runtime")
VARIANT_TEMPLATE = "julia_deployment_template"
VARIANT_DB = "julia_deployment"
DEEP_PARTS = {f"JC-DEEP-0{n}" for n in range(2, 8)}
MIGRATION_LOG_READERS = {"JC-MIG-01", "JC-MIG-03", "JC-MIG-04", "JC-MIG-05", "JC-MIG-06"}
# Read the job history (executions) and the queue in the dialect in force.
HISTORY_READERS = {"JC-SCHED-01", "JC-SCHED-03", "JC-JOBS-01", "JC-JOBS-02"}
QUEUE_READERS = {"JC-QUEUE-01", "JC-PAUSE-02"}
# Read the runbook's maintenance names (required indices, time columns) in the dialect in force.
MAINTENANCE_NAMES = {"JC-MAINT-02", "JC-MAINT-07"}
# No schema baseline given; no Railway token for the replica count; no app checkout to scan.
SKIPPED = {"JC-SCHEMA-03": "skipped", "JC-SCHED-04": "skipped", "JC-SEC-05": "skipped"}


def _with_db(url: str, dbname: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = dbname
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in info.items() if v is not None})


def _expected_version() -> str:
    return max((m.version for m in list_migrations(MIGRATIONS_DIR)), key=version_key)


@dataclass
class Deployed:
    database_url: str
    redis_url: str
    api: DeploymentApi
    tmp_path: Path

    def sql(self, statement: str) -> None:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(statement)  # type: ignore[arg-type]

    def run(self, dialect: str | None, *args: str, paths: tuple[str, ...] = AREA,
            app_env_vars: list[str] | None = None) -> SuiteRun:
        """The suite against the deployment, read-only as against production."""
        targets = self.tmp_path / f"targets-{dialect or 'runbook'}.toml"
        targets.write_text(
            "[targets.deployed]\nlocal = false\n"
            f'api_url = "{self.api.url}"\nenvironment = "{LOCAL_ENV}"\nproject_ref = "{LOCAL_REF}"\n'
            'database_url_env = "JC_DEPLOYED_DB"\nredis_url_env = "JC_DEPLOYED_REDIS"\n'
            f'migrations_dir = "{MIGRATIONS_DIR}"\n'
            # the loopback deployment's secrets are throwaway, as the local stack's
            "judge_secret_rotation = false\n"
            + (f'dialect = "{dialect}"\n' if dialect else "")
            + (f"app_env_vars = {json.dumps(app_env_vars)}\n" if app_env_vars is not None else "")
        )
        return run_suite("--target-file", str(targets), "--target", "deployed", *args, paths=paths,
                         reports=self.tmp_path / "reports",
                         env={"JC_DEPLOYED_DB": self.database_url, "JC_DEPLOYED_REDIS": self.redis_url})


@pytest.fixture(scope="session")
def variant_template(stack: NativeStack) -> str:
    """The reference template, converted once to the deployment's schema."""
    assert stack.info is not None
    clone_database(stack.info.admin_url, TEMPLATE_DB, VARIANT_TEMPLATE)
    url = _with_db(stack.info.database_url, VARIANT_TEMPLATE)
    apply_schema_variant(url)
    # The deployment's scheduler: its job table, crons in America/Sao_Paulo, no instance.
    renamed = tuple(job.name.replace("-", "_") for job in contract_runtime.load(dialect="").jobs)
    now = datetime.now(UTC)
    fill_job_history(url, DEPLOYMENT_RUNTIME, now, since=now - timedelta(hours=26), replace=renamed)
    compact(url)
    return VARIANT_TEMPLATE


@pytest.fixture
def deployed(healthy: NativeStack, variant_template: str, tmp_path: Path) -> Iterator[Deployed]:
    assert healthy.info is not None
    clone_database(healthy.info.admin_url, variant_template, VARIANT_DB)
    url = _with_db(healthy.info.database_url, VARIANT_DB)
    fill_job_history(url, DEPLOYMENT_RUNTIME, datetime.now(UTC))  # the minutes since the template
    app = DeploymentApp(url, healthy.info.redis_url, LOCAL_ENV, LOCAL_REF, _expected_version())
    with DeploymentApi(app=app) as api:
        yield Deployed(url, healthy.info.redis_url, api, tmp_path)


def outcomes(run: SuiteRun) -> dict[str, str]:
    assert run.certificate is not None, run.output[-3000:]
    return run.outcomes()


def not_passed(run: SuiteRun) -> dict[str, str]:
    return {i: o for i, o in outcomes(run).items() if o != "passed"}


def warnings(run: SuiteRun, inv: str) -> list[str]:
    assert run.certificate is not None
    return next(r.get("warnings", []) for r in run.certificate["invariants"] if r["id"] == inv)


def test_deployment_dialect_passes_on_the_deployment(deployed: Deployed) -> None:
    run = deployed.run("deployment")
    assert not_passed(run) == SKIPPED, run.output[-4000:]
    cert = run.certificate
    assert cert is not None and cert["dialect"] == "deployment"
    declared = {d["key"]: d for d in cert["drift"]}
    assert declared["endpoints.rate"]["runbook"] == ["/health/rate", "/health/rate-limit"]
    assert declared["endpoints.rate"]["deployment"] == ["/health/rate-limit"]
    assert declared["database.migrations_source"] == {
        "key": "database.migrations_source", "runbook": "table", "deployment": "settings",
        "declared_in": "dialects/deployment.toml"}
    assert all("declared_in" in d for d in cert["drift"])  # nothing undeclared observed
    assert "respelling(s) of the runbook declared in dialects/deployment.toml" in warnings(run, "JC-DRIFT-01")[0]
    # the HTML report carries the section too, on JC-DRIFT-01
    section = drift_attachment(run)
    assert "## Drift between the runbook and the deployment" in section and "### Observed" not in section
    assert "| `endpoints.rate` | [\"/health/rate\", \"/health/rate-limit\"] | [\"/health/rate-limit\"] |" in section


def drift_attachment(run: SuiteRun) -> str:
    """The "drift section" attached to JC-DRIFT-01's Allure result (the HTML report's)."""
    assert run.run_dir is not None
    results = run.run_dir / "allure-results"
    [result] = [r for r in (json.loads(p.read_text()) for p in results.glob("*-result.json"))
                if {"name": "invariant", "value": "JC-DRIFT-01"} in r["labels"]]
    [source] = [a["source"] for a in result.get("attachments", []) if a["name"] == "drift section"]
    return (results / source).read_text()


def drift_entries(run: SuiteRun) -> list[dict[str, object]]:
    assert run.certificate is not None
    return [d for d in run.certificate["drift"] if "declared_in" not in d]


def test_runbook_dialect_reports_drift_not_outages(deployed: Deployed) -> None:
    """The deployment is healthy, its schema a migration ahead of its code (the runbook's own
    order), so its schema_version part says 'warning'. Read in the runbook's words, every
    difference is drift: routes, shapes, the 'warning' word, the views that are tables and
    the migration log kept in app_settings. Nothing is reported as an outage."""
    deployed.sql("UPDATE app_settings SET value = '20990101' WHERE key = 'schema_version'")
    run = deployed.run(None)
    got = not_passed(run)
    assert got == {
        "JC-DRIFT-01": "failed", **SKIPPED,
        **dict.fromkeys({"JC-HEALTH-02", "JC-HEALTH-03", "JC-HEALTH-04", "JC-RATE-01", "JC-CIRCUIT-01",
                         "JC-GUARD-03", "JC-SCHEMA-02"} | DEEP_PARTS | MIGRATION_LOG_READERS | HISTORY_READERS
                        | QUEUE_READERS | MAINTENANCE_NAMES, "error"),
    }, run.output[-4000:]
    for inv, outcome in got.items():
        if outcome == "error":
            assert run.message(inv).startswith("drift, not an outage: "), (inv, run.message(inv))
            assert "dialect 'deployment'" in run.message(inv), (inv, run.message(inv))
    assert run.certificate is not None and run.certificate["dialect"] == "runbook"
    seen = {(d["key"], str(d["runbook"]), str(d["deployment"])) for d in drift_entries(run)}
    # routes: answered only on an alias, or served by another route
    assert ("endpoints.rate", "/health/rate", "/health/rate-limit") in seen
    assert ("endpoints.circuit", "/health/circuit", "/health/circuits") in seen
    assert ("endpoints.schema", "/health/schema", "/health/deep") in seen
    # shapes and status words
    assert ("health.rate.namespaces_path", "namespaces", "rate_limit") in seen
    assert ("deep.parts.hard_guards", "hard_guards", "['checks.environment', 'checks.project_ref']") in seen
    assert ("deep.part_warning", "[]", "['warning']") in seen
    # tables and the migration log
    assert ("database.critical_views", "metricas_conversa (view)", "metricas_conversa (table)") in seen
    assert ("database.critical_views", "avaliacoes_qualidade (view)", "avaliacoes_qualidade (table)") in seen
    assert ("database.migrations_source", "table (public._migrations)",
            "settings (app_settings.schema_version)") in seen
    # the job history and the queue in the deployment's columns and words
    assert ("runtime.executions.id", "job_id", "id") in seen
    assert ("runtime.executions.instance", "scheduler_instance", "") in seen
    assert ("runtime.queue.processed", "processada", "") in seen
    assert ("runtime.queue.sent", "[]", "['enviada']") in seen
    # the runbook's maintenance names: a column renamed, one the schema lacks, a time column
    assert ("maintenance.required_indices", "interacoes(conversa_id)", "interacoes(conversation_id)") in seen
    assert ("maintenance.required_indices", "business_events(conversa_id)", "business_events(conversation_id)") in seen
    assert ("maintenance.required_indices", "campanhas(criado_por)", "not listed (no idx_campanhas_criado_por)") in seen
    assert ("maintenance.high_volume_tables", "business_events.created_at", "business_events.ts") in seen
    word = next(d for d in drift_entries(run) if d["key"] == "deep.part_warning")
    assert word["observed"] == "GET /health/deep checks.schema_version is 'warning'"
    assert {"JC-DRIFT-01", "JC-DEEP-06"} <= set(word["invariants"])  # type: ignore[arg-type]
    assert "undeclared drift(s)" in run.message("JC-DRIFT-01")
    assert "observed drift(s) between the runbook and the deployment" in run.output
    # the human certificate page and the Allure results show it
    assert run.run_dir is not None
    page = (run.run_dir / "certificate.md").read_text()
    assert "## Drift between the runbook and the deployment" in page and "### Observed (undeclared)" in page
    assert "| `endpoints.rate` | '/health/rate' | '/health/rate-limit' |" in page
    results = [json.loads(p.read_text()) for p in (run.run_dir / "allure-results").glob("*-result.json")]
    tagged = {lb["value"] for r in results if {"name": "tag", "value": "drift"} in r["labels"]
              for lb in r["labels"] if lb["name"] == "invariant"}
    assert {"JC-RATE-01", "JC-SCHEMA-02", "JC-DRIFT-01", "JC-HEALTH-03"} <= tagged
    env = (run.run_dir / "allure-results" / "environment.properties").read_text()
    assert "dialect=runbook" in env
    section = drift_attachment(run)
    assert "### Observed (undeclared)" in section
    assert "| `endpoints.rate` | '/health/rate' | '/health/rate-limit' |" in section


def test_runbook_dialect_does_not_hide_an_outage_behind_drift(deployed: Deployed) -> None:
    """Read in the deployment's own words, a part is failing and a circuit is open: in the
    runbook dialect those checks fail (the fault, with the drift beside it); the parts that
    are fine stay drift."""
    deployed.sql("DROP TABLE doctor_state")
    redis.Redis.from_url(deployed.redis_url).set("julia:circuit:evolution", "open")
    run = deployed.run(None, paths=("checks/test_health.py", "checks/test_health_extras.py", "checks/test_drift.py"))
    assert not_passed(run) == {
        **dict.fromkeys({"JC-DEEP-01", "JC-DEEP-04", "JC-CIRCUIT-01", "JC-DRIFT-01"}, "failed"),
        **dict.fromkeys({"JC-HEALTH-02", "JC-HEALTH-03", "JC-HEALTH-04", "JC-RATE-01"}
                        | DEEP_PARTS - {"JC-DEEP-04"}, "error"),
    }, run.output[-4000:]
    tables = run.message("JC-DEEP-04")
    assert tables.startswith("GET /health/deep tables (checks.tables) is 'error'; missing: doctor_state "
                             "(read in dialect 'deployment', /health/deep); also drift from the runbook's words: "
                             "deep.parts.tables: runbook 'tables', deployment 'checks.tables'"), tables
    assert run.message("JC-CIRCUIT-01").startswith("open circuit(s): evolution is 'open' (read in dialect "
                                                   "'deployment', /health/circuits)")
    assert run.message("JC-DEEP-02").startswith("drift, not an outage: ")


def test_deployment_dialect_reads_warning_as_a_warning(deployed: Deployed) -> None:
    deployed.sql("UPDATE app_settings SET value = '20990101' WHERE key = 'schema_version'")
    run = deployed.run("deployment", paths=("checks/test_health.py", "checks/test_drift.py"))
    assert not_passed(run) == {}, run.output[-4000:]
    assert warnings(run, "JC-DEEP-06") == [
        "GET /health/deep migrations is 'warning' (deep.part_warning): it holds, but look at "
        "checks.schema_version (Case 4)"]


def test_deployment_dialect_guard_mismatch(deployed: Deployed) -> None:
    """503 CRITICAL, the rest 'pending': the guard fails, the other parts cannot be judged."""
    deployed.sql("UPDATE app_settings SET value = 'staging' WHERE key = 'environment'")
    run = deployed.run("deployment")
    assert not_passed(run) == {
        "JC-GUARD-01": "failed", "JC-DEEP-01": "failed", "JC-DEEP-07": "failed", **SKIPPED,
        **dict.fromkeys(DEEP_PARTS - {"JC-DEEP-07"} | {"JC-HEALTH-04", "JC-MIG-04"}, "error"),
    }, run.output[-4000:]
    assert ("hard_guards (checks.environment + checks.project_ref) is 'CRITICAL' (Case 3"
            in run.message("JC-DEEP-07"))
    assert "could not check" in run.message("JC-DEEP-02") and "'pending'" in run.message("JC-DEEP-02")
    assert "app_settings.environment is 'staging', expected 'local'" in run.message("JC-GUARD-01")
    assert "JC-DEEP-01 judges it" in run.message("JC-HEALTH-04")
    assert "reports no expected schema version" in run.message("JC-MIG-04")


def test_deployment_dialect_missing_table_and_schema_behind(deployed: Deployed) -> None:
    deployed.sql("DROP TABLE doctor_state")
    deployed.sql("UPDATE app_settings SET value = '20260120' WHERE key = 'schema_version'")
    run = deployed.run("deployment")
    assert not_passed(run) == {
        **dict.fromkeys({"JC-SCHEMA-01", "JC-DEEP-01", "JC-DEEP-04", "JC-DEEP-06", "JC-MIG-01", "JC-MIG-04",
                         "JC-MIG-05"},
                        "failed"),
        "JC-HEALTH-04": "error", **SKIPPED,
    }, run.output[-4000:]
    assert "doctor_state (missing)" in run.message("JC-SCHEMA-01")
    assert "missing: doctor_state" in run.message("JC-DEEP-04")
    assert "migrations (checks.schema_version) is 'error' (Case 4" in run.message("JC-DEEP-06")
    assert "20260126_fk_indices.sql" in run.message("JC-MIG-01")
    assert "app_settings.schema_version" in run.message("JC-MIG-01")
    assert "the newest applied is 20260120" in run.message("JC-MIG-04")


# The deployment's variable names as the loopback deployment plays them: the ones the runbook
# names, but the app reads CHATWOOT_URL where the runbook says CHATWOOT_API_URL.
DEPLOYMENT_ENV_VARS = ["APP_ENV", "SUPABASE_URL", "SUPABASE_PROJECT_REF", "SUPABASE_SERVICE_KEY", "REDIS_URL",
                       "EVOLUTION_API_URL", "EVOLUTION_API_KEY", "CHATWOOT_URL", "ANTHROPIC_API_KEY",
                       "VOYAGE_API_KEY", "SLACK_WEBHOOK_URL", "SLACK_BOT_TOKEN", "GOOGLE_SERVICE_ACCOUNT"]


def test_runbook_lint_against_the_deployment(shared_runbook: Path, deployed: Deployed) -> None:
    """The runbook's own commands against the deployment's schema and routes: besides the
    FK audit and the pre-13 pg_stat_statements columns (wrong everywhere), every statement
    naming a column the deployment's job_executions lacks (the kill-stuck-job UPDATE's
    ended_at / erro / job_id …), fila_mensagens.processada and _migrations is flagged with
    the database's error; the curls of /health/rate, /health/circuit and /health/schema
    answer 404, `.supabase` is not a key of the deployment's deep report, and the
    runbook's CHATWOOT_API_URL is not one of the app's variables (it reads CHATWOOT_URL)."""
    from fixtures.runbook_doc import parse_runbook
    from plugins.config import load_runbook

    contract = load_runbook(ROOT / "runbook.toml").section("runbook_lint")
    doc = parse_runbook(shared_runbook.read_text(), shared_runbook, production_urls=contract.production_urls,
                        env_table_columns=contract.env_table_columns)
    text = {s.line: s.text for s in doc.statements}
    fk = {n for n, t in text.items() if "information_schema.tables t" in t and "t.tablename" in t}
    pgss = {n for n, t in text.items() if "pg_stat_statements" in t and re.search(r"\bmean_time\b", t)}
    jobs = {n for n, t in text.items() if re.search(r"\bjob_executions\b", t)
            and re.search(r"\b(ended_at|created_at|job_id|erro)\b", t)}
    kill = {n for n, t in text.items() if t.startswith("UPDATE job_executions") and "erro" in t}
    queue = {n for n, t in text.items() if "fila_mensagens" in t and "processada" in t}
    log = {n for n, t in text.items() if "_migrations" in t}
    assert len(kill) == 1 and kill <= jobs and len(jobs) == 6 and len(queue) == 2 and len(log) == 1
    routes = {c.line for c in doc.curls if c.path in ("/health/rate", "/health/circuit", "/health/schema")}
    supabase = {c.line for c in doc.curls if c.jq == ".supabase"}
    assert len(supabase) == 1
    chatwoot = set(doc.env_var_lines()["CHATWOOT_API_URL"])
    assert len(chatwoot) == 1 and set(doc.env_var_lines()) - set(DEPLOYMENT_ENV_VARS) == {"CHATWOOT_API_URL"}

    run = deployed.run("deployment", "-m", "runbook", "--runbook-doc", str(shared_runbook),
                       paths=("checks/test_runbook_lint.py",), app_env_vars=DEPLOYMENT_ENV_VARS)
    assert run.outcomes() == {"JC-RUNBOOK-01": "failed", "JC-RUNBOOK-02": "failed",
                              "JC-RUNBOOK-03": "failed", "JC-RUNBOOK-04": "failed"}, run.output[-3000:]
    assert lint_flagged(run, "JC-RUNBOOK-01") == fk | pgss | jobs | queue | log
    rows = {r["line"]: r for r in lint_rows(run, "JC-RUNBOOK-01")}
    [kill_line] = kill
    assert re.search(r'column "(ended_at|erro|job_id)" .*does not exist', str(rows[kill_line]["detail"])), rows[kill_line]
    assert 'relation "public._migrations" does not exist' in str(rows[min(log)]["detail"])
    assert lint_flagged(run, "JC-RUNBOOK-02") == routes
    assert lint_flagged(run, "JC-RUNBOOK-03") == supabase
    assert lint_flagged(run, "JC-RUNBOOK-04") == chatwoot
    # Each broken command is reported with its runbook line, in the certificate's message too.
    [chatwoot_line] = chatwoot
    assert f"line {chatwoot_line}: CHATWOOT_API_URL is not the app's, the app has CHATWOOT_URL" \
        in run.message("JC-RUNBOOK-04")
    assert f"(lines {', '.join(map(str, sorted(routes)))})" in run.message("JC-RUNBOOK-02")
    assert f"line {min(routes)}: " in run.message("JC-RUNBOOK-02") and "404" in run.message("JC-RUNBOOK-02")
    assert f"line {min(supabase)}: " in run.message("JC-RUNBOOK-03")


def lint_rows(run: SuiteRun, inv_id: str) -> list[dict[str, object]]:
    assert run.run_dir is not None, run.output[-3000:]
    return json.loads((run.run_dir / "runbook-lint" / f"{inv_id}.json").read_text())["rows"]


def lint_flagged(run: SuiteRun, inv_id: str) -> set[int]:
    return {int(r["line"]) for r in lint_rows(run, inv_id) if r["outcome"] == "broken"}  # type: ignore[arg-type]


def test_deployment_dialect_ready_200_with_redis_error(deployed: Deployed) -> None:
    """The deployment's /health/ready always answers 200: Redis down shows only in its
    status word and `checks.redis`. The app loses Redis (its URL points nowhere) while the
    shared stack's Redis stays up for everyone else."""
    import dataclasses
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{s.getsockname()[1]}/0"
    assert deployed.api.app is not None
    deployed.api.app = dataclasses.replace(deployed.api.app, redis_url=dead)
    run = deployed.run("deployment", paths=("checks/test_health.py",))
    assert run.message("JC-HEALTH-02") == (
        "GET /health/ready is 200 but Redis ('checks.redis') is 'error', expected ok"), run.output[-3000:]
    # the deep report says the same, in its words; nothing else fails
    assert not_passed(run) == {"JC-HEALTH-02": "failed", "JC-DEEP-01": "failed", "JC-DEEP-02": "failed"}
    assert "redis" in run.message("JC-DEEP-01") and "redis" in run.message("JC-DEEP-02")
