"""Invariants: one runbook sentence, one id, one check.

A check declares its invariant once, with ``@invariant(...)``; the plugins turn that single
declaration into the Allure labels, the certificate row and the failure message. A check
reports a broken invariant by raising ``Violation`` (an incident line plus the remedy) and
reports that it could not decide by raising ``Undecidable`` (outcome ``error``). Both are
rendered as short, readable lines: an operator at 3 a.m. reads a cause, not a traceback.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, Callable, TypeVar

import pytest

from plugins.contract.verdict import (
    UNDEFINED_NAMES,
    Invariant,
    Undecidable,
    Violation,
    declare,
    declared,
    one_line,
)
from plugins.target import redactor

# The markers a check's tiers are (pyproject.toml [tool.pytest.ini_options] markers): declared
# with its invariant, never as a module's pytestmark or a decorator of their own.
TIERS = ("postdeploy", "nightly", "premerge", "runbook", "mutates")
_PROP = "jc_invariant"
_OUTCOME_PROP = "jc_outcome"
_MESSAGE_PROP = "jc_message"
WARNING_PROP = "jc_warning"
RETRY_PROP = "jc_retry"
REMEDY_PROP = "jc_remedy"

# Retries the clients made since the last test report (see retry_recorder): one list per run,
# kept in the config's stash.
_RETRY_LOG = pytest.StashKey[list[str]]()

F = TypeVar("F", bound=Callable[..., Any])


def invariant(
    id: str,
    *,
    title: str,
    severity: str,
    section: str,
    remedy: str,
    area: str | None = None,
    tiers: tuple[str, ...] = (),
    evidence: str | None = None,
) -> Callable[[F], F]:
    """Declare the runbook invariant a check enforces.

    ``id`` is ``JC-<AREA>-<nn>``; ``severity`` is ``blocker`` for anything the runbook says
    means rollback; ``section`` names the runbook section (``"Health Checks › /health/deep"``);
    ``remedy`` is the first thing to do, in our words. The metadata is validated and kept by
    plugins.contract.verdict; this marks the check with its id. ``tiers`` are the runs that
    include the check (``-m postdeploy`` …, see TIERS): the only place a check's tiers are
    declared. ``evidence`` names the JSON file a passing check keeps in the run's ``evidence/``
    folder (the ``evidence`` fixture writes it, keyed by this id).
    """
    unknown = [t for t in tiers if t not in TIERS]
    if isinstance(tiers, str) or unknown:
        raise ValueError(f"invariant {id}: tiers must be a tuple of {TIERS}, got {tiers!r}")
    declare(id, title=title, severity=severity, section=section, remedy=remedy, area=area)

    def mark(func: F) -> F:
        for tier in tiers:
            func = getattr(pytest.mark, tier)(func)
        return pytest.mark.invariant(id, **({"evidence": evidence} if evidence else {}))(func)

    return mark


def invariant_of(item: pytest.Item) -> Invariant | None:
    marker = item.get_closest_marker("invariant")
    if marker is None or not marker.args:
        return None
    return declared(marker.args[0])


@pytest.fixture
def warn(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Record a warning on this check's certificate row: the invariant holds, but the
    runbook wants it seen (a circuit ``half_open`` is "recovering", not failing)."""

    def record(message: str) -> None:
        request.node.user_properties.append((WARNING_PROP, one_line(message)))

    return record


def report_warnings(report: pytest.TestReport) -> list[str]:
    return [str(value) for key, value in report.user_properties if key == WARNING_PROP]


def retry_recorder(config: pytest.Config) -> Callable[[str], None]:
    """What a client calls when it retries an idempotent read: the retry lands on the report
    of the check that caused it (its setup, call or teardown), so a passing check that needed
    a second try is visibly not clean — in the certificate, the terminal and Allure."""
    log = config.stash.setdefault(_RETRY_LOG, [])

    def note(text: str) -> None:
        log.append(one_line(text))

    return note


@pytest.fixture(scope="session")
def retry_note(pytestconfig: pytest.Config) -> Callable[[str], None]:
    """The run's retry recorder, for the clients fixtures.connections builds."""
    return retry_recorder(pytestconfig)


def report_retries(report: pytest.TestReport) -> list[str]:
    return [str(value) for key, value in report.user_properties if key == RETRY_PROP]


# --- pytest hooks -------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "invariant(id): set by @invariant")


def database_error(exc: BaseException | None, config: pytest.Config) -> str | None:
    """A database error that reached the verdict unjudged, as one line: the server's primary
    message (never the statement excerpt with its ``LINE n: … ^``) and, for a table, column
    or schema the database lacks, the dialect in force, whose name it is. The check could
    not read what it needs: that is undecidable, not a broken invariant (None: not one)."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return None
    if not isinstance(exc, psycopg.Error):
        return None
    diag = getattr(exc, "diag", None)
    primary = (getattr(diag, "message_primary", None) or str(exc).strip().splitlines()[0]
               if str(exc).strip() else type(exc).__name__)
    kind = UNDEFINED_NAMES.get(getattr(exc, "sqlstate", None) or "")
    if kind is None:
        return one_line(f"database error: {primary}")
    try:
        from plugins.target import run_context

        dialect = run_context(config).runbook.dialect
    except Exception:  # noqa: BLE001 - no run context (a unit test): say so rather than guess
        dialect = "?"
    return one_line(f"{primary}: a {kind} dialect '{dialect}' names that the database lacks (the check could not "
                    "read it)")


def _classify(call: pytest.CallInfo[Any], report: pytest.TestReport,
              config: pytest.Config | None = None) -> tuple[str, str]:
    """Outcome (passed|failed|skipped|error) and a one-line message for the certificate."""
    if report.skipped:
        reason = ""
        if isinstance(report.longrepr, tuple):
            reason = str(report.longrepr[2])
        return "skipped", one_line(reason.removeprefix("Skipped: "))
    if report.passed:
        return "passed", ""
    exc = call.excinfo.value if call.excinfo else None
    if isinstance(exc, Violation):
        return ("failed" if report.when == "call" else "error"), one_line(exc.message)
    if isinstance(exc, Undecidable):
        return "error", one_line(exc.message)
    if config is not None and (line := database_error(exc, config)) is not None:
        return "error", line
    if exc is not None:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return ("failed" if report.when == "call" else "error"), one_line(text)
    return "failed", one_line(str(report.longrepr))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[Any]
) -> Any:
    report: pytest.TestReport = yield
    inv = invariant_of(item)
    if inv is None:
        return report
    log = item.config.stash.get(_RETRY_LOG, None)
    while log:
        report.user_properties.append((RETRY_PROP, log.pop(0)))
    red = redactor(item.config)
    if report.when == "call" or not report.passed:
        outcome, message = _classify(call, report, item.config)
        message = red.scrub(message)
        report.user_properties.append((_OUTCOME_PROP, outcome))
        report.user_properties.append((_MESSAGE_PROP, message))
        exc = call.excinfo.value if call.excinfo else None
        remedy = inv.remedy
        if isinstance(exc, Undecidable) and exc.remedy and not report.skipped:
            remedy = exc.remedy
            report.user_properties.append((REMEDY_PROP, red.scrub(remedy)))
        if not report.skipped and database_error(exc, item.config) is not None:
            report.longrepr = red.scrub(f"[{inv.id}] UNDECIDED: {message}\n  remedy: {remedy}")
        elif isinstance(exc, (Violation, Undecidable)):
            # A readable incident line instead of a traceback; the remedy right under it.
            kind = "VIOLATION" if isinstance(exc, Violation) else "UNDECIDED"
            report.longrepr = red.scrub(f"[{inv.id}] {kind}: {exc.message}\n  remedy: {remedy}")
    report.user_properties.append((_PROP, json.dumps(asdict(inv))))
    return report


def report_remedy(report: pytest.TestReport) -> str | None:
    """The remedy this outcome carries instead of the invariant's (see ``Undecidable``)."""
    for key, value in report.user_properties:
        if key == REMEDY_PROP:
            return str(value)
    return None


def report_invariant(report: pytest.TestReport) -> Invariant | None:
    for key, value in report.user_properties:
        if key == _PROP:
            return Invariant(**json.loads(value))
    return None


def report_outcome(report: pytest.TestReport) -> tuple[str, str] | None:
    outcome = message = None
    for key, value in report.user_properties:
        if key == _OUTCOME_PROP:
            outcome = value
        elif key == _MESSAGE_PROP:
            message = value
    return (outcome, message or "") if outcome else None
