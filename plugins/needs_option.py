"""Checks skipped only because the run was not given an option — and which option decides them.

A check that cannot run without something the operator did not give (``--app-repo``,
``--migrations-dir``, a Railway API token, …) is not certified, yet it found nothing wrong
either. It raises :func:`skip_unless_given` instead of ``pytest.skip``: the skip carries the
option, the certificate row says it (``needs_option``), and certificate.md and the HTML report
list such checks after the real failures, each with the option that would decide it. (The skip
itself is fixtures.option_skip's: a fixture raises it too, and fixtures import no hook module.)
"""

from __future__ import annotations

from typing import Any

import pytest

from fixtures.option_skip import NeedsOption, skip_unless_given  # noqa: F401 - skip_unless_given: the checks' import

_PROP = "jc_needs_option"


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    """(Innermost: the other wrappers, plugins.invariants' among them, read the report after.)"""
    report: pytest.TestReport = yield
    exc = call.excinfo.value if call.excinfo is not None else None
    if report.skipped and isinstance(exc, NeedsOption):
        if isinstance(report.longrepr, tuple):  # "Skipped: why", as any skip reads — not the class name
            path, line, _ = report.longrepr
            report.longrepr = (path, line, f"Skipped: {exc.msg}")
        report.user_properties.append((_PROP, exc.option))
    return report


def report_needs_option(report: pytest.TestReport) -> str | None:
    for key, value in report.user_properties:
        if key == _PROP:
            return str(value)
    return None


def waits_for_option(row: dict[str, Any]) -> bool:
    """A certificate row that is not decided only because an option was not given."""
    return row.get("outcome") == "skipped" and bool(row.get("needs_option"))


def blocker_lines(cert: dict[str, Any]) -> list[str]:
    """The terminal's blocker lines: the real blockers, then the checks waiting for an option."""
    waiting = {r["id"]: r["needs_option"] for r in cert.get("invariants", []) if waits_for_option(r)}
    real = [b for b in cert.get("blockers", []) if b not in waiting]
    lines = [f"blockers: {', '.join(real)}"] if real else []
    if waiting:
        lines.append("not judged, an option was not given: "
                     + ", ".join(f"{i} (needs {o})" for i, o in waiting.items()))
    return lines
