"""Run by tests/test_report_first_view.py: what a person sees first of a run that has a real
blocker, a check waiting for an option, and checks that hold.

Not collected by `pytest tests` (no test_ prefix).
"""

from __future__ import annotations

import pytest

from plugins.contract.verdict import violated
from plugins.invariants import invariant
from plugins.needs_option import skip_unless_given

pytestmark = [pytest.mark.nightly, pytest.mark.postdeploy]


@invariant(
    "JC-VIEW-01",
    title="a check that waits for an option",
    severity="blocker",
    section="Security › Production Secrets Location",
    remedy="Give the run the application's checkout.",
)
def test_waits_for_an_option() -> None:
    skip_unless_given("--app-repo PATH", "no --app-repo given: the application's code was not scanned")


@invariant(
    "JC-VIEW-02",
    title="a real failure",
    severity="critical",
    section="Incident Response Scenarios › Scenario 2 › Case 3",
    remedy="Scenario 2 · Case 3: make app_settings agree with the container.",
)
def test_real_failure() -> None:
    raise violated("app_settings.environment is 'production', expected 'local'")


@invariant(
    "JC-VIEW-03",
    title="a skip for a reason of the target's",
    severity="normal",
    section="Health Checks › /health (Liveness Probe)",
    remedy="Nothing to do.",
)
def test_skipped_for_the_target() -> None:
    pytest.skip("paused: backlog expected")


@pytest.mark.parametrize("n", range(6))
@invariant(
    "JC-VIEW-04",
    title="a check that holds",
    severity="normal",
    section="Health Checks › /health (Liveness Probe)",
    remedy="Nothing to do.",
)
def test_holds(n: int) -> None:
    pass
