"""Run by tests/test_report_*.py: one invariant per way a check can end, for the report.

Not collected by `pytest tests` (no test_ prefix). Waivers for JC-REPORT-03 (active) and
JC-REPORT-04 (expired) come from the runbook.toml the test writes.
"""

from __future__ import annotations

import pytest

from plugins.contract.verdict import Undecidable, violated
from plugins.invariants import invariant

pytestmark = [pytest.mark.nightly, pytest.mark.postdeploy]


@invariant(
    "JC-REPORT-01",
    title="a violation with evidence",
    severity="blocker",
    section="Incident Response Scenarios › Scenario 2 › Case 3",
    remedy="Scenario 2 · Case 3: make app_settings agree with the container.",
)
def test_violation_with_evidence() -> None:
    raise violated("app_settings.environment is 'production', expected 'local'",
                   evidence={"rows": [{"key": "environment", "value": "production"}]})


@pytest.fixture
def unreachable() -> None:
    raise Undecidable("endpoint rate missing: every path answered 404", evidence={"tried": ["/health/rate"]})


@invariant(
    "JC-REPORT-02",
    title="undecidable in setup",
    severity="normal",
    section="Health Checks › /health/rate (Rate Limiting Status)",
    remedy="Check that the deployment serves /health/rate.",
)
def test_undecidable_in_setup(unreachable: None) -> None:
    pass


@invariant(
    "JC-REPORT-03",
    title="a waived violation",
    severity="critical",
    section="Incident Response Scenarios › Scenario 3",
    remedy="Scenario 3: resume Júlia.",
)
def test_waived_violation() -> None:
    raise violated("julia_status is 'pausado'", evidence={"status": "pausado"})


@invariant(
    "JC-REPORT-04",
    title="a violation whose waiver expired",
    severity="critical",
    section="Incident Response Scenarios › Scenario 4",
    remedy="Scenario 4: find the slow query.",
)
def test_expired_waiver() -> None:
    raise violated("p95 latency 45 s, budget 30 s")


@invariant(
    "JC-REPORT-05",
    title="a passing invariant",
    severity="minor",
    section="Health Checks › /health (Liveness Probe)",
    remedy="Nothing to do.",
)
def test_passes() -> None:
    pass


@invariant(
    "JC-REPORT-06",
    title="passes after a retried read",
    severity="normal",
    section="Health Checks › /health (Liveness Probe)",
    remedy="Nothing to do; look at the network if retries recur.",
)
def test_passes_after_a_retry(pytestconfig: pytest.Config) -> None:
    from fixtures.clients import Api
    from plugins.contract.runbook import HttpPolicy
    from plugins.invariants import retry_recorder
    from plugins.contract.redaction import Redactor
    from tests.loopback import DroppingApi

    with DroppingApi(drops=1) as server:
        api = Api(server.url, HttpPolicy(2.0, 5.0, 1000, retries=1), {}, Redactor(),
                  on_retry=retry_recorder(pytestconfig))
        assert api.get("/health").status == 200
        api.close()
