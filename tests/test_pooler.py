"""Through a transaction-mode pooler (PgBouncer, as Supabase's pooler works) the database
checks still work: no session state, no server-side prepared statements."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg

from fixtures.stack.backends.native import NativeStack
from fixtures.stack.launcher import new_run_id
from tests.conftest import LOCAL_ENV, LOCAL_REF, run_suite


def test_suite_runs_through_pgbouncer(tmp_path: Path) -> None:
    run = run_suite("--pooler", "-rA", paths=("checks", "tests/synthetic_checks/check_pooler.py"),
                    reports=tmp_path / "reports", env={"JC_RUN_ID": f"pooler-{os.getpid()}"})
    assert run.exitcode == 0, run.output[-3000:]
    assert "pgbouncer transaction mode on 127.0.0.1:" in run.output
    assert "PASSED tests/synthetic_checks/check_pooler.py::test_database_checks_go_through_the_pooler" in run.output
    assert run.certificate is not None and run.certificate["verdict"] == "certified"


def test_a_guard_fault_is_seen_through_the_pooler(tmp_path: Path) -> None:
    stack = NativeStack(run_id=new_run_id("pooler"), environment=LOCAL_ENV, project_ref=LOCAL_REF, pooler=True)
    stack.start()
    try:
        assert stack.info is not None and stack.info.pooler_url
        with psycopg.connect(stack.info.database_url, autocommit=True) as conn:
            conn.execute("UPDATE app_settings SET value = 'staging' WHERE key = 'environment'")
        assert stack.tmpdir is not None
        run = run_suite("--attach-stack", str(stack.tmpdir / "stack.json"),
                        paths=("checks/test_guards.py",), reports=tmp_path / "reports")
        assert run.not_passed() == {"JC-GUARD-01"}, run.output[-3000:]
    finally:
        stack.stop()
