"""Runbook rule 4 and "Workers and Scheduled Jobs": the scheduler and its job table.

The scheduler must be one instance ("Múltiplas instâncias = jobs duplicados = CAOS"): seen
as duplicate runs in one cron slot and as more than one live heartbeat — a Redis key per
instance, or, for a scheduler that writes no key, the runs of its every-minute beat job —
and on Railway as the service's replica count. Every job of the table must have run on its
cron in its time zone (the critical ones judged apart, with more weight).

Every name (tables, columns, status words, keys, thresholds, the job table) comes from
runbook.toml's [runtime] section; every query is in fixtures/probes/runtime/; the fixtures
``runtime``, ``now`` and ``names`` are fixtures/connections.py's, the words of a message
plugins/contract/runtime_wording.py's. A table or column the dialect in force names but the
database lacks, while another known dialect's names are all there, is drift (plugins.drift):
the check says so instead of failing.

Evidence is judged before it is counted (issue 16). A row stamped beyond the clock skew in the
future, or a run that ended before it started, proves nothing ran; a heartbeat that never
expires, or expires far later than it is renewed, proves nothing is alive. Such evidence is
left out of every verdict — a stopped process still fails — and named, with its table (or
key), row key and value, by the check whose evidence it is: a job's runs by the schedule
check that judges the job (the beat job's runs and heartbeat rows by JC-SCHED-02), Redis
heartbeats by the liveness check. Beside genuine evidence that decides the verdict it is a
warning or a failure, as ``runtime.refused_evidence`` declares.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from fixtures.connections import Database, SafeRedis
from fixtures.probes import drift as probes_drift
from fixtures.probes import runtime as pr
from fixtures.railway import Railway
from plugins.contract.runbook import Runbook
from plugins.contract.runtime import LIVENESS_RUNS, Job, RuntimeContract
from plugins.contract.runtime_wording import (
    Warn, age as _age, at as _t, more as _more, refused_note as _refused_note, report_refused as _report_refused,
)
from plugins.contract.verdict import violated
from plugins.invariants import invariant
from plugins.needs_option import skip_unless_given

@invariant(
    "JC-SCHED-01",
    title="No job runs twice in one cron slot (one scheduler instance)",
    severity="critical",
    section="Workers and Scheduled Jobs › Scheduled Jobs Reference",
    remedy="Rule 4: scale julia-scheduler back to 1 instance (Railway → julia-scheduler → Settings → "
    "Replicas = 1, no autoscale), then check what the duplicated runs did twice.",
    tiers=("nightly",),
)
def test_one_run_per_cron_slot(db: Database, runbook: Runbook, runtime: RuntimeContract, now: datetime,
                               names: probes_drift.RuntimeNames) -> None:
    names.require("executions")
    start = now - runtime.look_back
    fires = {job.name: job.fires_between(start, now) for job in runtime.jobs}
    ends = {job.name: job.next_fire(now) for job in runtime.jobs}
    dups = pr.duplicate_slots(db, runbook, fires, ends)
    if dups:
        lines = [f"{d.job} @ {_t(d.slot)}: {d.runs} runs" + (
            f" by {', '.join(d.instances)}" if runtime.executions.instance else "") for d in dups]
        raise violated(
            f"expected at most one run per cron slot over the last {_age(runtime.look_back)} (rule 4), found "
            f"{len(dups)} slot(s) run more than once: {_more(lines)}",
            evidence=[d.__dict__ for d in dups],
        )


@invariant(
    "JC-SCHED-02",
    title="Exactly one scheduler instance is alive (one heartbeat)",
    severity="critical",
    section="CRITICAL RULES › Rule 4",
    remedy="Rule 4: julia-scheduler MUST be 1 instance — stop the extra one (Railway → julia-scheduler → "
    "Replicas = 1); if none is alive, `railway restart` julia-scheduler and watch `railway logs -f | grep -i "
    "scheduler`.",
    tiers=("postdeploy", "nightly"),
)
def test_one_live_scheduler(request: pytest.FixtureRequest, runbook: Runbook, runtime: RuntimeContract) -> None:
    """A heartbeat is live when its key expires unless renewed (a TTL no longer than
    ``runtime.heartbeat_expiry_ratio_max`` renewal periods) and, when its value says when it
    was last renewed, that was within the TTL and not in the future: a key left without
    expiry (a crashed scheduler of an older release, a hand-made key), or one outliving its
    writer by hours, proves nothing about a scheduler. Beside a live one, such keys are
    reported as ``runtime.refused_evidence`` declares.

    A scheduler that writes no key (``runtime.scheduler.liveness = "job_runs"``) is judged by
    the job history it leaves: its every-minute beat job must have a run within the job's
    grace, and never two in one cron slot."""
    if runtime.scheduler.liveness == LIVENESS_RUNS:
        _judge_beat(request.getfixturevalue("db"), runbook, runtime, request.getfixturevalue("now"),
                    request.getfixturevalue("names"), request.getfixturevalue("warn"))
        return
    redis_ro: SafeRedis = request.getfixturevalue("redis_ro")
    keys = pr.scheduler_heartbeats(redis_ro, runbook)
    sc = runtime.scheduler
    now = pr.redis_now(redis_ro) if keys else None
    stale = [(b, why) for b in keys if (why := _stale_beat(b, now, runtime))]
    beats = [b for b in keys if not any(b is s for s, _ in stale)]
    prefix = sc.heartbeat_prefix
    if not beats:
        if not stale:
            raise violated(
                f"expected exactly one live scheduler, found no heartbeat under '{prefix}*' (each live "
                f"{sc.service_name} renews its key within {sc.heartbeat_ttl_s} s): the scheduler is down",
            )
        raise violated(
            f"expected exactly one live scheduler, found no live heartbeat under '{prefix}*', only stale "
            f"key(s): {_more([f'{b.key} ({why})' for b, why in stale])}: the scheduler is down (a live "
            f"{sc.service_name} renews its key within {sc.heartbeat_ttl_s} s, with that TTL)",
            evidence=[{**b.__dict__, "stale": why} for b, why in stale],
        )
    if len(beats) > 1:
        who = [f"{b.instance} (pid {b.detail.get('pid', '?')} on {b.detail.get('host', '?')}, since "
               f"{b.detail.get('since', '?')})" for b in beats]
        raise violated(
            f"expected exactly one live scheduler (rule 4: 1 instance, no autoscale), found {len(beats)} "
            f"heartbeats: {_more(who)}",
            evidence=[b.__dict__ for b in beats],
        )
    _report_refused(request.getfixturevalue("warn"), runtime, f"heartbeat key(s) under '{prefix}*'",
                    [f"{b.key} ({why})" for b, why in stale], [{**b.__dict__, "stale": why} for b, why in stale])


def _judge_beat(db: Database, runbook: Runbook, runtime: RuntimeContract, now: datetime,
                names: probes_drift.RuntimeNames, warn: Warn) -> None:
    """JC-SCHED-02 from the job history: a run of the beat job since its due firing (the
    latest whose grace has run out) — any status: the scheduler records the run before it
    calls the API — and at most one run per cron slot since then (two are two schedulers).
    The heartbeat rows the beat's runs leave in the pause table corroborate either way.
    A beat run or heartbeat row stamped in the future (a run that ended before it started)
    is no beat: a scheduler that died leaving one is down, and says so."""
    names.require("executions")
    beat = runtime.beat
    assert beat is not None  # contract_runtime validated beat_job
    sc, pa = runtime.scheduler, runtime.pause
    due = beat.due_fire(now)
    state = pr.beat_state(db, runbook, beat.name, due - runtime.clock_skew, now)
    refused = pr.refused_runs(db, runbook, {beat.name: due - runtime.clock_skew}, now).get(beat.name, [])
    rows = [r.refused for r in pr.refused_status_rows(db, runbook, now) if r.heartbeat] if pa.heartbeat_via else []
    lines = [r.line(label=False) for r in refused + rows]  # the beat's own runs and rows: no label needed
    evidence = {**state.__dict__, "due": due, "refused": [r.__dict__ for r in refused + rows]}
    if state.runs == 0:
        last = (f"last run {_t(state.last_run)} {state.last_status}" if state.last_run
                else f"no run in the last {_age(runtime.look_back)}")
        beats = "" if state.beat_rows is None else (
            f"; newest {pa.table} heartbeat row {_t(state.last_beat_row)}" if state.last_beat_row
            else f"; no {pa.table} heartbeat row in {_age(runtime.look_back)}")
        stuck = (f", or stuck — its loop waits for the batch still running: "
                 f"{_more([f'{j} since {_t(t)}' for j, t in state.running])}" if state.running else "")
        raise violated(
            f"expected exactly one live scheduler, found no run of its every-minute '{beat.name}' job since "
            f"{_t(due)} (grace {_age(beat.grace)}; {last}{beats}): {sc.service_name} is down{stuck}"
            f"{_refused_note(lines, show=1)}",
            evidence=evidence,
        )
    dups = pr.duplicate_slots(db, runbook, {beat.name: beat.fires_between(due, now)},
                              {beat.name: beat.next_fire(now)})
    if dups:
        slots = [f"{_t(d.slot)}: {d.runs} runs" for d in dups[:2]] + (["…"] if len(dups) > 2 else [])
        beats = (f"; {pa.table} has {state.beat_rows} heartbeat rows since {_t(due)}"
                 if state.beat_rows is not None else "")
        raise violated(
            f"expected exactly one live scheduler (rule 4: 1 instance, no autoscale), found the every-minute "
            f"'{beat.name}' job run more than once in {len(dups)} cron slot(s) since {_t(due)} "
            f"({'; '.join(slots)}){beats}: more than one {sc.service_name} is running",
            evidence={**evidence, "duplicates": [d.__dict__ for d in dups]},
        )
    _report_refused(warn, runtime, f"the scheduler's beat ('{beat.name}' runs, {pa.table} heartbeat rows)", lines,
                    evidence["refused"])


def _judge_schedule(db: Database, runbook: Runbook, runtime: RuntimeContract, now: datetime,
                    jobs: list[Job], weight: str, warn: Warn) -> None:
    """Every job of ``jobs`` succeeded after its last due firing (the latest whose grace ran out).

    A run stamped in the future, or one that ended before it started, is no success: a job
    whose only "success" it is stays late, and its line names the row. Such rows of jobs on
    time are reported as ``runtime.refused_evidence`` declares — except the beat job's, which
    JC-SCHED-02 reports as the scheduler's liveness evidence."""
    if not jobs:
        return
    due = {job.name: job.due_fire(now) for job in jobs}
    since = {}
    for job in jobs:
        two_back = job.previous_fire(job.previous_fire(due[job.name]) - timedelta(microseconds=1))
        since[job.name] = min(two_back, now - runtime.look_back)
    found = pr.last_runs(db, runbook, since, now)
    refused = pr.refused_runs(db, runbook, {job.name: due[job.name] - runtime.clock_skew for job in jobs}, now)
    late: list[str] = []
    evidence = []
    for job in jobs:
        runs = found.get(job.name)
        last_ok = runs.last_success if runs else None
        if last_ok is not None and last_ok >= due[job.name] - runtime.clock_skew:
            continue
        ran = f"last success {_t(last_ok)}" if last_ok else f"no success since {_t(since[job.name])}"
        if runs and runs.last_run and runs.last_run != last_ok:
            ran += f" (last run {_t(runs.last_run)} {runs.last_status}" + (
                f": {runs.last_error}" if runs.last_error else "") + ")"
        ignored = refused.pop(job.name, [])
        if ignored:
            ran += f" — not counted: {'; '.join(r.line(label=False) for r in ignored)}"
        late.append(f"{job.name} ('{job.cron}' {job.timezone}): {ran}, due {_t(due[job.name])} "
                    f"+{_age(job.grace)} — If Fails: {job.if_fails}")
        evidence.append({"job": job.name, "cron": job.cron, "timezone": job.timezone, "due": due[job.name],
                         "last_success": last_ok, "last_run": runs.last_run if runs else None,
                         "if_fails": job.if_fails, "critical": job.critical,
                         "refused": [r.__dict__ for r in ignored]})
    if runtime.beat is not None:
        refused.pop(runtime.beat.name, None)  # JC-SCHED-02's evidence
    others = [r for rows in refused.values() for r in rows]
    if late:
        raise violated(f"expected every {weight}job to succeed after its last due firing, found {len(late)} late: "
                       f"{_more(late)}" + _refused_note([r.line() for r in others]),
                       evidence=evidence + [{"refused": [r.__dict__ for r in others]}] if others else evidence)
    _report_refused(warn, runtime, f"runs of {weight}jobs", [r.line() for r in others],
                    [r.__dict__ for r in others])


@invariant(
    "JC-SCHED-03",
    title="Every critical scheduled job ran on its cron (within its grace)",
    severity="critical",
    section="Workers and Scheduled Jobs › Scheduled Jobs Reference",
    remedy="Check the scheduler: `railway logs -n 100 | grep -i \"scheduler\\|job\\|cron\"`; if it is down "
    "or stuck, `railway restart` julia-scheduler; a failing job shows its error in job_executions.erro.",
    tiers=("postdeploy", "nightly"),
)
def test_jobs_run_on_schedule(db: Database, runbook: Runbook, runtime: RuntimeContract, now: datetime,
                              names: probes_drift.RuntimeNames, warn: Warn) -> None:
    """The jobs the contract marks critical (the runbook's whole table; a deployment's own
    critical list): the post-deploy gate's share of the schedule."""
    names.require("executions")
    critical = [job for job in runtime.jobs if job.critical]
    weight = "" if len(critical) == len(runtime.jobs) else "critical "
    _judge_schedule(db, runbook, runtime, now, critical, weight, warn)


@invariant(
    "JC-SCHED-05",
    title="Every other scheduled job ran on its cron (within its grace)",
    severity="normal",
    section="Workers and Scheduled Jobs › Scheduled Jobs Reference",
    remedy="Read the late job's runs in job_executions (error, response_code) and the scheduler's logs "
    "(`railway logs -n 100 | grep -i \"scheduler\\|job\"`); a job the runbook's table lacks is the "
    "deployment's own: fix it, or the runbook's table.",
    tiers=("nightly",),
)
def test_other_jobs_run_on_schedule(db: Database, runbook: Runbook, runtime: RuntimeContract, now: datetime,
                                    names: probes_drift.RuntimeNames, warn: Warn) -> None:
    """The jobs the contract does not mark critical: late ones weigh less (normal, nightly)
    than the critical ones JC-SCHED-03 judges. With the runbook's table (all critical) there
    is nothing to judge here."""
    others = [job for job in runtime.jobs if not job.critical]
    if not others:
        return
    names.require("executions")
    _judge_schedule(db, runbook, runtime, now, others, "non-critical ", warn)


@invariant(
    "JC-SCHED-04",
    title="The scheduler service runs exactly one replica on Railway",
    severity="critical",
    section="Deployment Architecture › Production Environment",
    remedy="Rule 4: Railway → julia-scheduler → Settings → set Replicas to 1 and turn autoscaling off "
    "(\"Scheduler: 1 instance, NO autoscale\").",
    tiers=("postdeploy", "nightly"),
)
def test_scheduler_scale(railway: Railway, runtime: RuntimeContract) -> None:
    """Each service the profile names, read by its id: the scheduler must run exactly one
    replica; the api (``railway_api_service_id``, when given) at least one. The worker's
    service is judged with the worker's liveness (JC-QUEUE-02), where its absence matters.
    On a local target the local stack's platform answers for the schedulers it runs."""
    why_not = railway.unreachable()
    if why_not is not None:
        skip_unless_given(railway.token_option(), f"{why_not}: the scheduler's replica count cannot be read")
    scale = railway.scale("scheduler")
    api = railway.scale("api") if railway.service_id("api") else None
    _judge_scale(scale, runtime, api)


def _judge_scale(scale: pr.RailwayScale, runtime: RuntimeContract, api: pr.RailwayScale | None = None) -> None:
    wrong: list[str] = []
    if scale.replicas != 1:
        where = f" ({', '.join(f'{r}: {n}' for r, n in scale.by_region.items())})" if scale.by_region else ""
        wrong.append(f"expected {scale.service_name or runtime.scheduler.service_name} to run exactly 1 replica "
                     f"(rule 4: NO autoscale), Railway reports {scale.replicas}{where}")
    if api is not None and api.replicas < 1:
        name = f" {api.service_name}" if api.service_name else ""
        wrong.append(f"expected the api service{name} to run at least 1 replica, Railway reports {api.replicas}")
    if wrong:
        raise violated("; ".join(wrong), evidence={"scheduler": scale.__dict__, "api": api.__dict__ if api else None})


def _stale_beat(beat: pr.Heartbeat, now: datetime | None, runtime: RuntimeContract) -> str | None:
    """Why a heartbeat key is not a live scheduler's, or None when it is: it cannot expire,
    its beat is in the future, or old, or it expires far later than a scheduler renews it."""
    sc = runtime.scheduler
    ttl = sc.heartbeat_ttl_s
    if beat.ttl_s < 0:
        return "no expiry"
    last = beat.beat
    if now is not None and last is not None and last > now + runtime.clock_skew:
        return (f"beat {beat.detail.get('beat')} is {pr.span((last - now).total_seconds())} in the future, beyond the "
                f"{runtime.clock_skew.total_seconds():g} s clock skew")
    if now is not None and last is not None and now - last > timedelta(seconds=ttl) + runtime.clock_skew:
        return f"last beat {_age(now - last)} ago, expires in {beat.ttl_s} s"
    if beat.ttl_s > runtime.expiry_ratio_max * sc.heartbeat_period_s:
        return (f"expires in {beat.ttl_s} s, more than {runtime.expiry_ratio_max:g} × its "
                f"{sc.heartbeat_period_s:g} s renewal period")
    return None
