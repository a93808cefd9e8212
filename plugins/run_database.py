"""The run's one database client, made on first use and closed once.

It is run state, so a hook module keeps it: plugins.connection_risk asks what the suite's
role may do before anything is judged, and the ``db`` fixture (fixtures.connections, through
``run_db``) then reuses the same client — its connection, and for a database that cannot be
reached the remembered cause: one connect timeout per run. Every statement passes the row
gate first (fixtures.row_gate).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fixtures.clients import Database
from fixtures.probes import role as probes_role
from fixtures.row_gate import RowGate
from plugins import server_version
from plugins.invariants import retry_recorder
from plugins.target import redactor, run_context

_DATABASE = pytest.StashKey[Database]()


def run_database(config: pytest.Config) -> Database | None:
    """The run's one database client (None: no database configured), made on first use —
    by the ``db`` fixture, or earlier by plugins.connection_risk."""
    found = config.stash.get(_DATABASE, None)
    if found is not None:
        return found
    ctx = run_context(config)
    if not ctx.database_url:
        return None
    database = Database(
        ctx.database_url, ctx.runbook.db_session, redactor(config), read_only=ctx.read_only,
        on_retry=retry_recorder(config), on_connect=server_version.recorder(config),
    )
    database.row_gate = RowGate(lambda: probes_role.row_sight(database), ctx.runbook.schema)
    config.stash[_DATABASE] = database
    return database


def close_run_database(config: pytest.Config) -> None:
    database = config.stash.get(_DATABASE, None)
    if database is not None:
        del config.stash[_DATABASE]
        database.close()


@pytest.fixture(scope="session")
def run_db(pytestconfig: pytest.Config) -> Iterator[Database | None]:
    """The run's database client for fixtures.connections' ``db`` (None: no database
    configured); closed when the session ends."""
    yield run_database(pytestconfig)
    close_run_database(pytestconfig)
