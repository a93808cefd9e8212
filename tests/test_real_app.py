"""The post-deploy gate against the real Júlia, booted from a checkout (opt-in).

Unit tests against the deployment twin prove the checks read what the twin says; this proves
they read what the real app says. With ``JC_REAL_APP_DIR`` naming a checkout of
rafa77-tech/whats-agents, tests/real_app.py installs the app's locked dependencies under
Python 3.13, loads its production schema dump into a database of the stack's PostgreSQL,
starts its api, worker and scheduler exactly as its ``scripts/entrypoint.sh`` does (Supabase's
REST layer played by tests/postgrest_double.py, the SaaS by loopback fakes), and runs
``-m postdeploy`` against it with the deployment dialect, as an operator would against
production: a healthy real deployment must be certified.

    JC_REAL_APP_DIR=/path/to/whats-agents .venv/bin/python -m pytest -q -s tests/test_real_app.py

The run prints what it measured and, when the gate is not certified, every invariant that
did not pass with its message (also in ``real-app-run.json`` in the test's tmp_path).
Without ``JC_REAL_APP_DIR`` the real-app test is skipped; the loader's own test still runs.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from fixtures.stack.backends.native import NativeStack
from tests.conftest import LOCAL_ENV, LOCAL_REF, SuiteRun, run_suite
from tests.real_app import REAL_APP_DIR_ENV, Checkout, PromptContract, RealApp, RealAppError, prompt_text
from tests.real_app_schema import BootstrapError, apply_sql_files, create_platform_roles, drop_roles, load_dump_file

DB_ENV, REDIS_ENV, RAILWAY_ENV = "JC_REALAPP_DB", "JC_REALAPP_REDIS", "JC_REALAPP_RAILWAY_TOKEN"
LOADER_DB = "jc_real_app_loader"

requires_checkout = pytest.mark.skipif(
    not os.environ.get(REAL_APP_DIR_ENV),
    reason=f"{REAL_APP_DIR_ENV} is unset: set it to a checkout of rafa77-tech/whats-agents to boot the real app "
           "and run the post-deploy gate against it")


ENDPOINTS = ("/health", "/health/ready", "/health/deep", "/health/schema", "/health/rate-limit", "/health/circuits",
             "/health/jobs")


def _endpoints(app: RealApp) -> dict[str, Any]:
    """What the real app answers on the routes the gate reads (evidence for the report)."""
    answers: dict[str, Any] = {}
    for path in ENDPOINTS:
        try:
            r = httpx.get(app.api_url + path, timeout=30)
            body: Any = r.json() if r.headers.get("content-type", "").startswith("application/json") else r.text[:200]
            answers[path] = {"status": r.status_code, "body": body}
        except httpx.HTTPError as exc:
            answers[path] = {"error": f"{type(exc).__name__}: {exc}"}
    return answers


def _summary(app: RealApp, run: SuiteRun, total_s: float) -> dict[str, Any]:
    assert app.schema_report is not None and app.migrations_report is not None and app.double is not None
    rows = run.certificate["invariants"] if run.certificate else []
    return {
        "verdict": run.certificate["verdict"] if run.certificate else None,
        "exit_code": run.exitcode,
        "figures_s": {"install": round(app.timings.install_s, 1), "install_cached": app.timings.install_cached,
                      "database": round(app.timings.database_s, 1), "boot": round(app.timings.boot_s, 1),
                      "first_jobs": round(app.timings.settle_s, 1), "total": round(total_s, 1)},
        "schema": app.schema_report.summary(),
        "migrations": app.migrations_report.summary(),
        "outcomes": {r["id"]: r["outcome"] for r in rows},
        "not_passed": [{"id": r["id"], "outcome": r["outcome"], "message": r["message"]}
                       for r in rows if r["outcome"] != "passed"],
        "warnings": {r["id"]: r["warnings"] for r in rows if r.get("warnings")},
        "identity": run.certificate.get("app") if run.certificate else None,
        "identity_expected": {"git_sha": app.git_sha, "deployment_id": app.deployment_id},
        "jobs_since_boot": app.jobs_since_boot(),
        "app_log_errors": app.log_errors(),
        "double_errors": sorted({f"{m} {p.split('?')[0]} -> {s} {c}" for m, p, s, c in app.double.errors()}),
        "fakes_unanswered": sorted({f"{m} {p}" for m, p, s in (app.fakes.requests if app.fakes else []) if s >= 400}),
        "output_tail": run.output[-3000:] if run.certificate is None else "",
    }


@requires_checkout
def test_real_app_is_certified_by_the_postdeploy_gate(stack: NativeStack, tmp_path: Path) -> None:
    checkout = Checkout(Path(os.environ[REAL_APP_DIR_ENV]).resolve())
    for needed in (checkout.lock, checkout.schema_dump, checkout.root / "scripts" / "entrypoint.sh"):
        assert needed.is_file(), (f"{REAL_APP_DIR_ENV}={checkout.root}: {needed.name} missing — not a whats-agents "
                                  "checkout")
    assert stack.info is not None
    started = time.monotonic()
    with RealApp(checkout, stack.info, LOCAL_ENV, LOCAL_REF) as app:
        targets = app.targets_toml(tmp_path / "targets.toml", database_env=DB_ENV, redis_env=REDIS_ENV,
                                   railway_env=RAILWAY_ENV)
        run = run_suite("--target-file", str(targets), "--target", "realapp", "-m", "postdeploy",
                        reports=tmp_path / "reports", timeout=900,
                        env=app.suite_env(database_env=DB_ENV, redis_env=REDIS_ENV, railway_env=RAILWAY_ENV))
        summary = {**_summary(app, run, time.monotonic() - started), "endpoints": _endpoints(app)}
    assert app.leftover_processes() == [], "a process of the real app outlived the run"
    (tmp_path / "real-app-run.json").write_text(json.dumps(summary, indent=2, default=str))
    print(json.dumps(summary, indent=2, default=str))
    assert run.certificate is not None, run.output[-3000:]
    assert run.certificate["verdict"] == "certified", json.dumps(summary["not_passed"], indent=2)


@requires_checkout
def test_a_real_app_that_cannot_start_says_why_and_leaves_nothing(stack: NativeStack) -> None:
    """The app refuses to import without its Evolution key (app/services/whatsapp.py): the
    harness names the process and shows its last lines, and removes everything it made."""
    assert stack.info is not None

    def roles() -> list[tuple[str]]:
        with psycopg.connect(stack.info.admin_url) as conn:   # type: ignore[union-attr]
            return conn.execute("SELECT rolname FROM pg_roles ORDER BY 1").fetchall()

    before = roles()
    app = RealApp(Checkout(Path(os.environ[REAL_APP_DIR_ENV]).resolve()), stack.info, LOCAL_ENV, LOCAL_REF,
                  env_overrides={"EVOLUTION_API_KEY": ""})
    with pytest.raises(RealAppError, match=r"(?s)the real app's api exited \(code \d+\) before it was ready; its "
                                           r"last lines:.*EVOLUTION_API_KEY"):
        with app:
            pass
    assert app.leftover_processes() == []
    with psycopg.connect(stack.info.admin_url) as conn:
        assert conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'jc_real_app_%'").fetchall() == []
    assert roles() == before   # the Supabase roles it created, if any, are gone again


# --- the schema loader's rule, on a dump of our own ---------------------------------------------

DUMP = """
SET check_function_bodies = false;
SELECT pg_catalog.set_config('search_path', '', false);
CREATE EXTENSION IF NOT EXISTS "jc_no_such_extension" WITH SCHEMA "public";
CREATE EXTENSION IF NOT EXISTS "pg_trgm" WITH SCHEMA "public";
CREATE TABLE "public"."docs" ("id" integer NOT NULL, "body" "text", "emb" "public"."jc_vec"(3));
COMMENT ON COLUMN "public"."docs"."emb" IS 'a column of the missing extension';
COMMENT ON COLUMN "public"."docs"."body" IS 'kept';
CREATE INDEX "docs_emb" ON "public"."docs" USING "jc_am" ("emb");
COMMENT ON INDEX "public"."docs_emb" IS 'its index';
CREATE INDEX "docs_body" ON "public"."docs" USING "gin" ("body" "public"."gin_trgm_ops");
CREATE OR REPLACE FUNCTION "public"."near"("q" "public"."jc_vec") RETURNS integer LANGUAGE "sql" AS 'SELECT 1';
GRANT ALL ON FUNCTION "public"."jc_vec_in"("cstring", "oid", integer) TO "service_role";
GRANT ALL ON FUNCTION "public"."similarity"("text", "text") TO "service_role";
GRANT ALL ON TABLE "public"."docs" TO "service_role";
CREATE POLICY "svc" ON "public"."docs" USING (("auth"."role"() = 'service_role'::"text"));
ALTER PUBLICATION "supabase_realtime" OWNER TO "postgres";
"""


@pytest.fixture
def loader_db(stack: NativeStack) -> Iterator[str]:
    assert stack.info is not None
    admin = stack.info.admin_url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{LOADER_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{LOADER_DB}"')
    roles = create_platform_roles(admin)
    info = psycopg.conninfo.conninfo_to_dict(stack.info.database_url)
    info["dbname"] = LOADER_DB
    try:
        yield psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in info.items() if v is not None})
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{LOADER_DB}" WITH (FORCE)')
        drop_roles(admin, roles)


def test_loader_skips_exactly_what_a_missing_extension_provides(loader_db: str, tmp_path: Path) -> None:
    dump = tmp_path / "01-schema.sql"
    dump.write_text(DUMP)
    report = load_dump_file(loader_db, dump)
    assert report.missing_extensions == ["jc_no_such_extension"]
    assert report.dropped_columns == ["docs.emb (public.jc_vec)"]
    assert [(s.kind, s.reason) for s in report.skipped] == [
        ("CreateExtensionStmt", "extension jc_no_such_extension not available"),
        ("CommentStmt", "comments a column left out"),
        ("IndexStmt", "access method jc_am not available"),
        ("CommentStmt", "refers to public.docs_emb, left out"),
        ("CreateFunctionStmt", "needs type public.jc_vec (from an extension this server lacks)"),
        ("GrantStmt",
         "needs function public.jc_vec_in(cstring, oid, pg_catalog.int4) (from an extension this server lacks)"),
    ]
    assert report.executed == 10
    with psycopg.connect(loader_db) as conn:
        cols = [r[0] for r in conn.execute("SELECT attname FROM pg_attribute WHERE attrelid = 'public.docs'::regclass"
                                           " AND attnum > 0 ORDER BY attnum")]
        assert cols == ["id", "body"]
        assert conn.execute("SELECT has_function_privilege('service_role', 'public.similarity(text, text)',"
                            " 'EXECUTE')").fetchone() == (True,)
    # anything else that fails stops the load, naming the file and line
    bad = tmp_path / "002_bad.sql"
    bad.write_text("CREATE TABLE t1 (id int);\nALTER TABLE t1 ADD COLUMN x int REFERENCES nowhere(id);\n")
    with pytest.raises(BootstrapError, match=r"^002_bad.sql:2: UndefinedTable: relation \"nowhere\" does not exist"):
        apply_sql_files(loader_db, [bad], root=tmp_path)


def test_synthetic_prompts_meet_the_contract() -> None:
    contract = PromptContract("julia_base", 2000, ("[INVARIANT:A]", "[CAPABILITY:B]"), ("[INVARIANT:W]",))
    text = prompt_text(contract)
    assert len(text) >= 2000 and all(s in text for s in ("[INVARIANT:A]", "[CAPABILITY:B]", "[INVARIANT:W]"))


def test_health_constants_are_read_as_data(tmp_path: Path) -> None:
    path = tmp_path / "app" / "services" / "health"
    path.mkdir(parents=True)
    (path / "constants.py").write_text(
        'import os\nAPP_ENV = os.getenv("APP_ENV", "development")\nEXPECTED_SCHEMA_VERSION = "20990101000000"\n'
        'REQUIRED_PROMPTS = {"p": {"min_len": 10, "required_sentinels": ["[X]"], "warning_sentinels": []}}\n'
        'CRITICAL_JOBS = ["a", "b"]\n')
    constants = Checkout(tmp_path).health_constants()
    assert constants.expected_schema_version == "20990101000000"
    assert constants.prompts == (PromptContract("p", 10, ("[X]",), ()),)
    assert constants.critical_jobs == ("a", "b")
