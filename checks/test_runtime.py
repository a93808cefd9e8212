"""Runbook rule 4, "Workers and Scheduled Jobs", Scenario 3 and "Kill Stuck Job".

The scheduler must be one instance ("Múltiplas instâncias = jobs duplicados = CAOS"): seen
as duplicate runs in one cron slot and as more than one live heartbeat — a Redis key per
instance, or, for a scheduler that writes no key, the runs of its every-minute beat job —
and on Railway as the service's replica count. Every job of the table must have run on its
cron in its time zone (the critical ones judged apart, with more weight); none may hang in
``executando``; none may fail often. The worker must drain ``fila_mensagens`` while Júlia is
``ativo`` — its liveness read from ARQ's key, or from the queue's own progress when it
writes none — and when she is ``pausado`` the backlog is the expected consequence where the
pause holds the queue, reported once (by the pause check), not twice.

Every name (tables, columns, status words, keys, thresholds, the job table) comes from
runbook.toml's [runtime] section; every query is in fixtures/probes/runtime/. A table or
column the dialect in force names but the database lacks, while another known dialect's names
are all there, is drift (plugins.drift): the check says so instead of failing.

While Júlia is paused nothing may be sent (JC-PAUSE-02): the emergency pause is the
runbook's brake for "data corruption, security breach, mass spam", and a worker that ignores
it turns the brake into a lie.

Evidence is judged before it is counted (issue 16). A row stamped beyond the clock skew in the
future, or a run that ended before it started, proves nothing ran; a heartbeat that never
expires, or expires far later than it is renewed, proves nothing is alive. Such evidence is
left out of every verdict — a stopped process still fails — and named, with its table (or
key), row key and value, by the check whose evidence it is: a job's runs by the schedule
check that judges the job (the beat job's runs and heartbeat rows by JC-SCHED-02), the
switch's decisions by JC-PAUSE-01, the queue's rows by JC-QUEUE-01, Redis heartbeats by the
liveness checks. Beside genuine evidence that decides the verdict it is a warning or a
failure, as ``runtime.refused_evidence`` declares.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from fixtures.connections import Database, SafeRedis
from fixtures.probes import drift as probes_drift
from fixtures.probes import runtime as pr
from fixtures.railway import Railway
from plugins.contract.drift import Dialects
from plugins.contract.runbook import Runbook
from plugins.contract.runtime import LIVENESS_RUNS, REFUSED_FAILURE, WORKER_PROGRESS, Job, RuntimeContract
from plugins.contract.verdict import Undecidable, violated
from plugins.invariants import invariant
from plugins.needs_option import skip_unless_given


SHOW = 5  # violations listed in a message; the evidence has them all
MESSAGE_CHARS = 400  # a certificate's message is cut there (plugins.invariants.one_line)


@pytest.fixture(scope="module")
def runtime(runbook: Runbook) -> RuntimeContract:
    return pr.contract_of(runbook)


@pytest.fixture(scope="module")
def now(db: Database) -> datetime:
    return pr.db_now(db)


@pytest.fixture(scope="module")
def names(db: Database, dialects: Dialects) -> probes_drift.RuntimeNames:
    """Which runtime names the database lacks, and whether that is another dialect's spelling."""
    return probes_drift.runtime_names(dialects, db)


def _t(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%SZ") if moment else "never"


def _age(delta: timedelta | float) -> str:
    seconds = delta.total_seconds() if isinstance(delta, timedelta) else delta
    minutes = int(seconds // 60)
    if minutes >= 120:
        return f"{minutes // 60} h" + (f" {minutes % 60} min" if minutes % 60 else "")
    return f"{minutes} min" if minutes else f"{int(seconds)} s"


def _more(items: list[str]) -> str:
    return "; ".join(items[:SHOW]) + (f"; … and {len(items) - SHOW} more" if len(items) > SHOW else "")


Warn = Callable[[str], None]


def _refused_note(refused: list[str], show: int = SHOW) -> str:
    """The refused evidence inside a failure's message (the cause it did not hide); the first
    ``show`` of it where the message has little room left (the evidence has all)."""
    if not refused:
        return ""
    more = f" (+{len(refused) - show} more)" if len(refused) > show else ""
    return f"; not counted (impossible): {'; '.join(refused[:show])}{more}"


def _report_refused(warn: Warn, runtime: RuntimeContract, what: str, refused: list[str],
                    evidence: object = None) -> None:
    """Evidence refused beside the genuine evidence that decided the verdict: said as a
    warning, or failed, as ``runtime.refused_evidence`` declares."""
    if not refused:
        return
    if runtime.refused_evidence == REFUSED_FAILURE:
        raise violated(f"expected {what} to be believable evidence, found {len(refused)} that "
                       f"{'is' if len(refused) == 1 else 'are'} not (runtime.refused_evidence = 'failure'): "
                       f"{_more(refused)}", evidence=evidence)
    warn(f"{len(refused)} refused as {what} (not counted; the verdict stands on the rest): {_more(refused)}")


# --- the scheduler ------------------------------------------------------------------------


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


# --- runs ---------------------------------------------------------------------------------


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


# --- the queue and the switch -------------------------------------------------------------


@invariant(
    "JC-PAUSE-01",
    title="Júlia is active (the newest julia_status row)",
    severity="critical",
    section="Incident Response Scenarios › Scenario 3: Julia Paused or Not Responding",
    remedy="Scenario 3: read why she was paused (motivo, alterado_via); once the cause is fixed, resume "
    "her with the runbook's INSERT of an 'ativo' row (the message has it) and verify the newest status.",
    tiers=("postdeploy", "nightly"),
)
def test_julia_active(db: Database, runbook: Runbook, runtime: RuntimeContract, now: datetime,
                      names: probes_drift.RuntimeNames, warn: Warn) -> None:
    """The verdict comes from the newest decision — a row a person (or the runbook's SQL)
    wrote, not a heartbeat's. Where the app has its own "current state" view (the newest row
    of any kind), it is read too, and the message says which of the two the verdict is
    based on: with a heartbeat writing ``ativo`` every minute the view forgets a pause within
    a minute, the decision does not. A decision stamped beyond the clock skew in the future
    decides nothing (it would be "the newest" until its time comes): it is named instead."""
    names.require("pause")
    state = pr.julia_status(db, runbook, now)
    view = pr.current_view(db, runbook)
    pa = runtime.pause
    refused = [r.refused for r in pr.refused_status_rows(db, runbook, now) if not r.heartbeat]
    lines = [r.line() for r in refused]
    note = _refused_note(lines, show=1)
    if state is None:
        raise violated(f"expected the newest {pa.table} row to be {'/'.join(pa.active)}, found no row at all: "
                       "Júlia's state is unknown" + note + _view_basis(runtime, view, None, now),
                       evidence={"refused": [r.__dict__ for r in refused]})
    if state.status in pa.active:
        _report_refused(warn, runtime, f"{pa.table} decision(s)", lines, [r.__dict__ for r in refused])
        return
    age = _age(now - state.created_at)
    if state.status in pa.paused:
        kind = "paused"
    elif state.status in pa.error:
        kind = "in error state"
    else:
        kind = f"in a state the runbook does not know ({'/'.join(pa.active + pa.paused + pa.error)} are)"
    # A message is cut at 400 characters: the reason is clipped as needed so that the basis of
    # the verdict and the resume statement stay in it (the evidence has everything). Evidence
    # refused beside it is named in full where it fits; where it does not, the view's reading
    # goes first, then the row moves to a warning of this check and the message points there.
    newest = "newest decision" if pa.heartbeat_via else f"newest {pa.table}"
    basis, resume = _view_basis(runtime, view, state, now), pr.resume_statement(runtime, runbook)

    def message(reason: str | None, note: str, basis: str) -> str:
        return (f"expected Júlia {'/'.join(pa.active)}, found her {kind}: {newest} is {state.status!r} since "
                f"{_t(state.created_at)} ({age} ago), {pa.reason} {reason!r}, {pa.changed_via} "
                f"{state.changed_via!r}{note}{basis}. To resume: {resume}")

    def fitted(note: str, basis: str) -> str:
        text, keep = message(state.reason, note, basis), len(state.reason or "")
        while len(text) > MESSAGE_CHARS and state.reason and keep > 8:
            keep -= 4
            text = message(state.reason[:keep] + "…", note, basis)
        return text

    pointer = (f"; {len(lines)} {pa.table} row(s) stamped in the future not counted (named in a warning)"
               if lines else "")
    candidates = [(note, basis), (note, ""), (pointer, basis), (pointer, "")]
    text = next((t for t in (fitted(n, b) for n, b in candidates) if len(t) <= MESSAGE_CHARS),
                fitted(pointer, ""))
    if lines and pointer in text:
        warn(f"not counted as {pa.table} decision(s) (impossible): {_more(lines)}")
    raise violated(
        text,
        evidence={"decision": state.__dict__, "view": view.row.__dict__ if view and view.row else None,
                  "refused": [r.__dict__ for r in refused]},
    )


def _view_basis(runtime: RuntimeContract, view: pr.CurrentView | None, decision: pr.SwitchState | None,
                now: datetime) -> str:
    """Which reading the verdict is based on, when the app has its own view of the state
    (the decision's own details are already in the message)."""
    if view is None:
        return ""
    if not view.exists:
        return f"; the app's view {view.name} does not exist: verdict from the newest decision"
    row = view.row
    if row is None:
        return f"; the app's view {view.name} is empty"
    if decision is not None and (row.status, row.created_at) == (decision.status, decision.created_at):
        return f"; the app's view {view.name} shows the same row"
    what = "heartbeat" if pr.is_heartbeat(runtime, row) else f"{row.changed_via} row"
    future = ", in the future" if row.created_at > now + runtime.clock_skew else ""
    return (f"; the view {view.name} says {row.status!r} ({what} at {_t(row.created_at)}{future}): verdict from "
            "the decision" if decision else "")


@invariant(
    "JC-QUEUE-01",
    title="fila_mensagens is being drained (no message waits longer than 5 min)",
    severity="critical",
    section="Incident Response Scenarios › Scenario 3: Julia Paused or Not Responding",
    remedy="Scenario 3 (status 'ativo' but no responses): check the worker (`railway logs -n 100 | grep -i "
    "\"worker\\|fila\\|error\"`); if the queue grows without processing, `railway restart` julia-worker.",
    tiers=("postdeploy", "nightly"),
)
def test_queue_drained(db: Database, runbook: Runbook, runtime: RuntimeContract, now: datetime,
                       names: probes_drift.RuntimeNames, warn: Warn) -> None:
    """Only due rows wait: a row whose due time (``runtime.queue.due_at``) is in the future is
    scheduled — a retry, a campaign for tomorrow — not backlog. Where the pause holds the
    queue (the runbook's), a backlog while paused is by design; where nothing reads the
    switch (``holds_queue = false``), it is judged as any other. A row sent or claimed "in
    the future", or sent before it was created, is not processing: it is named, never counted."""
    names.require("queue", "pause")
    qu = runtime.queue
    q = pr.queue_state(db, runbook, now)
    state = pr.julia_status(db, runbook, now)
    paused = state if state is not None and state.status in runtime.pause.paused else None
    if paused is not None and runtime.pause.holds_queue:
        pytest.skip(
            f"paused: backlog expected — Júlia is {paused.status!r} since {_t(paused.created_at)} "
            f"({paused.reason!r}), so {q.pending} message(s) wait in {qu.table} by design (JC-PAUSE-01 "
            "reports the pause)"
        )
    processing = (f"processed in the last {_age(qu.processing_window)}: {q.processed_recently}"
                  + (f" (last {_t(q.last_processed)})" if q.last_processed else ""))
    while_ = ("while Júlia is active" if paused is None else
              f"although Júlia is {paused.status!r} (the deployment's pause does not hold the queue)")
    later = (f"; {q.scheduled} more scheduled for later ({qu.due_at} from {_t(q.next_due)}), not backlog"
             if q.scheduled else "")
    refused = pr.refused_queue_rows(db, runbook, now)
    lines = [r.line() for r in refused]
    note = _refused_note(lines, show=1)  # the backlog's facts come first; the evidence has every row
    evidence = {**q.__dict__, "refused": [r.__dict__ for r in refused]}
    if q.stale:
        raise violated(
            f"expected no unprocessed {qu.table} row {'due' if qu.due_at else 'older'} "
            f"{'more than ' if qu.due_at else 'than '}{_age(qu.max_age)}{' ago' if qu.due_at else ''} {while_}, "
            f"found {q.stale} (of {q.pending} pending; oldest since {_t(q.oldest_pending)}, "
            f"{_age(now - q.oldest_pending) if q.oldest_pending else '?'}{later}); {processing}{note}"
            + (": the worker is not processing" if not q.processed_recently else ": the worker is behind"),
            evidence=evidence,
        )
    if q.pending and q.oldest_pending and now - q.oldest_pending > qu.pickup and not q.processed_recently:
        raise violated(
            f"expected pending {qu.table} rows to be picked up within {_age(qu.pickup)}, found {q.pending} "
            f"pending since {_t(q.oldest_pending)} ({_age(now - q.oldest_pending)}){later} and nothing processed in "
            f"the last {_age(qu.processing_window)}{note}: the worker is not processing",
            evidence=evidence,
        )
    _report_refused(warn, runtime, f"{qu.table} row(s)", lines, evidence["refused"])


def _pause_line(send: pr.PausedSend) -> str:
    until = f"until {_t(send.paused_until)}" if send.paused_until else "still paused"
    return f"id {send.row_id} sent {_t(send.sent_at)} (paused {_t(send.paused_at)}, {until})"


@invariant(
    "JC-PAUSE-02",
    title="While Júlia is paused, nothing is sent",
    severity="critical",
    section="Emergency Procedures › Emergency Pause Julia (All Conversations)",
    remedy="Stop the sender now: a worker is sending despite the pause (\"No messages sent until resumed\") — "
    "`railway restart` julia-worker, or scale it to 0 until the pause is over; then find the release or "
    "instance that does not read julia_status and roll it back.",
    tiers=("postdeploy", "nightly"),
)
def test_nothing_sent_while_paused(db: Database, runbook: Runbook, runtime: RuntimeContract, now: datetime,
                                   names: probes_drift.RuntimeNames) -> None:
    """A pause runs from a decision row in a paused word (a heartbeat's ``ativo`` row is not a
    decision: runtime.pause.heartbeat_via) to the next decision. Every pause overlapping the
    look-back window is checked, so a leak during last night's pause shows after the resume."""
    names.require("queue", "pause")
    sends = pr.sent_while_paused(db, runbook, now)
    if not sends:
        return
    pa, qu = runtime.pause, runtime.queue
    state = (f"{qu.status} in {'/'.join(qu.sent)}" if qu.status else f"{qu.processed} = true")
    heartbeat = (f" ({pa.table} rows {pa.changed_via} in {'/'.join(pa.heartbeat_via)} are the heartbeat's, not "
                 "decisions)" if pa.heartbeat_via else "")
    first = sends[0]
    more = "+" if len(sends) >= pr.PAUSED_SENDS_LIMIT else ""
    raise violated(
        f"{len(sends)}{more} {qu.table} row(s) sent while Júlia was paused — ids "
        f"{', '.join(s.row_id for s in sends[:20])}{', …' if len(sends) > 20 else ''}; expected nothing "
        f"with {state} and {qu.updated_at} inside a pause ({pa.table} {'/'.join(pa.paused)} since "
        f"{_t(first.paused_at)}, {pa.reason} {first.reason!r}){heartbeat}: {_more([_pause_line(s) for s in sends])}",
        evidence=[{**s.__dict__} for s in sends],
    )


# ARQ renews its key only once the old one is within ~1 s of expiring; a read in that gap
# is not a dead worker.
HEALTH_REREAD_S = 1.5


@invariant(
    "JC-QUEUE-02",
    title="The queue worker is alive (ARQ's health-check key, or the queue's own progress)",
    severity="critical",
    section="Workers and Scheduled Jobs › Worker Services",
    remedy="julia-worker is down or hung: `railway logs -n 100 | grep -i \"worker\\|fila\\|error\"`, then "
    "`railway restart` julia-worker and watch `railway logs -f | grep -i \"fila\\|worker\"`; if the service "
    "does not exist, create it (the same image, RUN_MODE=worker).",
    tiers=("postdeploy", "nightly"),
)
def test_worker_alive(request: pytest.FixtureRequest, runbook: Runbook, runtime: RuntimeContract) -> None:
    """The runbook's ARQ worker renews its health-check key, with a TTL of its interval + 1 s:
    a key that never expires, or whose TTL is more than ``runtime.heartbeat_expiry_ratio_max``
    health-check intervals (``runtime.queue.health_check_interval_seconds``), outlives the worker
    and proves nothing. Its value's time is not judged: ARQ writes the worker's local time
    with no year and no zone. A worker that writes no key
    (``runtime.queue.worker_liveness = "queue_progress"``) is judged by what it leaves in the
    queue: due rows claimed or sent (never a row sent "in the future") — and, when the
    profile names its Railway service, by Railway knowing that service."""
    if runtime.queue.worker_liveness == WORKER_PROGRESS:
        _judge_queue_progress(request, runbook, runtime)
        return
    redis_ro: SafeRedis = request.getfixturevalue("redis_ro")
    health = pr.worker_health(redis_ro, runbook)
    if health.value is None:
        time.sleep(HEALTH_REREAD_S)
        health = pr.worker_health(redis_ro, runbook)
    if health.value is None:
        raise violated(
            f"expected ARQ's health-check key '{health.key}' (renewed by every live worker), found none: "
            f"{runtime.queue.stalled_cause}",
        )
    if health.ttl_ms < 0:
        # ARQ always writes it with a TTL (health_check_interval + 1 s): a key that never
        # expires outlives any worker and says nothing about one.
        raise violated(
            f"expected ARQ's health-check key '{health.key}' to expire unless renewed (ARQ sets a TTL of "
            f"its health_check_interval + 1 s), found it without expiry (value {str(health.value)[:80]!r}): "
            f"it is not a live worker's — {runtime.queue.service_name} may be down",
            evidence=health.__dict__,
        )
    qu = runtime.queue
    if health.ttl_ms > runtime.expiry_ratio_max * qu.health_check_interval_s * 1000:
        raise violated(
            f"expected ARQ's health-check key '{health.key}' to expire within {runtime.expiry_ratio_max:g} × its "
            f"{qu.health_check_interval_s:g} s health-check interval, found it expiring in {health.ttl_ms // 1000} s "
            f"(value {str(health.value)[:80]!r}): it outlives the worker that wrote it and proves nothing — "
            f"{qu.service_name} may be down",
            evidence=health.__dict__,
        )


def _queue_facts(runtime: RuntimeContract, q: pr.QueueState, now: datetime) -> str:
    qu = runtime.queue
    due = (f"{q.pending} due row(s) waiting since {_t(q.oldest_pending)} ({_age(now - q.oldest_pending)})"
           if q.pending and q.oldest_pending else "no due row")
    claimed = f"{q.claimed_recently} claimed and " if qu.claimed_at else ""
    return (f"{qu.table}: {due}, {claimed}{q.processed_recently} sent in the last {_age(qu.processing_window)}"
            + (f", {q.scheduled} scheduled for later" if q.scheduled else ""))


def _worker_service(railway: Railway) -> tuple[str, pr.RailwayScale | str] | None:
    """The worker's Railway service, read by the profile's ``railway_worker_service_id``
    with its token: (id, scale) — or (id, why it could not be read) —, None when the profile
    names no worker service or no token."""
    service_id = railway.service_id("worker")
    if not service_id or not railway.token:
        return None
    try:
        return service_id, railway.scale("worker")
    except pr.RailwayUnknownService:
        raise
    except Undecidable as exc:
        return str(service_id), exc.message


def _judge_queue_progress(request: pytest.FixtureRequest, runbook: Runbook, runtime: RuntimeContract) -> None:
    """Due rows older than the pick-up time with nothing claimed or sent in the processing
    window: no consumer is alive. Progress: alive. Neither due rows nor progress: the
    deployment leaves no evidence right now — passed, saying so (never a failure that a
    quiet, healthy night would repeat forever; never a skip, which would not certify)."""
    db: Database = request.getfixturevalue("db")
    now: datetime = request.getfixturevalue("now")
    request.getfixturevalue("names").require("queue")
    note = request.getfixturevalue("warn")
    qu = runtime.queue
    q = pr.queue_state(db, runbook, now)
    facts = _queue_facts(runtime, q, now)
    evidence: dict[str, object] = {"queue": q.__dict__}
    railway: Railway = request.getfixturevalue("railway")
    try:
        service = _worker_service(railway)
    except pr.RailwayUnknownService as exc:
        due = (f"{q.pending} due row(s) waiting since {_t(q.oldest_pending)}" if q.pending and q.oldest_pending
               else "no due row waiting")
        done = ("none claimed or sent" if not (q.claimed_recently or q.processed_recently) else
                f"{q.claimed_recently} claimed, {q.processed_recently} sent")
        raise violated(
            f"expected the worker service {qu.service_name} on Railway, found none: Railway does not know its "
            f"service id {railway.service_id('worker')} ({due}, {done} in "
            f"{_age(qu.processing_window)}): {qu.stalled_cause}",
            evidence={**evidence, "railway": exc.message},
        ) from None
    if service is not None:
        service_id, scale = service
        if isinstance(scale, str):
            note(f"the worker's Railway service {service_id} could not be read ({scale}): judged by the queue alone")
        else:
            evidence["railway"] = scale.__dict__
            if scale.replicas < 1:
                raise violated(
                    f"expected the worker service {scale.service_name or qu.service_name} to run at least 1 replica, "
                    f"Railway reports {scale.replicas} ({facts}): {qu.stalled_cause}", evidence=evidence)
    progress = q.claimed_recently or q.processed_recently
    if q.pending and q.oldest_pending and now - q.oldest_pending > qu.pickup and not progress:
        # Rows sent or claimed "in the future" were not counted as progress: named (JC-QUEUE-01 reports them).
        refused = [r for r in pr.refused_queue_rows(db, runbook, now) if r.column != qu.created_at]
        raise violated(
            f"expected a live worker to claim due rows within {_age(qu.pickup)}, found {facts}"
            f"{_refused_note([r.line() for r in refused], show=1)}: {qu.stalled_cause}",
            evidence={**evidence, "refused": [r.__dict__ for r in refused]},
        )
    if progress:
        return
    if q.pending:
        note(f"no worker liveness evidence yet ({facts}): the due rows are younger than the {_age(qu.pickup)} "
             "pick-up time")
        return
    note(f"the deployment offers no worker liveness evidence right now: {qu.service_name} writes no heartbeat, and "
         f"with nothing due it leaves no trace ({facts})")
