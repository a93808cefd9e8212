"""Run by tests/test_safety.py against a *non-local* profile pointed at the local stack.

Not collected by `pytest tests` (no test_ prefix): it only makes sense inside that run.
"""

from __future__ import annotations

import psycopg
import pytest

from fixtures.clients import WriteRefused


def test_db_write_is_refused(db) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        db.query("INSERT INTO app_settings (key, value) VALUES ('jc_probe', 'written')")


def test_db_session_limits(db) -> None:  # type: ignore[no-untyped-def]
    row = db.query(
        "SELECT current_setting('transaction_read_only') AS ro,"
        " current_setting('statement_timeout') AS st, current_setting('lock_timeout') AS lt,"
        " current_setting('application_name') AS app"
    )[0]
    assert row == {"ro": "on", "st": "5s", "lt": "1s", "app": "julia-conformance"}


def test_redis_write_is_refused(redis_ro) -> None:  # type: ignore[no-untyped-def]
    assert redis_ro.ping()
    with pytest.raises(WriteRefused, match="SET refused"):
        redis_ro.set("jc_probe", "written")


def test_http_is_get_only(api) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(WriteRefused, match="POST refused"):
        api._client.send("POST", api.base_url + "health")  # the transport under the GET-only Api


@pytest.mark.mutates
def test_mutating_check_never_runs() -> None:
    raise AssertionError("a mutating test ran against a non-local target")
