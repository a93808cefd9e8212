"""Self-test harness: one real local stack per session, and a runner for the suite.

Fault self-tests break that stack the way an incident would (stop Redis, change a row, drop
a table), run the conformance suite against it in a subprocess, assert exactly which
invariants failed, and put the stack back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from fixtures.stack.launcher import NativeStack, new_run_id

ROOT = Path(__file__).resolve().parents[1]
LOCAL_ENV = "local"
LOCAL_REF = "localjuliaref0000000"


@dataclass
class SuiteRun:
    exitcode: int
    output: str
    certificate: dict[str, Any] | None
    run_dir: Path | None

    def outcomes(self) -> dict[str, str]:
        assert self.certificate is not None, self.output[-3000:]
        return {row["id"]: row["outcome"] for row in self.certificate["invariants"]}

    def not_passed(self) -> set[str]:
        return {i for i, o in self.outcomes().items() if o != "passed"}

    def message(self, inv_id: str) -> str:
        assert self.certificate is not None
        for row in self.certificate["invariants"]:
            if row["id"] == inv_id:
                return row["message"]
        raise KeyError(inv_id)


def run_suite(*args: str, reports: Path, env: dict[str, str] | None = None, timeout: float = 300,
              paths: tuple[str, ...] = ("checks",)) -> SuiteRun:
    """Run the conformance suite as an operator would, in a fresh process."""
    cmd = [sys.executable, "-m", "pytest", *paths, "-q", "-p", "no:cacheprovider",
           "--reports-dir", str(reports), *args]
    full_env = {**os.environ, **(env or {})}
    full_env.pop("PYTEST_XDIST_WORKER", None)
    proc = subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout)
    cert_path = reports / "latest" / "certificate.json"
    cert = json.loads(cert_path.read_text()) if cert_path.exists() else None
    run_dir = cert_path.parent.resolve() if cert is not None else None
    if cert is not None:
        # each run's certificate is read once; later runs in the same folder start clean
        (reports / "latest").unlink()
    return SuiteRun(proc.returncode, proc.stdout + proc.stderr, cert, run_dir)


@pytest.fixture(scope="session")
def stack() -> Iterator[NativeStack]:
    s = NativeStack(run_id=new_run_id("selftest"), environment=LOCAL_ENV, project_ref=LOCAL_REF)
    s.start()
    assert s.tmpdir is not None
    yield s
    s.stop()


@pytest.fixture(scope="session")
def stack_json(stack: NativeStack) -> Path:
    assert stack.info is not None and stack.tmpdir is not None
    return stack.tmpdir / "stack.json"


@pytest.fixture
def healthy(stack: NativeStack) -> Iterator[NativeStack]:
    """The stack, guaranteed back to its healthy state after the test.

    Extra schedulers are stopped, stopped processes restarted (julia-worker and
    julia-scheduler boot while the database is reset), the database cloned from its
    template with the job history carried up to now, and Redis flushed except for the
    liveness keys of the worker and scheduler that kept running.
    """
    yield stack
    stack.stop_extra_schedulers()
    for name in ("postgres", "redis", "api"):
        if not stack.executors[name].running():
            stack.start_service(name)
    stack.flush_redis()
    booting = stack.spawn_runtime("worker", "scheduler")
    stack.reset_database()
    stack.await_runtime(booting)


@pytest.fixture
def sql(stack: NativeStack):  # type: ignore[no-untyped-def]
    """Run SQL against the stack's database as its owner (fault injection)."""
    assert stack.info is not None

    def run(statement: str, params: tuple[Any, ...] | None = None) -> None:
        with psycopg.connect(stack.info.database_url, autocommit=True) as conn:
            conn.execute(statement, params)  # type: ignore[arg-type]

    return run


@pytest.fixture
def suite(stack_json: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run the suite attached to the session's stack."""

    def run(*args: str, **kwargs: Any) -> SuiteRun:
        return run_suite("--attach-stack", str(stack_json), *args, reports=tmp_path / "reports", **kwargs)

    return run
