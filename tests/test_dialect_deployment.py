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
import subprocess
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis

from datetime import UTC, datetime, timedelta

from fixtures.migrations import list_migrations, version_key
from fixtures.stack.backends.native import NativeStack
from fixtures.stack.database import TEMPLATE_DB, clone_database
from fixtures.stack.refapp.config import MIGRATIONS_DIR
from plugins.contract import runtime as contract_runtime
from plugins.contract.runbook import load_runbook
from tests.conftest import LOCAL_ENV, LOCAL_REF, ROOT, SuiteRun, run_suite
from tests.deployment_app import DeploymentApi, DeploymentApp, apply_schema_variant, compact, fill_job_history
from tests.loopback import Canned, LoopbackApi

AREA = ("checks/test_health.py", "checks/test_guards.py", "checks/test_health_schema_rate_circuit.py",
        "checks/test_schema.py", "checks/test_scheduler.py", "checks/test_jobs.py", "checks/test_queue.py",
        "checks/test_pause.py", "checks/test_maintenance.py",
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


# The deployed API's variables as the twin plays them: outside production its outbound
# allowlist is set (else its dev guardrail is CRITICAL), and it knows its build.
TWIN_ENV = {"OUTBOUND_ALLOWLIST": "5511900000001,5511900000002", "RUN_MODE": "api",
            "GIT_SHA": "0123456789abcdef0123456789abcdef01234567", "RAILWAY_DEPLOYMENT_ID": "twin-deployment-1",
            "RAILWAY_ENVIRONMENT": LOCAL_ENV, "SUPABASE_URL": f"https://{LOCAL_REF}.supabase.co"}


# Evolution API's answer for a connected instance (GET /instance/connectionState/<instance>).
EVOLUTION = {"/instance/connectionState/Revoluna": Canned(200, {"instance": {"instanceName": "Revoluna",
                                                                             "state": "open"}})}


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
            app_env_vars: list[str] | None = None, environment: str = LOCAL_ENV,
            database_url: str | None = None, profile: str = "", env: dict[str, str] | None = None) -> SuiteRun:
        """The suite against the deployment, read-only as against production (``environment``:
        the profile's, which the hard guards compare with; ``database_url``: another role's)."""
        targets = self.tmp_path / f"targets-{dialect or 'runbook'}.toml"
        targets.write_text(
            "[targets.deployed]\nlocal = false\n"
            f'api_url = "{self.api.url}"\nenvironment = "{environment}"\nproject_ref = "{LOCAL_REF}"\n'
            'database_url_env = "JC_DEPLOYED_DB"\nredis_url_env = "JC_DEPLOYED_REDIS"\n'
            f'migrations_dir = "{MIGRATIONS_DIR}"\n'
            # the loopback deployment's secrets are throwaway, as the local stack's
            "judge_secret_rotation = false\n"
            + (f'dialect = "{dialect}"\n' if dialect else "")
            + (f"app_env_vars = {json.dumps(app_env_vars)}\n" if app_env_vars is not None else "")
            + profile
        )
        return run_suite("--target-file", str(targets), "--target", "deployed", *args, paths=paths,
                         reports=self.tmp_path / "reports",
                         env={"JC_DEPLOYED_DB": database_url or self.database_url,
                              "JC_DEPLOYED_REDIS": self.redis_url, **(env or {})})


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
    with LoopbackApi(routes=EVOLUTION) as evolution:  # the WhatsApp gateway, an outside service
        app = DeploymentApp(url, healthy.info.redis_url, LOCAL_ENV, LOCAL_REF, _expected_version(),
                            env={**TWIN_ENV, "EVOLUTION_API_URL": evolution.url})
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


RAILWAY_IDS = {"api": "svc-whats-agents", "worker": "svc-whats-worker", "scheduler": "svc-whats-scheduler"}


@contextmanager
def railway_for_the_twin(replicas: dict[str, int] | None = None) -> Iterator[tuple[str, dict[str, str]]]:
    """Railway's API as the deployment's project answers it — three services of one image
    (whats-agents, whats-worker, whats-scheduler; the incident report of 2026-01-23) — on
    loopback: the profile lines naming them and the env holding the token."""
    from fixtures.stack.platform import LocalRailway

    counts = {"api": 1, "worker": 1, "scheduler": 1, **(replicas or {})}
    names = {"api": "whats-agents", "worker": "whats-worker", "scheduler": "whats-scheduler"}
    platform = LocalRailway(lambda: counts["scheduler"], services={
        RAILWAY_IDS[role]: (names[role], (lambda role=role: counts[role])) for role in counts})
    url = platform.start()
    try:
        yield (f'railway_api_url = "{url}"\nrailway_token_env = "JC_DEPLOYED_RAILWAY"\n'
               'railway_token_kind = "project"\nrailway_environment_id = "production"\n'
               + "".join(f'railway_{role}_service_id = "{sid}"\n' for role, sid in RAILWAY_IDS.items()),
               {"JC_DEPLOYED_RAILWAY": "twin-railway-token"})
    finally:
        platform.stop()


def _app_checkout(root: Path) -> Path:
    """A checkout of the deployed app's repository for JC-SEC-05: a commit with code that
    reads its secrets from the environment and an .env.example of placeholders."""
    repo = root / "whats-agents"
    (repo / "app").mkdir(parents=True)
    (repo / "app" / "config.py").write_text('import os\nSUPABASE_SERVICE_KEY = os.getenv("SUPABASE_SERVICE_KEY", "")\n')
    (repo / ".env.example").write_text("SUPABASE_SERVICE_KEY=your-service-key-here\nAPP_ENV=production\n")
    git = ["git", "-C", str(repo), "-c", "user.name=twin", "-c", "user.email=twin@example.invalid"]
    subprocess.run([*git[:3], "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "app"], check=True)
    return repo


@pytest.mark.smoke
def test_deployment_dialect_passes_on_the_deployment(deployed: Deployed) -> None:
    """The healthy deployment, with everything the nightly run may be given — a schema baseline
    recorded from it, Railway's API for its three services, a checkout of its repository — is
    certified: no invariant failed, erred or skipped."""
    baseline = deployed.tmp_path / "schema-baseline.json"
    wrote = deployed.run("deployment", "-k", "schema_drift", "--write-schema-baseline", str(baseline))
    assert baseline.is_file(), wrote.output[-3000:]
    repo = _app_checkout(deployed.tmp_path)
    with railway_for_the_twin() as (railway, railway_env):
        run = deployed.run("deployment", "--schema-baseline", str(baseline),
                           profile=railway + f'app_repo = "{repo}"\n', env=railway_env)
    assert not_passed(run) == {}, run.output[-4000:]
    cert = run.certificate
    assert cert is not None and cert["verdict"] == "certified"
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
    # where the code and the runbook disagree beyond a name, the drift section says so
    assert {"health.ready.http_status", "health.deep.schema_behind", "guards.project_ref_unset",
            "health.circuits.scope"} <= set(declared)
    # the build the certificate speaks for is the one the app reports in /health/deep `version`
    assert cert["app"] == {"git_sha": TWIN_ENV["GIT_SHA"], "deployment_id": TWIN_ENV["RAILWAY_DEPLOYMENT_ID"],
                           "schema_version": _expected_version(), "railway_environment": LOCAL_ENV,
                           "run_mode": "api", "reported": True}
    # its Redis and Evolution URLs are on loopback: outside production the app says 'warning'
    [look] = warnings(run, "JC-DEEP-01")
    assert look.startswith("GET /health/deep is healthy, but look at: checks.localhost_check 'warning'"), look


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
    """The deployment is healthy. Read in the runbook's words, every difference is drift:
    routes, shapes, the readiness word, the views that are tables and the migration log kept
    in app_settings. Nothing is reported as an outage. (The deployment answers /health/schema
    — whats-agents app/api/routes/health.py — so that route is no drift; its 'warning' words
    are in parts the runbook does not describe, or mean a schema behind the code, a fault.)"""
    run = deployed.run(None)
    got = not_passed(run)
    assert got == {
        "JC-DRIFT-01": "failed", **SKIPPED,
        **dict.fromkeys({"JC-HEALTH-02", "JC-HEALTH-04", "JC-RATE-01", "JC-CIRCUIT-01",
                         "JC-GUARD-03", "JC-SCHEMA-02"} | DEEP_PARTS | MIGRATION_LOG_READERS | HISTORY_READERS
                        | QUEUE_READERS | MAINTENANCE_NAMES, "error"),
    }, run.output[-4000:]
    for inv, outcome in got.items():
        if outcome == "error":
            assert run.message(inv).startswith("drift, not an outage: "), (inv, run.message(inv))
            assert "dialect 'deployment'" in run.message(inv), (inv, run.message(inv))
    assert run.certificate is not None and run.certificate["dialect"] == "runbook"
    seen = {(d["key"], str(d["runbook"]), str(d["deployment"])) for d in drift_entries(run)}
    # routes: answered only on an alias
    assert ("endpoints.rate", "/health/rate", "/health/rate-limit") in seen
    assert ("endpoints.circuit", "/health/circuit", "/health/circuits") in seen
    assert not any(key == "endpoints.schema" for key, _, _ in seen)
    # shapes and status words
    assert ("health.rate.namespaces_path", "namespaces", "rate_limit") in seen
    assert ("deep.parts.hard_guards", "hard_guards", "['checks.environment', 'checks.project_ref']") in seen
    assert ("health.circuit.per_process", "False", "True") in seen
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
    assert deployed.api.app is not None
    deployed.api.app.set_circuit("evolution", "open")  # the API process's own breaker
    run = deployed.run(None, paths=("checks/test_health.py", "checks/test_health_schema_rate_circuit.py",
                                    "checks/test_drift.py"))
    assert not_passed(run) == {
        **dict.fromkeys({"JC-DEEP-01", "JC-DEEP-04", "JC-CIRCUIT-01", "JC-DRIFT-01"}, "failed"),
        **dict.fromkeys({"JC-HEALTH-02", "JC-HEALTH-04", "JC-RATE-01"} | DEEP_PARTS - {"JC-DEEP-04"}, "error"),
    }, run.output[-4000:]
    tables = run.message("JC-DEEP-04")
    assert tables.startswith("GET /health/deep tables (checks.tables) is 'error'; missing: doctor_state "
                             "(read in dialect 'deployment', /health/deep); also drift from the runbook's words: "
                             "deep.parts.tables: runbook 'tables', deployment 'checks.tables'"), tables
    assert run.message("JC-CIRCUIT-01").startswith("open circuit(s): evolution is 'open' (read in dialect "
                                                   "'deployment', /health/circuits)")
    assert run.message("JC-DEEP-02").startswith("drift, not an outage: ")


def test_deployment_dialect_schema_ahead_of_the_code_is_fine(deployed: Deployed) -> None:
    """Migration first, code second: a database ahead of the code's expected version is what
    the app calls 'ok' (current >= expected, whats-agents app/services/health/deep.py), and so
    does the suite."""
    deployed.sql("UPDATE app_settings SET value = '20990101' WHERE key = 'schema_version'")
    run = deployed.run("deployment", paths=("checks/test_health.py", "checks/test_health_schema_rate_circuit.py",
                                            "checks/test_drift.py"))
    assert not_passed(run) == {}, run.output[-4000:]
    assert warnings(run, "JC-DEEP-06") == []


def test_deployment_dialect_schema_behind_the_code(deployed: Deployed) -> None:
    """Behind the code, the app says 'warning' and still calls the deploy safe (200, healthy,
    deploy_safe true): the suite fails JC-DEEP-06 with the runbook's Case 4, saying so."""
    deployed.sql("UPDATE app_settings SET value = '20260120' WHERE key = 'schema_version'")
    run = deployed.run("deployment", paths=("checks/test_health.py", "checks/test_health_schema_rate_circuit.py"))
    assert not_passed(run) == {"JC-DEEP-06": "failed", "JC-HEALTH-04": "failed"}, run.output[-4000:]
    msg = run.message("JC-DEEP-06")
    assert msg.startswith(f"GET /health/deep migrations (checks.schema_version) is 'warning' ('schema behind the "
                          f"code: 20260120 < {_expected_version()}'): the database is behind the code (Case 4: "
                          "schema behind the code), and the app still calls the deploy safe (status 'healthy', "
                          "HTTP 200, deploy_safe true)"), msg
    # /health/schema says so in its own flag (health.py schema_info): its content is judged
    assert run.message("JC-HEALTH-04") == (
        "GET /health/schema is 200 but says the schema is not up to date: its 'schema_up_to_date' is false "
        f"(current '20260120', expected '{_expected_version()}'); app_settings.schema_version is '20260120': the "
        "database is behind what the code needs (Case 4)")


def test_deployment_dialect_schema_version_row_missing(deployed: Deployed) -> None:
    """No app_settings.schema_version row: the app's .single() read raises, its part says
    'error' and — unlike every other error — its report stays healthy/200, deploy_safe true
    (whats-agents app/services/health/deep.py _verificar_schema_version). The gate fails — the
    deploy is not safe — naming the part by the app's path with the app's message (issue 16
    point 5); JC-DEEP-08 fails (a healthy report over a failing part), JC-DEEP-06 fails naming
    the missing row (the runbook's "Forgetting to update app_settings version"), not "behind
    the code", and /health/schema says schema_up_to_date false (JC-HEALTH-04); the other
    readers of the report cannot decide."""
    deployed.sql("DELETE FROM app_settings WHERE key = 'schema_version'")
    run = deployed.run("deployment", paths=("checks/test_health.py", "checks/test_guards.py",
                                            "checks/test_health_schema_rate_circuit.py"))
    assert not_passed(run) == {
        **dict.fromkeys({"JC-DEEP-01", "JC-DEEP-06", "JC-DEEP-08", "JC-HEALTH-04"}, "failed"),
        **dict.fromkeys(DEEP_PARTS - {"JC-DEEP-06"} | {"JC-GUARD-03", "JC-GUARD-05"}, "error"),
    }, run.output[-4000:]
    assert run.message("JC-DEEP-01") == (
        "GET /health/deep says 'healthy' (HTTP 200, deploy_safe true) over its own parts: checks.schema_version "
        "'error' (Case 4): 'PGRST116: JSON object requested, 0 rows returned' — the deploy is not safe: the app's "
        "gate did not count it (JC-DEEP-08)")
    assert run.message("JC-HEALTH-04").endswith(
        "there is no app_settings.schema_version row (\"Forgetting to update app_settings version\", runbook Common "
        "Mistakes)"), run.message("JC-HEALTH-04")
    msg = run.message("JC-DEEP-06")
    assert msg.startswith("GET /health/deep migrations (checks.schema_version) is 'error' (Case 4: the app's "
                          "schema-version read failed): the app says 'PGRST116"), msg
    assert ("app_settings has no 'schema_version' row (\"Forgetting to update app_settings version\", runbook "
            "Common Mistakes)") in msg
    assert msg.endswith("the app still reports healthy (HTTP 200, deploy_safe true): its check failed without "
                        "failing its report"), msg
    assert "behind the code" not in msg
    assert "top-level status 'healthy' while migrations 'error'" in run.message("JC-DEEP-08")


@pytest.mark.smoke
def test_deployment_dialect_guard_mismatch(deployed: Deployed) -> None:
    """A wrong app_settings row: the app's guard answers 503 CRITICAL at once, its later parts
    'pending' and no version/schema keys (deep.py's early return); app_settings is named as
    the odd one out. /health/schema still answers (its own route)."""
    deployed.sql("UPDATE app_settings SET value = 'staging' WHERE key = 'environment'")
    run = deployed.run("deployment")
    assert not_passed(run) == {
        "JC-GUARD-01": "failed", "JC-DEEP-01": "failed", "JC-DEEP-07": "failed", **SKIPPED,
        **dict.fromkeys(DEEP_PARTS - {"JC-DEEP-07"}, "error"),
    }, run.output[-4000:]
    summary = "environment: APP_ENV 'local' vs app_settings 'staging'"
    assert (f"hard_guards (checks.environment + checks.project_ref) is 'CRITICAL' (Case 3: hard guard mismatch) — "
            f"{summary}" in run.message("JC-DEEP-07")), run.message("JC-DEEP-07")
    # one cause, one failure: the parts the early return left 'pending' point at the guard
    for inv, part in (("JC-DEEP-02", "redis"), ("JC-DEEP-03", "supabase"), ("JC-DEEP-04", "tables"),
                      ("JC-DEEP-05", "views"), ("JC-DEEP-06", "schema_version")):
        name = "migrations" if part == "schema_version" else part
        assert run.message(inv) == (
            f"the app could not check {name}: GET /health/deep reports checks.{part} 'pending', because of "
            f"checks.environment 'CRITICAL' ({summary}) — the cause, failed by JC-DEEP-01, JC-DEEP-07; {name} itself "
            "was not judged"), run.message(inv)
    assert "app_settings.environment is 'staging', expected 'local'" in run.message("JC-GUARD-01")
    assert "app_settings is the odd one out" in run.message("JC-GUARD-01")
    gate = run.message("JC-DEEP-01")
    assert gate.startswith(f"hard guard broken, {summary} — GET /health/deep answered HTTP 503 status 'CRITICAL', "
                           "expected 200 healthy ("), gate
    assert ("failing parts: checks.environment 'CRITICAL' (Case 3); not checked (pending), because of "
            "checks.environment: checks.redis, checks.supabase") in gate, gate
    # the run's one-line summary: the first blocker of certificate.md is the gate's line
    assert run.run_dir is not None
    page = (run.run_dir / "certificate.md").read_text()
    first = next(line for line in page.splitlines() if line.startswith("  - found: "))
    assert first.startswith(f"  - found: hard guard broken, {summary} — "), first
    # the early return carries no build: the certificate says so instead of guessing
    assert run.certificate is not None and run.certificate["app"]["git_sha"] is None
    assert "deep: HTTP 503" in run.certificate["app"]["problems"]


def test_deployment_dialect_wrong_app_env_in_the_container(deployed: Deployed) -> None:
    """The container runs with another APP_ENV than app_settings and the profile: the app's
    own guard says CRITICAL, and the suite names the container's variable as the side to fix
    (JC-GUARD-03); app_settings is right (JC-GUARD-01 passes) and the app read it (JC-GUARD-05)."""
    import dataclasses

    assert deployed.api.app is not None
    deployed.api.app = dataclasses.replace(deployed.api.app, app_env="staging")
    run = deployed.run("deployment", paths=("checks/test_health.py", "checks/test_guards.py"))
    assert not_passed(run) == {
        "JC-GUARD-03": "failed", "JC-DEEP-01": "failed", "JC-DEEP-07": "failed",
        **dict.fromkeys(DEEP_PARTS - {"JC-DEEP-07"}, "error"),
    }, run.output[-4000:]
    msg = run.message("JC-GUARD-03")
    assert msg.startswith("GET /health/deep reports environment 'staging' (expected 'local'; app_settings 'local' "
                          "— app_settings agrees with the profile: the container's variable is the odd one out)"), msg


def test_deployment_dialect_project_ref_unset_in_the_container(deployed: Deployed) -> None:
    """Without SUPABASE_PROJECT_REF the app skips its project-ref guard and stays healthy
    (deep.py). Rule 2 says it MUST match: JC-GUARD-03 and JC-DEEP-07 fail naming the variable
    and the skipped guard; JC-GUARD-05 does not read the app's null as another database."""
    import dataclasses

    assert deployed.api.app is not None
    deployed.api.app = dataclasses.replace(deployed.api.app, project_ref="")
    run = deployed.run("deployment", paths=("checks/test_health.py", "checks/test_guards.py"))
    assert not_passed(run) == {"JC-GUARD-03": "failed", "JC-DEEP-07": "failed"}, run.output[-4000:]
    msg = run.message("JC-GUARD-03")
    assert msg.startswith("GET /health/deep reports SUPABASE_PROJECT_REF unset in the container "
                          "('checks.project_ref.app_ref' is ''); the app's guard is 'skipped' ("), msg
    assert ("the project_ref hard guard is disabled, while rule 2 says SUPABASE_PROJECT_REF MUST equal "
            f"app_settings.supabase_project_ref (the target's '{LOCAL_REF}')") in msg
    assert "field" not in msg and "absent" not in msg
    assert run.message("JC-DEEP-07").startswith("the app does not run its hard guard: checks.project_ref 'skipped'")
    [note] = warnings(run, "JC-GUARD-05")
    assert "supabase_project_ref (the app did not read it; the app's guard is 'skipped'" in note


def test_deployment_dialect_missing_table_and_schema_behind(deployed: Deployed) -> None:
    """A critical table dropped (503: the part that caused it is named) while the schema is
    behind the code (a 'warning' that does not fail the app's gate, but fails JC-DEEP-06)."""
    deployed.sql("DROP TABLE doctor_state")
    deployed.sql("UPDATE app_settings SET value = '20260120' WHERE key = 'schema_version'")
    run = deployed.run("deployment")
    assert not_passed(run) == {
        **dict.fromkeys({"JC-SCHEMA-01", "JC-DEEP-01", "JC-DEEP-04", "JC-DEEP-06", "JC-MIG-01", "JC-MIG-04",
                         "JC-MIG-05", "JC-HEALTH-04"},
                        "failed"),
        **SKIPPED,
    }, run.output[-4000:]
    assert "doctor_state (missing)" in run.message("JC-SCHEMA-01")
    assert "missing: doctor_state" in run.message("JC-DEEP-04")
    assert "failing parts: checks.tables 'error' (missing: doctor_state) (Case 5)" in run.message("JC-DEEP-01")
    assert "migrations (checks.schema_version) is 'warning'" in run.message("JC-DEEP-06")
    assert "(Case 4: schema behind the code)" in run.message("JC-DEEP-06")
    assert "20260126_fk_indices.sql" in run.message("JC-MIG-01")
    assert "app_settings.schema_version" in run.message("JC-MIG-01")
    assert "the newest applied is 20260120" in run.message("JC-MIG-04")


# The deployment's variable names (whats-agents app/core/config.py, app/services/health/
# constants.py, app/services/google_docs.py): the ones the runbook names, but the app reads
# CHATWOOT_URL where the runbook says CHATWOOT_API_URL, and Google credentials from
# GOOGLE_APPLICATION_CREDENTIALS / GOOGLE_CREDENTIALS_JSON, never GOOGLE_SERVICE_ACCOUNT.
DEPLOYMENT_ENV_VARS = ["APP_ENV", "SUPABASE_URL", "SUPABASE_PROJECT_REF", "SUPABASE_SERVICE_KEY", "REDIS_URL",
                       "EVOLUTION_API_URL", "EVOLUTION_API_KEY", "CHATWOOT_URL", "ANTHROPIC_API_KEY",
                       "VOYAGE_API_KEY", "SLACK_WEBHOOK_URL", "SLACK_BOT_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS",
                       "GOOGLE_CREDENTIALS_JSON"]


def test_runbook_lint_against_the_deployment(shared_runbook: Path, deployed: Deployed) -> None:
    """The runbook's own commands against the deployment's schema and routes: besides the
    FK audit and the pre-13 pg_stat_statements columns (wrong everywhere), every statement
    naming a column the deployment's job_executions lacks (the kill-stuck-job UPDATE's
    ended_at / erro / job_id …), fila_mensagens.processada and _migrations is flagged with
    the database's error; the curls of /health/rate and /health/circuit answer 404 (the app
    serves /health/schema, with the runbook's .current_version), `.supabase` is not a key of the deployment's deep report, and the
    runbook's CHATWOOT_API_URL is not one of the app's variables (it reads CHATWOOT_URL), nor
    its GOOGLE_SERVICE_ACCOUNT (no code reads it)."""
    from fixtures.runbook_doc import parse_runbook
    from plugins.contract.runbook import load_runbook

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
    routes = {c.line for c in doc.curls if c.path in ("/health/rate", "/health/circuit")}
    supabase = {c.line for c in doc.curls if c.jq == ".supabase"}
    assert len(supabase) == 1
    chatwoot = set(doc.env_var_lines()["CHATWOOT_API_URL"])
    google = set(doc.env_var_lines()["GOOGLE_SERVICE_ACCOUNT"])
    assert len(chatwoot) == 1 and set(doc.env_var_lines()) - set(DEPLOYMENT_ENV_VARS) == {
        "CHATWOOT_API_URL", "GOOGLE_SERVICE_ACCOUNT"}

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
    assert lint_flagged(run, "JC-RUNBOOK-04") == chatwoot | google
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


def _dead_url(scheme: str) -> str:
    """A loopback port nothing listens on."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return (f"redis://127.0.0.1:{port}/0" if scheme == "redis"
            else f"host=127.0.0.1 port={port} dbname=julia user=julia connect_timeout=2")


def test_deployment_dialect_redis_down_for_the_app(deployed: Deployed) -> None:
    """The app loses Redis (its URL points nowhere) while the shared stack's Redis stays up for
    everyone else. /health/ready still answers 200, 'degraded': JC-HEALTH-02 fails quoting the
    word and the dependency; /health/rate-limit answers 200 with {"rate_limit": {}}: JC-RATE-01
    cannot decide and says why (whats-agents app/services/rate_limiter.py)."""
    import dataclasses

    assert deployed.api.app is not None
    deployed.api.app = dataclasses.replace(deployed.api.app, redis_url=_dead_url("redis"))
    run = deployed.run("deployment", paths=("checks/test_health.py", "checks/test_health_schema_rate_circuit.py"))
    assert not_passed(run) == {"JC-HEALTH-02": "failed", "JC-DEEP-01": "failed", "JC-DEEP-02": "failed",
                               "JC-RATE-01": "error"}, run.output[-3000:]
    assert run.message("JC-HEALTH-02") == (
        "GET /health/ready is 200 but its status is 'degraded', not ready: checks.redis is 'error'")
    assert run.message("JC-RATE-01") == (
        "Redis down: the app reports no counters (GET /health/rate-limit 'rate_limit' is {}; GET /health/ready "
        "checks.redis is 'error')")
    assert "failing parts: checks.redis 'error' (Case 1): 'Redis PING failed'" in run.message("JC-DEEP-01")
    assert "redis" in run.message("JC-DEEP-02")


def test_deployment_dialect_database_down_for_the_app(deployed: Deployed) -> None:
    """The app cannot reach its database: /health/ready answers 200 'not_ready' (a not_ready app
    passed JC-HEALTH-02 before it read the word); /health/schema answers 200 with its own
    {"error"} (JC-HEALTH-04, the endpoint's contract, fails quoting it); the deep report's
    failing parts are each named with the app's message, the connection as their cause."""
    import dataclasses

    assert deployed.api.app is not None
    deployed.api.app = dataclasses.replace(deployed.api.app, database_url=_dead_url("postgres"))
    run = deployed.run("deployment", paths=("checks/test_health.py", "checks/test_guards.py",
                                            "checks/test_health_schema_rate_circuit.py"))
    assert not_passed(run) == {
        **dict.fromkeys({"JC-HEALTH-02", "JC-HEALTH-04", "JC-DEEP-01", "JC-DEEP-03", "JC-DEEP-04", "JC-DEEP-05",
                         "JC-DEEP-06", "JC-DEEP-07"}, "failed"),
        "JC-GUARD-05": "error",
    }, run.output[-3000:]
    ready = run.message("JC-HEALTH-02")
    assert ready.startswith("GET /health/ready is 200 but its status is 'not_ready', not ready: checks.database is "
                            "'error' (connection failed"), ready
    assert "Connection refused" in ready
    schema = run.message("JC-HEALTH-04")
    assert schema.startswith("GET /health/schema answered HTTP 200 with the app's own error in 'error': "
                             "'connection failed"), schema
    assert "checks.supabase 'error' (Case 2): 'connection failed" in run.message("JC-DEEP-01")
    for part in ("JC-DEEP-04", "JC-DEEP-06", "JC-DEEP-07"):
        assert "fix the database connection first (Case 2)" in run.message(part), run.message(part)
    assert "the app could not read app_settings" in run.message("JC-GUARD-05")


def test_deployment_dialect_rate_counters_near_the_limit(deployed: Deployed) -> None:
    """The deployment's counters are Redis strings per Brasília hour and day; 19 of the hour's
    20 fails JC-RATE-01 naming the counter."""
    from zoneinfo import ZoneInfo

    client = redis.Redis.from_url(deployed.redis_url)
    now = datetime.now(UTC)
    # this hour and the next, in Brasília time, so an hour boundary during the run changes nothing
    for at in (now, now + timedelta(hours=1)):
        client.set(f"rate:hora:{at.astimezone(ZoneInfo('America/Sao_Paulo')):%Y%m%d%H}", 19, ex=7200)
    try:
        run = deployed.run("deployment", paths=("checks/test_health_schema_rate_circuit.py",))
    finally:
        client.delete(*[f"rate:hora:{at.astimezone(ZoneInfo('America/Sao_Paulo')):%Y%m%d%H}"
                        for at in (now, now + timedelta(hours=1))])
    assert not_passed(run) == {"JC-RATE-01": "failed"}, run.output[-3000:]
    msg = run.message("JC-RATE-01")
    assert "msgs_hora 19/20 (95%)" in msg and "msgs_dia" not in msg, msg


def test_deployment_dialect_circuit_open_in_the_api_process(deployed: Deployed) -> None:
    """Circuits are the API process's own memory (whats-agents app/services/circuit_breaker.py),
    not Redis: an open evolution breaker fails JC-CIRCUIT-01, which says whose state it is."""
    assert deployed.api.app is not None
    deployed.api.app.set_circuit("evolution", "open")
    run = deployed.run("deployment", paths=("checks/test_health_schema_rate_circuit.py",))
    assert not_passed(run) == {"JC-CIRCUIT-01": "failed"}, run.output[-3000:]
    assert run.message("JC-CIRCUIT-01") == (
        "GET /health/circuits: evolution is 'open' (open: its requests are being rejected) — the API process's "
        "own in-memory breaker (the worker and the scheduler keep their own)")


def test_deployment_dialect_empty_allowlist_outside_production(deployed: Deployed) -> None:
    """Outside production an empty OUTBOUND_ALLOWLIST makes the app's dev_guardrails part
    CRITICAL (503): the gate's message names that part by the app's path and quotes it."""
    assert deployed.api.app is not None
    del deployed.api.app.env["OUTBOUND_ALLOWLIST"]
    run = deployed.run("deployment", paths=("checks/test_health.py",))
    assert not_passed(run) == {"JC-DEEP-01": "failed"}, run.output[-3000:]
    assert run.message("JC-DEEP-01").startswith(
        "GET /health/deep answered HTTP 503 status 'unhealthy', expected 200 healthy; failing parts: "
        "checks.dev_guardrails 'CRITICAL': 'OUTBOUND_ALLOWLIST is empty outside production")


def test_deployment_dialect_prompts_missing_and_too_short(deployed: Deployed) -> None:
    """The prompts contract (whats-agents app/services/health/schema.py): a required prompt
    absent and another under its minimum length make the report unhealthy; JC-DEEP-01 names
    checks.prompts with what the app lists."""
    deployed.sql("DELETE FROM prompts WHERE nome = 'julia_tools'")
    deployed.sql("UPDATE prompts SET conteudo = 'curto' WHERE nome = 'julia_primeira_msg'")
    run = deployed.run("deployment", paths=("checks/test_health.py",))
    assert not_passed(run) == {"JC-DEEP-01": "failed"}, run.output[-3000:]
    assert run.message("JC-DEEP-01").endswith(
        "failing parts: checks.prompts 'error' (missing: julia_tools) (too_short: [{\"nome\": \"julia_primeira_msg\", "
        "\"len\": 5, \"min\": 100}])")


def test_deployment_dialect_localhost_in_production(deployed: Deployed) -> None:
    """In production a service URL on localhost is CRITICAL (503, 'unhealthy' — not the
    guards' early return) and the dev guardrails are skipped."""
    import dataclasses

    deployed.sql("UPDATE app_settings SET value = 'production' WHERE key = 'environment'")
    assert deployed.api.app is not None
    deployed.api.app = dataclasses.replace(deployed.api.app, app_env="production")
    run = deployed.run("deployment", paths=("checks/test_health.py", "checks/test_guards.py"),
                       environment="production")
    assert not_passed(run) == {"JC-DEEP-01": "failed"}, run.output[-3000:]
    gate = run.message("JC-DEEP-01")
    assert gate.startswith("GET /health/deep answered HTTP 503 status 'unhealthy', expected 200 healthy; failing "
                           "parts: checks.localhost_check 'CRITICAL': \"localhost URLs in production: "), gate
    assert "EVOLUTION_API_URL=http://127.0.0.1:" in gate and "REDIS_URL=" in gate
    assert "not checked (skipped): checks.dev_guardrails" in gate


def test_deployment_dialect_build_not_set(deployed: Deployed) -> None:
    """The app reports the literal "unknown" when GIT_SHA / RAILWAY_GIT_COMMIT_SHA (and the
    deployment id's variables) are unset (whats-agents app/services/health/constants.py): the
    certificate records it as not set, never as a sha."""
    assert deployed.api.app is not None
    for name in ("GIT_SHA", "RAILWAY_DEPLOYMENT_ID"):
        del deployed.api.app.env[name]
    run = deployed.run("deployment", paths=("checks/test_health.py",))
    assert not_passed(run) == {}, run.output[-3000:]
    assert run.certificate is not None
    app = run.certificate["app"]
    assert app["git_sha"] is None and app["deployment_id"] is None and app["run_mode"] == "api"
    assert app["problems"] == ["git_sha: the app reports 'unknown' (not set in its environment)",
                               "deployment_id: the app reports 'unknown' (not set in its environment)"]


def test_deployment_dialect_schema_up_to_date_disagrees_with_its_rule(deployed: Deployed) -> None:
    """/health/schema's schema_up_to_date is the app's own rule, current >= expected as strings
    (whats-agents app/api/routes/health.py): an answer where it says otherwise fails
    JC-HEALTH-04, the endpoint's contract."""
    version = _expected_version()
    deployed.api.routes["/health/schema"] = Canned(200, {
        "current_version": version, "expected_version": "20991231000000", "schema_up_to_date": True,
        "applied_at": None, "fingerprint": "x", "critical_tables": [], "critical_views": [], "timestamp": "t"})
    run = deployed.run("deployment", paths=("checks/test_health_schema_rate_circuit.py",))
    assert not_passed(run) == {"JC-HEALTH-04": "failed"}, run.output[-3000:]
    assert run.message("JC-HEALTH-04") == (
        f"GET /health/schema says schema_up_to_date true but current '{version}' >= expected '20991231000000' "
        "is false")


def test_deployment_dialect_app_reads_another_database(healthy: NativeStack, variant_template: str,
                                                       deployed: Deployed) -> None:
    """The app is connected to another database than the target's (a copy whose app_settings
    match the container): its own guards pass, but what it read (checks.environment.db_env)
    is not what this target's app_settings holds — JC-GUARD-05, "Using wrong Supabase
    project"; JC-GUARD-01 names this target's row as the odd one out."""
    import dataclasses

    assert healthy.info is not None and deployed.api.app is not None
    clone_database(healthy.info.admin_url, variant_template, "julia_deployment_other")
    deployed.api.app = dataclasses.replace(
        deployed.api.app, database_url=_with_db(healthy.info.database_url, "julia_deployment_other"))
    deployed.sql("UPDATE app_settings SET value = 'staging' WHERE key = 'environment'")
    run = deployed.run("deployment", paths=("checks/test_health.py", "checks/test_guards.py"))
    assert not_passed(run) == {"JC-GUARD-01": "failed", "JC-GUARD-05": "failed"}, run.output[-3000:]
    assert run.message("JC-GUARD-05") == (
        "GET /health/deep: the app reads another app_settings than this target's database — environment: the app "
        "read 'local', app_settings holds 'staging'")
    assert "the app agrees with the profile: app_settings is the odd one out" in run.message("JC-GUARD-01")


def _readme_role_sql() -> str:
    """The read-only role of README's "Pointing it at the real deployment", as printed."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```sql\n(.*?)^```", readme, re.S | re.M)
    [block] = [b for b in blocks if "julia-conformance read-only role" in b]
    return block


def test_readme_read_only_role_runs_the_gate(deployed: Deployed, healthy: NativeStack) -> None:
    """The README's recipe for the database role, run as printed (its password replaced), is
    enough for the gate against the deployment: every table has row-level security, as the real
    schema has, and the role sees the rows; it cannot write."""
    assert healthy.info is not None
    password = "jc-" + secrets.token_hex(8)
    statement = _readme_role_sql().replace("'change-me'", f"'{password}'")
    with psycopg.connect(healthy.info.admin_url, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS jc_reader")
        conn.execute(statement)  # type: ignore[arg-type]
    try:
        info = psycopg.conninfo.conninfo_to_dict(deployed.database_url)
        info.update(user="jc_reader", password=password)
        url = psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in info.items() if v is not None})
        with psycopg.connect(url, autocommit=True) as conn, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("UPDATE app_settings SET value = value")
        run = deployed.run("deployment", "-m", "postdeploy", database_url=url)
        assert not_passed(run) == {"JC-SCHED-04": "skipped"}, run.output[-3000:]
    finally:
        with psycopg.connect(healthy.info.admin_url, autocommit=True) as conn:
            conn.execute("REVOKE pg_read_all_data, pg_monitor FROM jc_reader")
            conn.execute("DROP ROLE IF EXISTS jc_reader")


@pytest.mark.parametrize(("body", "said"), [
    ({"status": "unhealthy", "timestamp": "2026-12-05T00:00:00Z", "service": "julia-api"}, "says 'unhealthy'"),
    ({"timestamp": "2026-12-05T00:00:00Z", "service": "julia-api"}, "has no 'status'"),
])
def test_deployment_dialect_liveness_body_is_judged(deployed: Deployed, body: dict[str, str], said: str) -> None:
    """/health is {"status": "healthy", "timestamp", "service"} (whats-agents
    app/api/routes/health.py health_check): a 200 whose body says anything else, or nothing,
    fails JC-HEALTH-01 quoting it — and nothing else (the deep gate reads its own route)."""
    deployed.api.routes["/health"] = Canned(200, body)
    run = deployed.run("deployment", "-m", "postdeploy")
    assert not_passed(run) == {"JC-HEALTH-01": "failed", "JC-SCHED-04": "skipped"}, run.output[-3000:]
    assert f"GET /health is 200 but {said}" in run.message("JC-HEALTH-01")
    assert "expected healthy" in run.message("JC-HEALTH-01")


def _twin_deep(deployed: Deployed, **changes: object) -> Canned:
    """The twin's own healthy /health/deep answer, with ``changes``, served as 200."""
    assert deployed.api.app is not None
    code, body = deployed.api.app.deep()
    assert code == 200, body
    return Canned(200, {**body, **changes})


@pytest.mark.parametrize("case", ["readiness", "deep"])
def test_deployment_dialect_a_200_saying_it_is_not_well_fails(deployed: Deployed, case: str) -> None:
    """Deployment dialect: a 200 whose status word is outside the contract's healthy set fails
    the check that is the endpoint's contract, quoting the word — /health/ready's 'degraded'
    with every dependency ok (whats-agents app/api/routes/health.py readiness_check words), a
    deep report saying 'unhealthy' with HTTP 200 (deep.py answers 503 with that word). (/health:
    test_deployment_dialect_liveness_body_is_judged; /health/schema's error body and flag:
    the database-down and schema-behind tests.)"""
    health = ("checks/test_health.py", "checks/test_guards.py", "checks/test_health_schema_rate_circuit.py")
    if case == "readiness":
        deployed.api.routes["/health/ready"] = Canned(200, {"status": "degraded", "checks": {
            "redis": "ok", "database": "ok", "evolution": "ok"}, "timestamp": "2026-12-05T00:00:00+00:00"})
        run = deployed.run("deployment", paths=health)
        assert not_passed(run) == {"JC-HEALTH-02": "failed"}, run.output[-3000:]
        assert run.message("JC-HEALTH-02") == (
            "GET /health/ready is 200 but its status is 'degraded', not ready: no reported dependency says which "
            "one failed")
    else:
        deployed.api.routes["/health/deep"] = _twin_deep(deployed, status="unhealthy", deploy_safe=False)
        run = deployed.run("deployment", paths=health)
        assert not_passed(run) == {
            "JC-DEEP-01": "failed", "JC-DEEP-08": "failed",
            **dict.fromkeys(DEEP_PARTS | {"JC-GUARD-03", "JC-GUARD-05"}, "error")}, run.output[-3000:]
        assert run.message("JC-DEEP-01").startswith(
            "GET /health/deep answered HTTP 200 status 'unhealthy', expected 200 healthy"), run.message("JC-DEEP-01")
        assert "(not healthy) with HTTP 200, expected 503" in run.message("JC-DEEP-08")
