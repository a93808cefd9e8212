"""Retries only for idempotent reads, bounded, and visible (issue 9).

A read whose link dropped mid-answer is sent again at most `retries` times and each retry is
noted for the report; a refused connection, a timeout or a first connect are never retried
(a dead target stays fast to judge), and a statement that may write is never retried."""

from __future__ import annotations

import psycopg
import pytest

from fixtures.clients import Api, Database
from plugins.contract.redaction import Redactor
from plugins.contract.runbook import DbSessionPolicy, HttpPolicy
from plugins.contract.verdict import Undecidable
from tests.loopback import DroppingApi


def _http(retries: int = 1) -> HttpPolicy:
    return HttpPolicy(connect_timeout_s=2.0, read_timeout_s=5.0, liveness_budget_ms=1000, retries=retries)


def _db_policy(retries: int = 1) -> DbSessionPolicy:
    return DbSessionPolicy(statement_timeout_ms=5000, lock_timeout_ms=1000, connect_timeout_s=3,
                           application_name="jc-retry-test", retries=retries)


@pytest.fixture
def noted() -> list[str]:
    """What the client reported as retries (in a run: plugins.invariants.retry_recorder)."""
    return []


def test_a_dropped_get_is_retried_once_and_noted(noted: list[str]) -> None:
    with DroppingApi(drops=1) as server:
        api = Api(server.url, _http(1), {}, Redactor(), on_retry=noted.append)
        resp = api.get("/health")
        api.close()
    assert resp.status == 200 and resp.body == {"status": "ok"}
    assert server.connections == 2 and api.retries == 1
    assert len(noted) == 1
    assert noted[0].startswith(f"GET {server.url}/health retried (1/1) after: ")


def test_retries_are_bounded(noted: list[str]) -> None:
    with DroppingApi(drops=10) as server:
        api = Api(server.url, _http(1), {}, Redactor(), on_retry=noted.append)
        with pytest.raises(Undecidable) as err:
            api.get("/health")
        api.close()
    assert server.connections == 2, "one try and one retry, no more"
    assert err.value.message.startswith(f"GET {server.url}/health: ")
    with DroppingApi(drops=10) as server:
        api = Api(server.url, _http(0), {}, Redactor(), on_retry=noted.append)
        with pytest.raises(Undecidable):
            api.get("/health")
        api.close()
    assert server.connections == 1, "retries = 0 means none"


def test_a_refused_connection_is_not_retried(noted: list[str]) -> None:
    with DroppingApi(drops=0) as server:
        url = server.url
    api = Api(url, _http(3), {}, Redactor(), on_retry=noted.append)  # nothing listens there any more
    with pytest.raises(Undecidable, match="connection refused"):
        api.get("/health")
    api.close()
    assert api.retries == 0 and noted == []


def _backend_pids(admin_url: str, application_name: str) -> list[int]:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        return [r[0] for r in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (application_name,)).fetchall()]


def _terminate(admin_url: str, application_name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                     (application_name,))


def test_a_read_only_query_on_a_dropped_connection_is_retried(stack, noted: list[str]) -> None:  # type: ignore[no-untyped-def]
    url = stack.info.database_url
    db = Database(url, _db_policy(1), Redactor(), read_only=True, on_retry=noted.append)
    assert db.query("SELECT 1 AS one") == [{"one": 1}]
    assert _backend_pids(url, "jc-retry-test")
    _terminate(url, "jc-retry-test")  # a pooler's idle timeout, a failover
    assert db.query("SELECT 2 AS two") == [{"two": 2}]
    assert db.retries == 1
    assert len(noted) == 1 and "database query retried on a new connection (1/1)" in noted[0]
    db.close()


def test_a_query_that_may_write_is_never_retried(stack, noted: list[str]) -> None:  # type: ignore[no-untyped-def]
    url = stack.info.database_url
    db = Database(url, _db_policy(3), Redactor(), read_only=False, on_retry=noted.append)
    db.query("SELECT 1")
    _terminate(url, "jc-retry-test")
    with pytest.raises(Undecidable, match="database error: "):
        db.query("SELECT 1")
    assert db.retries == 0 and noted == []
    db.close()
