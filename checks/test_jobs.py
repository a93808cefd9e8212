"""Runbook "Workers and Scheduled Jobs › Kill Stuck Job" and the jobs' failure rate.

No job may hang in ``executando`` (the message hands over the runbook's kill statement);
none may fail often.

Every name (tables, columns, status words, keys, thresholds, the job table) comes from
runbook.toml's [runtime] section; every query is in fixtures/probes/runtime/; the fixtures
``runtime``, ``now`` and ``names`` are fixtures/connections.py's, the words of a message
plugins/contract/runtime_wording.py's. A table or column the dialect in force names but the
database lacks, while another known dialect's names are all there, is drift (plugins.drift):
the check says so instead of failing.
"""

from __future__ import annotations

from datetime import datetime

from fixtures.connections import Database
from fixtures.probes import drift as probes_drift
from fixtures.probes import runtime as pr
from plugins.contract.runbook import Runbook
from plugins.contract.runtime import RuntimeContract
from plugins.contract.runtime_wording import age as _age, more as _more
from plugins.contract.verdict import violated
from plugins.invariants import invariant

KILL_IDS = 2  # job ids written into the kill statement of a message (the evidence has all)


@invariant(
    "JC-JOBS-01",
    title="No job stuck running for longer than the threshold (30 min)",
    severity="critical",
    section="Workers and Scheduled Jobs › Kill Stuck Job",
    remedy="Kill Stuck Job: mark the run failed (Option 1, the UPDATE in the message), or `railway restart` "
    "the service that runs it (Option 2, kills all its running jobs); then `railway logs -f | grep -i \"job\"`.",
    tiers=("postdeploy", "nightly"),
)
def test_no_stuck_jobs(db: Database, runbook: Runbook, runtime: RuntimeContract, now: datetime,
                       names: probes_drift.RuntimeNames) -> None:
    names.require("executions")
    stuck = pr.stuck_runs(db, runbook, now)
    if not stuck:
        return
    runs = [f"{r.job} ({_age(r.running_for_s)}, {r.instance or '?'})" for r in stuck]
    scheduler_run = any(runtime.job(r.job) for r in stuck)
    procedure = "Kill Stuck Job" if scheduler_run else "Emergency: Kill Long-Running Worker Jobs"
    more = f" (+{len(stuck) - KILL_IDS} more in the evidence)" if len(stuck) > KILL_IDS else ""
    # The kill statement first: a message is cut at 400 characters, the evidence is not.
    raise violated(
        f"expected no run {'/'.join(runtime.status.running)} over {_age(runtime.stuck_after)}, found "
        f"{len(stuck)}{'+' if len(stuck) >= pr.STUCK_LIMIT else ''} — {procedure}: "
        f"{pr.kill_statement(runtime, runbook, stuck[:KILL_IDS])}{more} Runs: {_more(runs)}",
        evidence=[{**r.__dict__, "procedure": "Kill Stuck Job" if runtime.job(r.job)
                   else "Emergency: Kill Long-Running Worker Jobs",
                   "kill": pr.kill_statement(runtime, runbook, [r])} for r in stuck],
    )


@invariant(
    "JC-JOBS-02",
    title="Each job's failure rate over the window is at or under the threshold",
    severity="normal",
    section="Workers and Scheduled Jobs › View Scheduled Jobs Status",
    remedy="Read the failing runs' erro in job_executions and the logs (`railway logs -n 100 | grep -i "
    "\"job\\|error\"`); fix the integration they fail on (Scenario 5) before the backlog grows.",
    tiers=("nightly",),
)
def test_failure_rate(db: Database, runbook: Runbook, runtime: RuntimeContract, now: datetime,
                      names: probes_drift.RuntimeNames) -> None:
    names.require("executions")
    rates = pr.failure_rates(db, runbook, now)
    bad = sorted((r for r in rates if r.rate > runtime.failure_rate_max), key=lambda r: -r.rate)
    if bad:
        errors = pr.last_errors(db, runbook, [r.job for r in bad], now)
        lines = [f"{r.job} {r.failures}/{r.runs} ({r.rate:.1%})"
                 + (f", last error: {errors[r.job]}" if r.job in errors else "") for r in bad]
        raise violated(
            f"expected each job to fail in at most {runtime.failure_rate_max:.0%} of its runs over the last "
            f"{runtime.failure_window.total_seconds() / 86400:g} days, found {len(bad)}: {_more(lines)}",
            evidence=[{**r.__dict__, "rate": r.rate} for r in bad],
        )
