"""The foundation's checks, each proven to fail on its fault (and only they): exactly which
invariants fail, how (failed = the target breaks the invariant, error = the check could not
decide), the exit code, the certificate's verdict, and that the message names the cause."""

from __future__ import annotations

import pytest

from fixtures.stack.backends.native import NativeStack
from tests.conftest import expect

HEALTH_AND_GUARDS = ("checks/test_health.py", "checks/test_guards.py", "checks/test_health_schema_rate_circuit.py")

# The same faults, the same verdicts, whether the stack runs as processes or containers.
pytestmark = pytest.mark.backends("native", "containers")


def test_healthy_stack_is_certified(healthy: NativeStack, suite) -> None:  # type: ignore[no-untyped-def]
    run = suite(paths=HEALTH_AND_GUARDS)
    expect(run)
    assert len(run.outcomes()) >= 19


def test_redis_stopped(healthy: NativeStack, suite) -> None:  # type: ignore[no-untyped-def]
    healthy.stop_service("redis")
    run = suite(paths=HEALTH_AND_GUARDS)
    # /health/rate and /health/circuit read Redis too: they answer 503 and fail on it.
    expect(run, failed={"JC-HEALTH-02", "JC-DEEP-01", "JC-DEEP-02", "JC-RATE-01", "JC-CIRCUIT-01"})
    assert "Redis" in run.message("JC-HEALTH-02")
    assert "HTTP 503" in run.message("JC-RATE-01") and "HTTP 503" in run.message("JC-CIRCUIT-01")
    assert "failing parts: redis 'error' (Case 1)" in run.message("JC-DEEP-01"), run.message("JC-DEEP-01")
    assert "Case 1" in run.message("JC-DEEP-02")


@pytest.mark.smoke
def test_environment_changed(healthy: NativeStack, suite, sql) -> None:  # type: ignore[no-untyped-def]
    sql("UPDATE app_settings SET value = 'production' WHERE key = 'environment'")
    run = suite(paths=HEALTH_AND_GUARDS)
    expect(run, failed={"JC-GUARD-01", "JC-DEEP-01", "JC-DEEP-07"})
    assert "'production'" in run.message("JC-GUARD-01") and "'local'" in run.message("JC-GUARD-01")
    assert "app_settings is the odd one out" in run.message("JC-GUARD-01")
    assert "hard guard" in run.message("JC-DEEP-07") and "Case 3" in run.message("JC-DEEP-07")
    assert "failing parts: hard_guards 'mismatch' (Case 3)" in run.message("JC-DEEP-01"), run.message("JC-DEEP-01")


def test_project_ref_changed(healthy: NativeStack, suite, sql) -> None:  # type: ignore[no-untyped-def]
    sql("UPDATE app_settings SET value = 'jyqgbzhqavgpxqacduoi' WHERE key = 'supabase_project_ref'")
    run = suite(paths=HEALTH_AND_GUARDS)
    expect(run, failed={"JC-GUARD-02", "JC-DEEP-01", "JC-DEEP-07"})
    assert "supabase_project_ref" in run.message("JC-GUARD-02")
    assert "app_settings is the odd one out" in run.message("JC-GUARD-02")
    assert "Case 3" in run.message("JC-DEEP-07") and "jyqgbzhqavgpxqacduoi" in run.message("JC-DEEP-07")
    assert "failing parts: hard_guards 'mismatch' (Case 3)" in run.message("JC-DEEP-01"), run.message("JC-DEEP-01")


# CASCADE also drops the views built on the table: both critical views read interacoes.
@pytest.mark.parametrize(("table", "failing"), [
    ("interacoes", {"JC-DEEP-01", "JC-DEEP-04", "JC-DEEP-05"}),
    ("job_executions", {"JC-DEEP-01", "JC-DEEP-04"}),
])
def test_critical_table_dropped(healthy: NativeStack, suite, sql, table: str, failing: set[str]) -> None:  # type: ignore[no-untyped-def]
    sql(f"DROP TABLE {table} CASCADE")
    run = suite(paths=HEALTH_AND_GUARDS)
    expect(run, failed=failing)
    assert table in run.message("JC-DEEP-04") and "Case 5" in run.message("JC-DEEP-04")
    assert f"tables 'missing' (missing: {table}) (Case 5)" in run.message("JC-DEEP-01"), run.message("JC-DEEP-01")
    if "JC-DEEP-05" in failing:
        msg = run.message("JC-DEEP-05")
        assert "Case 5" in msg and "interacoes" in msg, msg
        assert "metricas_conversa" in msg and "avaliacoes_qualidade" in msg, msg
