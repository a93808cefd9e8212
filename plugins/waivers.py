"""Waivers: a known, accepted violation does not block certification until its expiry.

The check of a waived invariant still runs: what it finds is reported (as skipped in Allure,
with the waiver's reason and expiry, and as ``waived`` in the certificate), so the operator
sees whether the accepted violation is still there. Only a finding of the check itself — a
``Violation`` or an ``Undecidable`` — is waived; a crash of the suite is never hidden. An
expired waiver no longer waives: from the day after its expiry the invariant blocks again.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import pytest
from _pytest.outcomes import Skipped

from plugins.contract.report import Waiver, Waivers
from plugins.contract.verdict import Undecidable, Violation, one_line
from plugins.invariants import invariant_of
from plugins.target import run_context

WAIVED_PROP = "jc_waived"


class Waived(Skipped):
    """A waived invariant's finding, reported as a skip (pytest and Allure) with the waiver."""

    __module__ = "builtins"  # as pytest does for Skipped: prints as "Waived: …"

    def __init__(self, waiver: Waiver, finding: Violation | Undecidable) -> None:
        self.waiver = waiver
        self.finding = finding
        kind = "violation" if isinstance(finding, Violation) else "undecided"
        super().__init__(
            f"until {waiver.expires.isoformat()} ({waiver.reason}); {kind}: {one_line(finding.message, 300)}",
            _use_item_location=True,
        )


@dataclass(frozen=True)
class WaiverState:
    today: dt.date
    waivers: Waivers

    @property
    def active(self) -> dict[str, Waiver]:
        return self.waivers.active(self.today)

    @property
    def expired(self) -> dict[str, Waiver]:
        return self.waivers.expired(self.today)


_STATE = pytest.StashKey[WaiverState]()


def utc_today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def waiver_state(config: pytest.Config) -> WaiverState | None:
    return config.stash.get(_STATE, None)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    try:
        ctx = run_context(config)
    except pytest.UsageError:
        return
    config.stash[_STATE] = WaiverState(utc_today(), ctx.runbook.section("waivers"))


def _waive(item: pytest.Item, exc: BaseException) -> Waived | None:
    state = waiver_state(item.config)
    inv = invariant_of(item)
    if state is None or inv is None or not isinstance(exc, (Violation, Undecidable)):
        return None
    waiver = state.active.get(inv.id)
    if waiver is None:
        return None
    item.user_properties.append((WAIVED_PROP, json.dumps({
        "id": waiver.id, "reason": waiver.reason, "expires": waiver.expires.isoformat(),
        "approved_by": waiver.approved_by,
        "finding": one_line(exc.message),
        "kind": "violation" if isinstance(exc, Violation) else "undecided",
    })))
    return Waived(waiver, exc)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, Any, Any]:
    try:
        return (yield)
    except (Violation, Undecidable) as exc:  # a fixture could not decide, e.g. endpoint missing
        waived = _waive(item, exc)
        if waived is None:
            raise
        raise waived from None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    try:
        return (yield)
    except (Violation, Undecidable) as exc:
        waived = _waive(item, exc)
        if waived is None:
            raise
        raise waived from None


def report_waiver(report: pytest.TestReport) -> dict[str, Any] | None:
    for key, value in report.user_properties:
        if key == WAIVED_PROP:
            return json.loads(value)
    return None


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = waiver_state(config)
    if state is None or not state.waivers.items:
        return []
    lines = [f"julia-conformance: {len(state.active)} active waiver(s)"
             + (f": {', '.join(sorted(state.active))}" if state.active else "")]
    if state.expired:
        lines.append("julia-conformance: expired waiver(s) no longer waive: "
                     + ", ".join(f"{w.id} (expired {w.expires.isoformat()})" for w in state.expired.values()))
    return lines
