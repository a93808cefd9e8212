"""The PostgreSQL version a run judged, for the certificate (``server_version``).

Catalogs and statistics views differ between majors (13–18); a certificate that does not
say which server it judged cannot be read correctly. The version is the one the server
announced when the run's database client connected (the ``server_version`` parameter of
the handshake: no query, also through a transaction pooler). Checks may run in xdist
workers while the controller writes the certificate, so the worker that learns it hands it
over on the next test report, as a user property; a local stack's own record is the
fallback for a run whose checks never reached the database.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator
from typing import Any

import pytest

SERVER_VERSION_PROP = "jc_server_version"
_SEEN = pytest.StashKey[str]()
_SENT = pytest.StashKey[bool]()


def version_text(raw: str | None) -> str | None:
    """The numeric version ("17.6", "15.14", "18beta1" → "18") of what a server or a stack
    reports ("15.14 (Debian 15.14-0+deb12u1)", "17.6 (julia-conformance/postgres:17)")."""
    match = re.match(r"\s*(\d+(?:\.\d+)*)", raw or "")
    return match.group(1) if match else None


def recorder(config: pytest.Config) -> Callable[[str], None]:
    """What the run's database client calls with the server's announced version."""

    def note(raw: str) -> None:
        version = version_text(raw)
        if version and config.stash.get(_SEEN, None) != version:
            config.stash[_SEEN] = version
            config.stash[_SENT] = False

    return note


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    config = item.config
    version = config.stash.get(_SEEN, None)
    if version and not config.stash.get(_SENT, False):
        report.user_properties.append((SERVER_VERSION_PROP, version))
        config.stash[_SENT] = True


def report_server_version(report: pytest.TestReport) -> str | None:
    for key, value in report.user_properties:
        if key == SERVER_VERSION_PROP:
            return str(value)
    return None
