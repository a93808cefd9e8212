"""Self-test harness: one real local stack per session, and a runner for the suite.

Fault self-tests break that stack the way an incident would (stop Redis, change a row, drop
a table), run the conformance suite against it in a subprocess, assert exactly which
invariants failed, and put the stack back.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import psycopg
import pytest

from fixtures.stack.backends.native import NativeStack
from fixtures.stack.launcher import new_run_id

if TYPE_CHECKING:
    from fixtures.stack.backends.containers import ContainerStack

    LocalStack: TypeAlias = NativeStack | ContainerStack

ROOT = Path(__file__).resolve().parents[1]
LOCAL_ENV = "local"
LOCAL_REF = "localjuliaref0000000"
# Set in CI (.ci/run): the containers half must run, a missing Docker engine is a failure.
REQUIRE_CONTAINERS_ENV = "JC_REQUIRE_CONTAINERS"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "backends(*names): stack backends the test's `stack` runs on (default: native); "
        "e.g. backends('native', 'containers')",
    )
    config.addinivalue_line(
        "markers",
        "stack: the test runs on the session's local stack (set by tests/conftest.py on every test "
        "using the `stack` fixture): `-m stack` selects the whole fault matrix",
    )
    config.addinivalue_line(
        "markers",
        "smoke: the quick proof on a PostgreSQL major: the healthy run certified and one fault of each "
        "area detected (CI runs `JC_SELFTEST_PG=<major> scripts/selftest -m smoke` on every other major)",
    )
    selftest_pg()  # a bad JC_SELFTEST_PG ends the run before anything starts


# The PostgreSQL major the session's native stack runs (13-18; unset: the launcher's default,
# Debian's newest 15+). CI runs the fault matrix with JC_SELFTEST_PG=17 (production's major)
# and the smoke on the others.
PG_ENV = "JC_SELFTEST_PG"


def selftest_pg() -> int | None:
    from plugins.contract.targets import PG_MAJORS

    value = os.environ.get(PG_ENV, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) not in PG_MAJORS:
        raise pytest.UsageError(f"{PG_ENV}: must be a PostgreSQL major of "
                                f"{', '.join(str(m) for m in PG_MAJORS)}, got {value!r}")
    return int(value)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "stack" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.stack)


# Comma-separated backends for every stack test, overriding their markers: e.g.
# JC_SELFTEST_BACKENDS=containers runs the whole fault matrix on containers.
BACKENDS_ENV = "JC_SELFTEST_BACKENDS"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests that use the stack run once per backend their module or test asks for."""
    if "stack" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("backends")
        backends: tuple[str, ...] = marker.args if marker is not None else ("native",)
        forced = os.environ.get(BACKENDS_ENV, "")
        if forced.strip():
            backends = tuple(b.strip() for b in forced.split(",") if b.strip())
            unknown = set(backends) - {"native", "containers"}
            if unknown:
                raise pytest.UsageError(f"{BACKENDS_ENV}: unknown backend {sorted(unknown)[0]!r} (native, containers)")
        metafunc.parametrize("stack", backends, indirect=True, scope="session")


def containers_unavailable() -> str | None:
    """Why the containers backend cannot run here (None when it can)."""
    from fixtures.stack.container_runs import unavailable_reason

    return unavailable_reason(local_images())


def local_images() -> Any:
    """The images targets.toml's local profile names (defaults: the locally built ones)."""
    from fixtures.stack.container_runs import Images
    from plugins.contract.targets import load_targets

    return Images.from_options(load_targets(ROOT / "targets.toml").get("local", {}))


def skip_without_containers() -> None:
    reason = containers_unavailable()
    if reason is not None:
        if os.environ.get(REQUIRE_CONTAINERS_ENV):
            pytest.fail(f"{REQUIRE_CONTAINERS_ENV} is set but the containers backend cannot run: {reason}")
        pytest.skip(f"containers backend: {reason}")


# The real runbook: beside the clone in CI (``../shared/RUNBOOK.md``); JC_SHARED_RUNBOOK
# points elsewhere (a worktree, whose parent holds no shared/). Set in CI (.ci/run):
# JC_REQUIRE_SHARED_RUNBOOK makes a missing runbook a failure, not a skip.
SHARED_RUNBOOK_ENV = "JC_SHARED_RUNBOOK"
REQUIRE_SHARED_RUNBOOK_ENV = "JC_REQUIRE_SHARED_RUNBOOK"


def shared_runbook_path() -> Path:
    return Path(os.environ.get(SHARED_RUNBOOK_ENV) or ROOT.parent / "shared" / "RUNBOOK.md")


def require_shared_runbook() -> Path:
    """The runbook markdown the lint reads in CI; skips (fails under
    JC_REQUIRE_SHARED_RUNBOOK) when it is not there."""
    path = shared_runbook_path()
    if not path.is_file():
        reason = f"{path} is not beside the clone (set {SHARED_RUNBOOK_ENV} to the runbook's path)"
        if os.environ.get(REQUIRE_SHARED_RUNBOOK_ENV):
            pytest.fail(f"{REQUIRE_SHARED_RUNBOOK_ENV} is set but {reason}")
        pytest.skip(reason)
    return path


@pytest.fixture
def shared_runbook() -> Path:
    return require_shared_runbook()


def targets_text() -> str:
    """targets.toml's text, ready to be written anywhere: the profile keys that name files
    relative to targets.toml (migrations_dir, schema_baseline, app_repo) made absolute."""
    text = (ROOT / "targets.toml").read_text()
    return re.sub(r'(?m)^(migrations_dir|schema_baseline|app_repo) = "(?!/)([^"]+)"',
                  lambda m: f'{m.group(1)} = "{ROOT / m.group(2)}"', text)


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


def expect(run: SuiteRun, *, failed: set[str] = frozenset(), error: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    """Exactly these invariants did not pass, with exactly these outcomes (failed = the target
    breaks the invariant, error = the check could not decide); the exit code and the
    certificate's verdict follow, and every message is one line without a traceback."""
    assert run.certificate is not None, run.output[-3000:]
    outcomes = run.outcomes()
    got = {i: o for i, o in outcomes.items() if o != "passed"}
    want = {**{i: "failed" for i in failed}, **{i: "error" for i in error}}
    assert got == want, run.output[-4000:]
    assert run.exitcode == (0 if not want else 1), run.output[-3000:]
    assert run.certificate["verdict"] == ("certified" if not want else "not-certified"), run.certificate["verdict"]
    for inv in want:
        assert "Traceback" not in run.message(inv) and run.message(inv), run.message(inv)


def run_suite(*args: str, reports: Path, env: dict[str, str] | None = None, timeout: float = 300,
              paths: tuple[str, ...] = ("checks",)) -> SuiteRun:
    """Run the conformance suite as an operator would, in a fresh process.

    The HTML report is off (``--no-html``) unless a test passes ``--build-html``: building it takes
    seconds per run and only the report's own tests look at it.
    """
    cmd = [sys.executable, "-m", "pytest", *paths, "-q", "-p", "no:cacheprovider",
           "--reports-dir", str(reports), "--no-html", *args]
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
def stack(request: pytest.FixtureRequest) -> Iterator[LocalStack]:
    """One stack per backend for the session (parametrized by pytest_generate_tests)."""
    backend = getattr(request, "param", "native")
    s: LocalStack
    if backend == "containers":
        if (major := selftest_pg()) is not None:
            # The containers stack runs its image's server (postgres_image, a Debian-built 15):
            # a chosen major is the native stack's. The default run covers this backend.
            pytest.skip(f"{PG_ENV}={major} chooses the native stack's PostgreSQL; the containers stack runs "
                        "its image's (postgres_image)")
        skip_without_containers()
        from fixtures.stack.backends.containers import ContainerStack

        s = ContainerStack(run_id=new_run_id("selftest"), environment=LOCAL_ENV,
                           project_ref=LOCAL_REF, images_=local_images())
    else:
        s = NativeStack(run_id=new_run_id("selftest"), environment=LOCAL_ENV, project_ref=LOCAL_REF,
                        pg_major=selftest_pg())
    s.start()
    assert s.tmpdir is not None
    yield s
    s.stop()


@pytest.fixture(scope="session")
def stack_json(stack: LocalStack) -> Path:
    assert stack.info is not None and stack.tmpdir is not None
    return stack.tmpdir / "stack.json"


@pytest.fixture
def healthy(stack: LocalStack) -> Iterator[LocalStack]:
    """The stack, guaranteed back to its healthy state after the test.

    Extra schedulers are stopped, stopped services restarted (julia-worker and
    julia-scheduler boot while the database is reset), the database cloned from its
    template with the job history carried up to now, and Redis flushed except for the
    liveness keys of the worker and scheduler that kept running. Both backends offer the
    same controls: processes here, containers there. It also starts from a healthy stack:
    whatever an earlier test left (a service down, a liveness key gone), the worker and the
    scheduler are running and their keys are there before the test begins.
    """
    assert stack.info is not None
    for name in ("postgres", "redis", "api"):
        if not stack.running(name):
            stack.start_service(name)
    stack.await_runtime(stack.spawn_runtime("worker", "scheduler"))  # type: ignore[arg-type]
    stack.await_liveness()
    yield stack
    assert stack.info is not None
    stack.stop_extra_schedulers()
    for name in ("postgres", "redis", "api"):
        if not stack.running(name):
            stack.start_service(name)
    stack.flush_redis()
    booting = stack.spawn_runtime("worker", "scheduler")
    stack.reset_database()
    stack.await_runtime(booting)  # type: ignore[arg-type]


@pytest.fixture
def sql(stack: LocalStack):  # type: ignore[no-untyped-def]
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
