"""A broken target is exactly when the suite runs: it must end, bounded, with every
dependent invariant `error` naming the cause in one line, and a not-certified certificate."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LOCAL_REF, run_suite


# The checks that need the target itself (the rotation schedule, say, is judged from dates).
TARGET_CHECKS = ("checks/test_health.py", "checks/test_guards.py", "checks/test_health_schema_rate_circuit.py",
                 "checks/test_schema.py", "checks/test_scheduler.py", "checks/test_jobs.py", "checks/test_queue.py",
                 "checks/test_pause.py")


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A port that accepts TCP connections (kernel backlog) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield s.getsockname()[1]


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _profile(tmp_path: Path, api_url: str) -> Path:
    path = tmp_path / "targets.toml"
    path.write_text(
        "[targets.dead]\nlocal = false\n"
        f'api_url = "{api_url}"\nenvironment = "local"\nproject_ref = "{LOCAL_REF}"\n'
        'database_url_env = "JC_DEAD_DB"\nredis_url_env = "JC_DEAD_REDIS"\n'
    )
    return path


def _hosts(kind: str, port: int) -> tuple[str, str, str]:
    if kind == "dns":
        host = "jc-target-does-not-exist.invalid"
        return f"http://{host}", f"postgresql://jc:pw@{host}:5432/julia", f"redis://{host}:6379/0"
    return (f"http://127.0.0.1:{port}", f"postgresql://jc:pw@127.0.0.1:{port}/julia",
            f"redis://127.0.0.1:{port}/0")


@pytest.mark.parametrize("kind", ["refused", "dns", "black-hole"])
def test_dead_target_ends_bounded_and_not_certified(tmp_path: Path, black_hole: int, kind: str) -> None:
    port = black_hole if kind == "black-hole" else _closed_port()
    api_url, db_url, redis_url = _hosts(kind, port)
    start = time.monotonic()
    run = run_suite(
        "--target-file", str(_profile(tmp_path, api_url)), "--target", "dead",
        reports=tmp_path / "reports", env={"JC_DEAD_DB": db_url, "JC_DEAD_REDIS": redis_url},
        timeout=120, paths=TARGET_CHECKS,
    )
    elapsed = time.monotonic() - start
    assert run.exitcode == 1, run.output[-3000:]
    assert run.certificate is not None and run.certificate["verdict"] == "not-certified"
    outcomes = run.outcomes()
    # Nothing passes. Most invariants cannot decide (error); liveness and the deep gate count
    # "no answer at all" as their own failure (Scenario 1: the app is not responding).
    assert "passed" not in outcomes.values(), outcomes
    assert outcomes["JC-GUARD-01"] == "error" and outcomes["JC-DEEP-02"] == "error", outcomes
    causes = {"refused": "connection refused", "dns": "DNS name does not resolve", "black-hole": "timeout"}
    for row in run.certificate["invariants"]:
        assert "\n" not in row["message"]
        if row["outcome"] == "skipped":
            continue
        assert causes[kind] in row["message"] or causes[kind] in row["message"].lower() or "unresponsive" in row["message"] or "cannot decide" in row["message"] \
            or "no answer" in row["message"], row
    assert "Traceback" not in run.output
    assert "pw@" not in run.output and "pw@" not in str(run.certificate)
    print(f"{kind}: dead-target run took {elapsed:.1f} s")  # figure for the README bound
