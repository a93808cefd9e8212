"""Runbook Scenario 3 and "Worker Services": the queue ``fila_mensagens`` and its worker.

The worker must drain the queue while Júlia is ``ativo`` — its liveness read from ARQ's key,
or from the queue's own progress when it writes none — and when she is ``pausado`` the
backlog is the expected consequence where the pause holds the queue, reported once (by the
pause check, checks/test_pause.py), not twice.

Every name (tables, columns, status words, keys, thresholds, the job table) comes from
runbook.toml's [runtime] section; every query is in fixtures/probes/runtime/; the fixtures
``runtime``, ``now`` and ``names`` are fixtures/connections.py's, the words of a message
plugins/contract/runtime_wording.py's. A table or column the dialect in force names but the
database lacks, while another known dialect's names are all there, is drift (plugins.drift):
the check says so instead of failing.

Evidence is judged before it is counted (issue 16): a row sent or claimed "in the future",
or sent before it was created, is not processing; a health-check key that never expires, or
expires far later than it is renewed, proves nothing is alive. Such evidence is left out of
the verdict and named by JC-QUEUE-01 (the queue's rows) or JC-QUEUE-02 (the key); beside
genuine evidence that decides the verdict it is a warning or a failure, as
``runtime.refused_evidence`` declares.
"""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from fixtures.connections import Database, SafeRedis
from fixtures.probes import drift as probes_drift
from fixtures.probes import runtime as pr
from fixtures.railway import Railway
from plugins.contract.runbook import Runbook
from plugins.contract.runtime import WORKER_PROGRESS, RuntimeContract
from plugins.contract.runtime_wording import (
    Warn, age as _age, at as _t, refused_note as _refused_note, report_refused as _report_refused,
)
from plugins.contract.verdict import Undecidable, violated
from plugins.invariants import invariant

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
