"""The foundation's checks, each proven to fail on its fault (and only they)."""

from __future__ import annotations

import pytest

from fixtures.stack.launcher import NativeStack

HEALTH_AND_GUARDS = ("checks/test_health.py", "checks/test_guards.py", "checks/test_health_extras.py")

# The same faults, the same verdicts, whether the stack runs as processes or containers.
pytestmark = pytest.mark.backends("native", "containers")


def test_healthy_stack_is_certified(healthy: NativeStack, suite) -> None:  # type: ignore[no-untyped-def]
    run = suite(paths=HEALTH_AND_GUARDS)
    assert run.exitcode == 0, run.output[-3000:]
    assert run.certificate is not None
    assert run.certificate["verdict"] == "certified"
    assert run.not_passed() == set()
    assert len(run.outcomes()) >= 19


def test_redis_stopped(healthy: NativeStack, suite) -> None:  # type: ignore[no-untyped-def]
    healthy.stop_service("redis")
    run = suite(paths=HEALTH_AND_GUARDS)
    assert run.exitcode == 1, run.output[-3000:]
    assert run.certificate["verdict"] == "not-certified"
    # /health/rate and /health/circuit read Redis too: they answer 503 and fail on it.
    assert run.not_passed() == {"JC-HEALTH-02", "JC-DEEP-01", "JC-DEEP-02", "JC-RATE-01", "JC-CIRCUIT-01"}
    assert "Redis" in run.message("JC-HEALTH-02")
    assert "HTTP 503" in run.message("JC-RATE-01") and "HTTP 503" in run.message("JC-CIRCUIT-01")
    assert "redis" in run.message("JC-DEEP-01")
    assert "Case 1" in run.message("JC-DEEP-02")


def test_environment_changed(healthy: NativeStack, suite, sql) -> None:  # type: ignore[no-untyped-def]
    sql("UPDATE app_settings SET value = 'production' WHERE key = 'environment'")
    run = suite(paths=HEALTH_AND_GUARDS)
    assert run.exitcode == 1
    assert run.not_passed() == {"JC-GUARD-01", "JC-DEEP-01", "JC-DEEP-07"}
    assert "'production'" in run.message("JC-GUARD-01") and "'local'" in run.message("JC-GUARD-01")
    assert "app_settings is the odd one out" in run.message("JC-GUARD-01")
    assert "hard guard" in run.message("JC-DEEP-07")


def test_project_ref_changed(healthy: NativeStack, suite, sql) -> None:  # type: ignore[no-untyped-def]
    sql("UPDATE app_settings SET value = 'jyqgbzhqavgpxqacduoi' WHERE key = 'supabase_project_ref'")
    run = suite(paths=HEALTH_AND_GUARDS)
    assert run.not_passed() == {"JC-GUARD-02", "JC-DEEP-01", "JC-DEEP-07"}
    assert "supabase_project_ref" in run.message("JC-GUARD-02")
    assert "app_settings is the odd one out" in run.message("JC-GUARD-02")


# CASCADE also drops the views built on the table: both critical views read interacoes.
@pytest.mark.parametrize(("table", "failing"), [
    ("interacoes", {"JC-DEEP-01", "JC-DEEP-04", "JC-DEEP-05"}),
    ("job_executions", {"JC-DEEP-01", "JC-DEEP-04"}),
])
def test_critical_table_dropped(healthy: NativeStack, suite, sql, table: str, failing: set[str]) -> None:  # type: ignore[no-untyped-def]
    sql(f"DROP TABLE {table} CASCADE")
    run = suite(paths=HEALTH_AND_GUARDS)
    assert run.exitcode == 1
    assert run.not_passed() == failing
    assert table in run.message("JC-DEEP-04") and "Case 5" in run.message("JC-DEEP-04")
