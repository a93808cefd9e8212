"""The runtime checks, each proven to fail on its incident — with real processes where the
incident has them (a second scheduler, a stopped scheduler, a stopped worker).

Waiting for cron is bounded: only the second-scheduler test waits for a firing (the next
minute boundary, at most two). "The scheduler was stopped N minutes ago" is injected by
stopping it and deleting the runs it made in the last N minutes: the history then reads
exactly as if it had stopped then, without waiting N minutes.

Impossible evidence (issue 16, points 2 and 3) is injected the way a skewed clock or a
misconfigured process leaves it: rows and heartbeats stamped tomorrow, a run that ended
before it started, heartbeat keys that never expire or outlive their period by hours.
"""

from __future__ import annotations

import re

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any, TypeVar

import psycopg
import pytest
import redis

from fixtures.stack.backends.native import NativeStack
from fixtures.stack.job_history import FILL_MARGIN
from fixtures.stack.refapp.history import WORKER_JOB
from fixtures.stack.refapp.worker import CYCLE_KEY
from plugins.contract.runtime import load
from tests.area_helpers import runbook_copy
from tests.conftest import LOCAL_ENV, LOCAL_REF, ROOT, run_suite, targets_text

RUNTIME = ("checks/test_scheduler.py", "checks/test_jobs.py", "checks/test_queue.py", "checks/test_pause.py")
NO_RAILWAY = ("--deselect", "checks/test_scheduler.py::test_scheduler_scale")
# JC-SCHED-05 judges the jobs the contract does not mark critical: none in the runbook's table.
RUNTIME_IDS = {"JC-SCHED-01", "JC-SCHED-02", "JC-SCHED-03", "JC-SCHED-05", "JC-JOBS-01", "JC-JOBS-02",
               "JC-QUEUE-01", "JC-QUEUE-02", "JC-PAUSE-01", "JC-PAUSE-02"}
PER_MINUTE = [j.name for j in load().jobs if j.cron == "* * * * *"]
CRON_JOBS = [j.name for j in load().jobs]
ARQ_KEY = load().queue.health_check_key
HEARTBEAT_PREFIX = load().scheduler.heartbeat_prefix

T = TypeVar("T")


def rows(stack: NativeStack, statement: str, params: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]:
    assert stack.info is not None
    with psycopg.connect(stack.info.database_url, autocommit=True) as conn:
        return conn.execute(statement, params).fetchall()  # type: ignore[arg-type]


def wait_for(what: str, probe: Callable[[], T | None], timeout_s: float, every_s: float = 0.5) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout_s:.0f} s waiting for {what}")
        time.sleep(every_s)


def evidence_of(run, inv: str) -> Any:  # type: ignore[no-untyped-def]
    """The evidence a failed invariant attached to its Allure result (everything its one-line
    message had no room for)."""
    assert run.run_dir is not None, run.output[-3000:]
    results = run.run_dir / "allure-results"
    [result] = [r for r in (json.loads(p.read_text()) for p in results.glob("*-result.json"))
                if {"name": "invariant", "value": inv} in r["labels"]]
    [source] = [a["source"] for a in result.get("attachments", []) if a["name"] == "evidence"]
    return json.loads((results / source).read_text())


def warnings_of(run) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    """The warnings of each invariant that has any (a check that passed, saying something)."""
    assert run.certificate is not None, run.output[-3000:]
    return {r["id"]: r["warnings"] for r in run.certificate["invariants"] if r.get("warnings")}


def runtime_suite(suite, *args: str, **kwargs: Any):  # type: ignore[no-untyped-def]
    return suite(*NO_RAILWAY, *args, paths=RUNTIME, **kwargs)


def test_healthy_stack_passes_runtime_checks(healthy: NativeStack, suite) -> None:  # type: ignore[no-untyped-def]
    run = suite(paths=RUNTIME)
    assert set(run.outcomes()) == RUNTIME_IDS | {"JC-SCHED-04"}, run.output[-3000:]
    # Locally the replica count comes from the stack's own platform stand-in: one scheduler.
    assert run.not_passed() == set(), run.output[-3000:]
    # Nothing refused on a healthy stack: no runtime check passes with a warning.
    assert warnings_of(run) == {}, warnings_of(run)


def test_reset_carries_the_job_history_up_to_now(healthy: NativeStack) -> None:
    """Between fault tests the database goes back to its seeded template; the runs the
    scheduler made since are filled in (it keeps running), so a reset never reads as a
    scheduler outage — and never as a second scheduler: one run per slot, around the reset
    too (the last minute before it is left to the live scheduler, so it may be empty)."""
    healthy.reset_database()
    reset_at = datetime.now(UTC)
    time.sleep(1)  # a run the live scheduler started at the reset lands in the new database
    (first,), = rows(healthy, "SELECT min(started_at) FROM job_executions WHERE job_name = %s", (PER_MINUTE[0],))
    since = max(first, reset_at - timedelta(minutes=15))
    slots = rows(healthy,
        "SELECT date_trunc('minute', started_at) AS slot, count(*) FROM job_executions"
        " WHERE job_name = %s AND started_at >= %s GROUP BY 1 ORDER BY 1", (PER_MINUTE[0], since))
    assert all(n == 1 for _, n in slots), slots
    filled = [slot for slot, _ in slots if slot <= reset_at - FILL_MARGIN - timedelta(minutes=1)]
    assert filled and filled[-1] >= reset_at - FILL_MARGIN - timedelta(minutes=2)
    assert all(b - a == timedelta(minutes=1) for a, b in zip(filled, filled[1:])), filled


def test_second_scheduler(healthy: NativeStack, suite) -> None:  # type: ignore[no-untyped-def]
    """Rule 4's incident: a second julia-scheduler process fires the same jobs."""
    since = datetime.now(UTC)
    extra = healthy.start_extra_scheduler()
    try:
        # Both fire at the next minute boundary: a per-minute job gets two runs in one slot.
        wait_for("a per-minute slot run by both schedulers", lambda: rows(
            healthy,
            "SELECT job_name FROM job_executions WHERE job_name = ANY (%s) AND started_at >= %s"
            " GROUP BY job_name, date_trunc('minute', started_at) HAVING count(DISTINCT scheduler_instance) > 1",
            (PER_MINUTE, since)), timeout_s=130)
        # Each live run is recorded whole: its end, its duration and the runbook's success word.
        ended = wait_for("the live runs to end", lambda: (found := rows(
            healthy, "SELECT scheduler_instance, status, started_at, ended_at, duracao_ms FROM job_executions"
            " WHERE job_name = ANY (%s) AND started_at >= %s", (PER_MINUTE, since))) and all(
                r[3] is not None for r in found) and found, timeout_s=30)
        run = suite(paths=RUNTIME)
    finally:
        extra.stop()
    assert {r[0] for r in ended} == {"julia-scheduler-1", "julia-scheduler-2"}, ended
    for _, status, started, end, duration_ms in ended:
        assert status == load().status.success[0] and end >= started, ended
        assert duration_ms == round((end - started).total_seconds() * 1000), ended
    # The local platform counts both scheduler processes, as Railway would count replicas.
    assert run.not_passed() == {"JC-SCHED-01", "JC-SCHED-02", "JC-SCHED-04"}, run.output[-3000:]
    assert "Railway reports 2" in run.message("JC-SCHED-04")
    dup = run.message("JC-SCHED-01")
    assert "processar-mensagens-agendadas @ " in dup and "2 runs by julia-scheduler-1, julia-scheduler-2" in dup
    beats = run.message("JC-SCHED-02")
    assert "found 2 heartbeats" in beats and "julia-scheduler-1" in beats and "julia-scheduler-2" in beats


@pytest.mark.smoke
def test_scheduler_stopped(healthy: NativeStack, suite, sql) -> None:  # type: ignore[no-untyped-def]
    """julia-scheduler down for 3 minutes: the per-minute jobs are late (grace 2 min); the
    15-minute and hourly jobs are not (graces 5 and 10 min exceed the outage)."""
    assert healthy.info is not None
    healthy.stop_service("scheduler")
    sql("DELETE FROM job_executions WHERE job_name = ANY (%s) AND started_at > now() - interval '3 minutes'",
        (CRON_JOBS,))
    run = runtime_suite(suite)
    assert run.not_passed() == {"JC-SCHED-02", "JC-SCHED-03"}, run.output[-3000:]
    assert run.message("JC-SCHED-02") == (
        f"expected exactly one live scheduler, found no heartbeat under '{HEARTBEAT_PREFIX}*' (each live "
        f"julia-scheduler renews its key within {load().scheduler.heartbeat_ttl_s} s): the scheduler is down")
    late = run.message("JC-SCHED-03")
    assert "found 2 late" in late
    assert "processar-mensagens-agendadas ('* * * * *' UTC): last success 20" in late
    assert "If Fails: Messages delay" in late
    assert "processar-campanhas-agendadas ('* * * * *' UTC): last success 20" in late
    assert "If Fails: Campaign delays" in late

    # Heartbeat keys no live scheduler renews: one without expiry (a hand-made key, an old
    # release's), one whose last beat is 10 minutes old though it still has a TTL.
    client = redis.Redis.from_url(healthy.info.redis_url)
    try:
        old = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
        client.set(f"{HEARTBEAT_PREFIX}julia-scheduler-8", json.dumps({"pid": 8, "beat": old}))
        client.set(f"{HEARTBEAT_PREFIX}julia-scheduler-9", json.dumps({"pid": 9, "beat": old}), ex=600)
    finally:
        client.close()
    run = suite(paths=("checks/test_scheduler.py::test_one_live_scheduler",))
    assert run.outcomes() == {"JC-SCHED-02": "failed"}, run.output[-3000:]
    beats = run.message("JC-SCHED-02")
    # "10 min ago" is floored: a slow start of the suite under load may make it 11.
    assert re.match(re.escape(f"expected exactly one live scheduler, found no live heartbeat under '{HEARTBEAT_PREFIX}*', "
                              f"only stale key(s): {HEARTBEAT_PREFIX}julia-scheduler-8 (no expiry); "
                              f"{HEARTBEAT_PREFIX}julia-scheduler-9 (last beat ") + r"1[01] min ago, expires in ", beats), beats
    assert "the scheduler is down" in beats


def test_dead_scheduler_behind_impossible_stamps(healthy: NativeStack, suite, sql) -> None:  # type: ignore[no-untyped-def]
    """Issue 16, point 2: julia-scheduler died 3 minutes ago, and what it left says otherwise —
    a run of one per-minute job stamped tomorrow (a clock a day ahead), a run of the other
    that ended an hour before it started, and a heartbeat whose beat is tomorrow. None of it
    is evidence: both jobs are late (JC-SCHED-03, naming each row: table, key, value) and no
    scheduler is alive (JC-SCHED-02, naming the key and its value)."""
    assert healthy.info is not None
    healthy.stop_service("scheduler")
    sql("DELETE FROM job_executions WHERE job_name = ANY (%s) AND started_at > now() - interval '3 minutes'",
        (CRON_JOBS,))
    (future,), = rows(healthy,
        "INSERT INTO job_executions (job_name, status, started_at, ended_at, duracao_ms, scheduler_instance)"
        " VALUES (%s, 'sucesso', now() + interval '1 day', now() + interval '1 day 1 second', 1000,"
        " 'julia-scheduler-1') RETURNING job_id", (PER_MINUTE[0],))
    (backwards,), = rows(healthy,
        "INSERT INTO job_executions (job_name, status, started_at, ended_at, duracao_ms, scheduler_instance)"
        " VALUES (%s, 'sucesso', now() - interval '30 seconds', now() - interval '1 hour', 0, 'julia-scheduler-1')"
        " RETURNING job_id", (PER_MINUTE[1],))
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    client = redis.Redis.from_url(healthy.info.redis_url)
    try:
        client.set(f"{HEARTBEAT_PREFIX}julia-scheduler-1", json.dumps({"pid": 1, "beat": tomorrow}), ex=20)
    finally:
        client.close()
    run = runtime_suite(suite)
    assert run.not_passed() == {"JC-SCHED-02", "JC-SCHED-03"}, run.output[-3000:]
    assert run.message("JC-SCHED-02") == (
        f"expected exactly one live scheduler, found no live heartbeat under '{HEARTBEAT_PREFIX}*', only stale "
        f"key(s): {HEARTBEAT_PREFIX}julia-scheduler-1 (beat {tomorrow} is 23 h in the future, beyond the 5 s clock "
        "skew): the scheduler is down (a live julia-scheduler renews its key within 15 s, with that TTL)")
    late = run.message("JC-SCHED-03")
    assert late.startswith("expected every job to succeed after its last due firing, found 2 late: "), late
    assert re.search(rf"{PER_MINUTE[0]} \('\* \* \* \* \*' UTC\): last success \S+ \S+ — not counted: "
                     rf"job_executions job_id {future}: started_at \S+ \S+ is 23 h in the future, due ", late), late
    # The message is one line of 400 characters; the evidence has every late job's refused rows.
    refused = {e["job"]: e["refused"] for e in evidence_of(run, "JC-SCHED-03") if "job" in e}
    [row] = refused[PER_MINUTE[1]]
    assert (row["table"], row["key"], row["column"], row["before"][0]) == (
        "job_executions", f"job_id {backwards}", "ended_at", "started_at"), row
    assert warnings_of(run) == {}


def test_liveness_that_cannot_go_stale(healthy: NativeStack, suite, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Issue 16, point 3: heartbeat keys that cannot go stale — one without expiry, one
    expiring in an hour though a scheduler renews its key every 5 s (runtime's
    heartbeat_expiry_ratio_max = 4 periods). Beside the live scheduler they prove nothing and
    are said to prove nothing: a warning, or a failure where the contract declares
    refused_evidence = "failure". With the scheduler stopped they never mask it: down."""
    assert healthy.info is not None
    client = redis.Redis.from_url(healthy.info.redis_url)
    fresh = json.dumps({"pid": 7, "beat": datetime.now(UTC).isoformat()})
    try:
        client.set(f"{HEARTBEAT_PREFIX}julia-scheduler-7", fresh)
        client.set(f"{HEARTBEAT_PREFIX}julia-scheduler-8", fresh, ex=3600)
    finally:
        client.close()
    keys = (rf"{re.escape(HEARTBEAT_PREFIX)}julia-scheduler-7 \(no expiry\); {re.escape(HEARTBEAT_PREFIX)}"
            r"julia-scheduler-8 \(expires in 3[56]\d\d s, more than 4 × its 5 s renewal period\)")
    one = ("checks/test_scheduler.py::test_one_live_scheduler",)
    run = suite(paths=one)
    assert run.outcomes() == {"JC-SCHED-02": "passed"}, run.output[-3000:]
    [said] = warnings_of(run)["JC-SCHED-02"]
    assert re.fullmatch(rf"2 refused as heartbeat key\(s\) under '{re.escape(HEARTBEAT_PREFIX)}\*' \(not counted; "
                        rf"the verdict stands on the rest\): {keys}", said), said

    strict = runbook_copy(tmp_path, ('refused_evidence = "warning"', 'refused_evidence = "failure"'))
    run = suite("--runbook", str(strict), paths=one)
    assert run.outcomes() == {"JC-SCHED-02": "failed"}, run.output[-3000:]
    assert re.fullmatch(rf"expected heartbeat key\(s\) under '{re.escape(HEARTBEAT_PREFIX)}\*' to be believable "
                        rf"evidence, found 2 that are not \(runtime.refused_evidence = 'failure'\): {keys}",
                        run.message("JC-SCHED-02")), run.message("JC-SCHED-02")

    healthy.stop_service("scheduler")
    run = suite(paths=one)
    assert run.outcomes() == {"JC-SCHED-02": "failed"}, run.output[-3000:]
    assert re.fullmatch(rf"expected exactly one live scheduler, found no live heartbeat under "
                        rf"'{re.escape(HEARTBEAT_PREFIX)}\*', only stale key\(s\): {keys}: the scheduler is down "
                        r"\(a live julia-scheduler renews its key within 15 s, with that TTL\)",
                        run.message("JC-SCHED-02")), run.message("JC-SCHED-02")


def test_pause_stamped_in_the_future(healthy: NativeStack, suite, sql) -> None:  # type: ignore[no-untyped-def]
    """Issue 16, point 2: a julia_status row stamped tomorrow would be "the newest row" for a
    day. It decides nothing: a pause stamped tomorrow leaves Júlia active (said in a
    warning, naming the row); a resume stamped tomorrow does not end today's pause."""
    (ahead,), = rows(healthy, "INSERT INTO julia_status (status, motivo, alterado_via, created_at) VALUES"
                     " ('pausado', 'Relógio adiantado', 'manual', now() + interval '1 day') RETURNING id")
    run = runtime_suite(suite)
    assert run.not_passed() == set(), run.output[-3000:]
    [said] = warnings_of(run)["JC-PAUSE-01"]
    assert re.fullmatch(rf"1 refused as julia_status decision\(s\) \(not counted; the verdict stands on the rest\): "
                        rf"julia_status id {ahead} \('pausado' by manual\): created_at \S+ \S+ is 23 h in the future",
                        said), said
    assert set(warnings_of(run)) == {"JC-PAUSE-01"}

    sql("DELETE FROM julia_status WHERE id = %s", (ahead,))
    sql("INSERT INTO julia_status (status, motivo, alterado_via) VALUES ('pausado', 'Emergência', 'manual')")
    (resume,), = rows(healthy, "INSERT INTO julia_status (status, motivo, alterado_via, created_at) VALUES"
                      " ('ativo', 'Retomado', 'manual', now() + interval '1 day') RETURNING id")
    run = runtime_suite(suite)
    assert run.not_passed() == {"JC-PAUSE-01", "JC-QUEUE-01"}, run.output[-3000:]
    assert run.outcomes()["JC-QUEUE-01"] == "skipped"  # paused: the backlog is the pause's
    pause = run.message("JC-PAUSE-01")
    assert re.fullmatch(r"expected Júlia ativo, found her paused: newest julia_status is 'pausado' since \S+ \S+ "
                        r"\(\d+ s ago\), motivo 'Emergência', alterado_via 'manual'; not counted \(impossible\): "
                        rf"julia_status id {resume} \('ativo' by manual\): created_at \S+ \S+ is 23 h in the future\. "
                        r"To resume: INSERT INTO julia_status \(status, motivo, alterado_via\) VALUES \('ativo', "
                        r"'Retomando operacao normal', 'manual'\);", pause), pause


def test_worker_stopped(healthy: NativeStack, suite, sql) -> None:  # type: ignore[no-untyped-def]
    """julia-worker down. First a young backlog (2 minutes, under the 5-minute age limit)
    with nothing processed for over 5 minutes: the worker stopped picking up. Then the same
    backlog past the age limit, and a health-check key left without expiry (not ARQ's own,
    which always has a TTL) that must not pass for a live worker."""
    assert healthy.info is not None
    healthy.stop_service("worker")
    # The last processing more than 5 minutes ago: processed rows' timestamps pushed back.
    sql("UPDATE fila_mensagens SET updated_at = now() - interval '7 minutes'"
        " WHERE processada AND updated_at > now() - interval '7 minutes'")
    sql("INSERT INTO fila_mensagens (cliente_id, conteudo, created_at, updated_at)"
        " SELECT id, 'Lembrete: plantão amanhã às 19h.', now() - interval '2 minutes', now() - interval '2 minutes'"
        " FROM clientes ORDER BY id LIMIT 3")
    run = runtime_suite(suite)
    assert run.not_passed() == {"JC-QUEUE-01", "JC-QUEUE-02"}, run.output[-3000:]
    young = run.message("JC-QUEUE-01")
    assert young.startswith("expected pending fila_mensagens rows to be picked up within 1 min, found 3 pending "
                            "since 20"), young
    assert re.search(r"\(\d+ min\) and nothing processed in the last 5 min: the worker is not processing$", young), young
    assert run.message("JC-QUEUE-02") == (
        f"expected ARQ's health-check key '{ARQ_KEY}' (renewed by every live worker), found none: julia-worker "
        "is down or its event loop is stuck")

    # Past the age limit; a key without expiry where ARQ's would be.
    sql("UPDATE fila_mensagens SET created_at = now() - interval '6 minutes' WHERE NOT processada")
    client = redis.Redis.from_url(healthy.info.redis_url)
    try:
        client.set(ARQ_KEY, "Nov-25 10:00:00 j_complete=12 j_failed=0 j_retried=0 j_ongoing=0 queued=0")
    finally:
        client.close()
    run = runtime_suite(suite)
    assert run.not_passed() == {"JC-QUEUE-01", "JC-QUEUE-02"}, run.output[-3000:]
    stale = run.message("JC-QUEUE-01")
    assert "older than 5 min while Júlia is active, found 3 (of 3 pending" in stale, stale
    assert stale.endswith("processed in the last 5 min: 0: the worker is not processing"), stale
    dead = run.message("JC-QUEUE-02")
    assert dead.startswith(f"expected ARQ's health-check key '{ARQ_KEY}' to expire unless renewed"), dead
    assert "found it without expiry (value 'Nov-25 10:00:00 j_complete=12" in dead
    assert dead.endswith("it is not a live worker's — julia-worker may be down"), dead

    # Issue 16: a row processed "tomorrow" (a skewed clock) is not the worker processing, and
    # a health-check key expiring in an hour — 720 × the worker's 5 s interval — outlives it.
    (future,), = rows(healthy, "INSERT INTO fila_mensagens (cliente_id, conteudo, processada, created_at, updated_at)"
                      " SELECT id, 'Sua escala foi atualizada.', true, now(), now() + interval '1 day' FROM clientes"
                      " ORDER BY id LIMIT 1 RETURNING id")
    client = redis.Redis.from_url(healthy.info.redis_url)
    try:
        client.set(ARQ_KEY, "Nov-25 10:00:00 j_complete=12 j_failed=0 j_retried=0 j_ongoing=0 queued=0", ex=3600)
    finally:
        client.close()
    run = runtime_suite(suite)
    assert run.not_passed() == {"JC-QUEUE-01", "JC-QUEUE-02"}, run.output[-3000:]
    stale = run.message("JC-QUEUE-01")
    assert re.search(r"processed in the last 5 min: 0; not counted \(impossible\): fila_mensagens id "
                     rf"{future}: updated_at \S+ \S+ is 23 h in the future: the worker is not processing$", stale), stale
    lasting = run.message("JC-QUEUE-02")
    assert re.fullmatch(re.escape(f"expected ARQ's health-check key '{ARQ_KEY}' to expire within 4 × its 5 s "
                                  "health-check interval, found it expiring in ") + r"3[56]\d\d"
                        + re.escape(" s (value 'Nov-25 10:00:00 j_complete=12 j_failed=0 j_retried=0 j_ongoing=0 "
                                    "queued=0'): it outlives the worker that wrote it and proves nothing — julia-worker "
                                    "may be down"), lasting), lasting


def test_job_stuck_for_31_minutes(healthy: NativeStack, suite, sql, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A worker job and a scheduler run left `executando`, and a weekly report left `running`
    (the English word runbook.toml maps as well) for 8 days, longer than any of the checks'
    windows: each named with its kill procedure, in the word it was found with; one running
    for 29 minutes is not stuck yet. With the threshold raised to 60 minutes in runbook.toml,
    the 31- and 33-minute runs pass and only the 8-day one is left."""
    worker_stuck, worker_young, week_stuck = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    sql("INSERT INTO job_executions (job_id, job_name, status, started_at, created_at, scheduler_instance)"
        " VALUES (%s, %s, 'executando', now() - interval '31 minutes', now() - interval '31 minutes', 'julia-worker-1'),"
        "        (%s, %s, 'executando', now() - interval '29 minutes', now() - interval '29 minutes', 'julia-worker-1'),"
        "        (%s, 'report-semanal', 'running', now() - interval '8 days', now() - interval '8 days', 'julia-scheduler-0')",
        (worker_stuck, WORKER_JOB, worker_young, WORKER_JOB, week_stuck))
    # The scheduler's own run of a slot 33 minutes ago never finished (one run, its slot's only).
    (sched_stuck,), = rows(healthy,
        "UPDATE job_executions SET status = 'executando', ended_at = NULL, duracao_ms = NULL WHERE job_id = ("
        " SELECT job_id FROM job_executions WHERE job_name = 'processar-campanhas-agendadas'"
        " AND started_at < now() - interval '33 minutes' ORDER BY started_at DESC LIMIT 1) RETURNING job_id")
    run = runtime_suite(suite)
    assert run.not_passed() == {"JC-JOBS-01"}, run.output[-3000:]
    msg = run.message("JC-JOBS-01")
    assert str(worker_young) not in msg
    # The oldest first; the message's kill statement covers two runs, the evidence all three.
    assert msg.startswith("expected no run executando/running over 30 min, found 3 — Kill Stuck Job: UPDATE "
                          "job_executions SET status = 'falha', ended_at = NOW(), erro = 'Killed manually due to "
                          f"timeout' WHERE job_id IN ('{week_stuck}', '{sched_stuck}') AND status IN ('executando', "
                          "'running'); (+1 more in the evidence) Runs: report-semanal (192 h"), msg

    # stuck_minutes = 60: the threshold is runbook.toml's.
    raised = runbook_copy(tmp_path, ("stuck_minutes = 30", "stuck_minutes = 60"))
    run = runtime_suite(suite, "--runbook", str(raised))
    assert run.not_passed() == {"JC-JOBS-01"}, run.output[-3000:]
    msg = run.message("JC-JOBS-01")
    assert msg.startswith("expected no run executando/running over 60 min, found 1 — Kill Stuck Job: UPDATE "
                          "job_executions SET status = 'falha', ended_at = NOW(), erro = 'Killed manually due to "
                          f"timeout' WHERE job_id = '{week_stuck}' AND status = 'running'; Runs: report-semanal "
                          "(192 h"), msg
    assert str(sched_stuck) not in msg and str(worker_stuck) not in msg


def test_burst_of_failures(healthy: NativeStack, suite, sql) -> None:  # type: ignore[no-untyped-def]
    """Chatwoot down for six hours: most campaign runs of that window failed (then recovered),
    recorded in both words runbook.toml maps to a failure — `falha`, then `error` from a
    release that writes English: one rate over both, and the newest error."""
    job = "processar-campanhas-agendadas"
    sql("UPDATE job_executions SET status = 'falha', erro = 'Chatwoot retornou HTTP 502'"
        " WHERE job_name = %s AND started_at BETWEEN now() - interval '6 hours' AND now() - interval '3 hours'", (job,))
    sql("UPDATE job_executions SET status = 'error', erro = 'Chatwoot: connection refused'"
        " WHERE job_name = %s AND started_at BETWEEN now() - interval '3 hours' AND now() - interval '10 minutes'", (job,))
    (failures, runs_before), = rows(healthy,
        "SELECT count(*) FILTER (WHERE status = ANY (%s)), count(*) FROM job_executions"
        " WHERE job_name = %s AND started_at >= now() - interval '7 days'", (list(load().status.failure), job))
    run = runtime_suite(suite)
    assert run.not_passed() == {"JC-JOBS-02"}, run.output[-3000:]
    msg = run.message("JC-JOBS-02")
    assert "at most 5% of its runs over the last 7 days" in msg
    found = re.search(r"found 1: processar-campanhas-agendadas (\d+)/(\d+) \((\d+\.\d)%\), "
                      r"last error: Chatwoot: connection refused$", msg)
    assert found, msg
    fails, runs, percent = int(found[1]), int(found[2]), found[3]
    # Both words counted; the live scheduler may have added a few (successful) runs since.
    assert fails == failures and runs_before <= runs <= runs_before + 5, (failures, runs_before, msg)
    assert f"{fails / runs:.1%}" == f"{percent}%" and fails / runs > 0.05


def _cycle(stack: NativeStack) -> dict[str, Any] | None:
    assert stack.info is not None
    raw = redis.Redis.from_url(stack.info.redis_url).get(CYCLE_KEY)
    return json.loads(raw) if raw else None


def test_julia_paused(healthy: NativeStack, suite, sql) -> None:  # type: ignore[no-untyped-def]
    """The runbook's Emergency Pause: the pause check fails with its reason; the queue
    backlog is expected (reported once, not twice); the worker resumes by itself."""
    sql("INSERT INTO julia_status (status, motivo, alterado_via)"
        " VALUES ('pausado', 'Emergência - pausado manualmente', 'manual')")
    paused_at = datetime.now(UTC)
    sql("INSERT INTO fila_mensagens (cliente_id, conteudo, created_at, updated_at)"
        " SELECT id, 'Nova vaga disponível na sua região.', now() - interval '6 minutes', now() - interval '6 minutes'"
        " FROM clientes ORDER BY id LIMIT 2")
    # The worker honours the pause: a full cycle after it, and the backlog is untouched.
    wait_for("a worker cycle that saw the pause", lambda: (c := _cycle(healthy)) and c["outcome"] == "paused"
             and datetime.fromisoformat(c["at"]) > paused_at, timeout_s=30)
    assert rows(healthy, "SELECT count(*) FROM fila_mensagens WHERE NOT processada") == [(2,)]

    run = runtime_suite(suite)
    assert run.not_passed() == {"JC-PAUSE-01", "JC-QUEUE-01"}, run.output[-3000:]
    assert run.outcomes()["JC-PAUSE-01"] == "failed"
    assert run.outcomes()["JC-QUEUE-01"] == "skipped"
    queue = run.message("JC-QUEUE-01")
    assert queue.startswith("paused: backlog expected") and "2 message(s) wait in fila_mensagens" in queue
    pause = run.message("JC-PAUSE-01")
    assert "newest julia_status is 'pausado' since" in pause and " ago), motivo 'Emergência - pausado manualmente'" in pause
    assert "alterado_via 'manual'" in pause
    assert ("To resume: INSERT INTO julia_status (status, motivo, alterado_via) VALUES ('ativo', "
            "'Retomando operacao normal', 'manual');") in pause

    # Resumed, the worker drains the backlog and records the batch.
    sql("INSERT INTO julia_status (status, motivo, alterado_via) VALUES ('ativo', 'Retomando operacao', 'manual')")
    wait_for("the backlog drained", lambda: rows(
        healthy, "SELECT count(*) = 0 FROM fila_mensagens WHERE NOT processada")[0][0], timeout_s=30)
    assert rows(healthy, "SELECT count(*) FROM job_executions WHERE job_name = %s AND started_at > %s"
                " AND status = 'sucesso'", (WORKER_JOB, paused_at)) == [(1,)]


# --- Railway: the scheduler's replica count through a loopback server speaking its API ----------

TOKEN = "rw-test-token-5f0c2b7e9a1d4e3c"


class _RailwayStub(BaseHTTPRequestHandler):
    answer: dict[str, Any] = {}
    requests: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"headers": dict(self.headers), "body": body, "path": self.path})
        payload = json.dumps(type(self).answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def railway(tmp_path: Path) -> Iterator[tuple[type[_RailwayStub], Path]]:
    stub = type("Stub", (_RailwayStub,), {"answer": {}, "requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), stub)
    Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/graphql/v2"
    targets = targets_text().replace(
        'redis_url_env = "JC_LOCAL_REDIS_URL"\n',
        'redis_url_env = "JC_LOCAL_REDIS_URL"\nrailway_token_env = "JC_TEST_RAILWAY_TOKEN"\n'
        f'railway_api_url = "{url}"\nrailway_environment_id = "env-prod-1"\n'
        'railway_scheduler_service_id = "svc-scheduler-1"\n', 1)
    path = tmp_path / "targets.toml"
    path.write_text(targets)
    try:
        yield stub, path
    finally:
        server.shutdown()
        server.server_close()


def _instance(replicas: int, regions: dict[str, int] | None = None) -> dict[str, Any]:
    meta = {"serviceManifest": {"deploy": {"multiRegionConfig": {
        r: {"numReplicas": n} for r, n in regions.items()}}}} if regions else {}
    return {"data": {"serviceInstance": {"serviceName": "julia-scheduler", "numReplicas": replicas,
                                         "latestDeployment": {"status": "SUCCESS", "meta": meta}}}}


@pytest.mark.parametrize(("answer", "outcome", "says"), [
    (_instance(1), "passed", ""),
    (_instance(2), "failed", "expected julia-scheduler to run exactly 1 replica (rule 4: NO autoscale), Railway reports 2"),
    (_instance(1, {"us-west2": 1, "europe-west4-drams3a": 1}), "failed",
     "Railway reports 2 (us-west2: 1, europe-west4-drams3a: 1)"),
    ({"errors": [{"message": "Not Authorized"}], "data": None}, "error", "Not Authorized"),
], ids=["one-replica", "two-replicas", "two-regions", "api-error"])
def test_scheduler_scale_via_railway_api(railway, suite, answer: dict[str, Any], outcome: str, says: str) -> None:  # type: ignore[no-untyped-def]
    stub, targets = railway
    stub.answer = answer
    run = suite("--target-file", str(targets), paths=("checks/test_scheduler.py::test_scheduler_scale",),
                env={"JC_TEST_RAILWAY_TOKEN": TOKEN})
    assert run.outcomes() == {"JC-SCHED-04": outcome}, run.output[-3000:]
    assert says in run.message("JC-SCHED-04")
    # One read-only query, authenticated, for the configured service and environment.
    (request,) = stub.requests
    assert request["body"]["query"].lstrip().startswith("query ") and "mutation" not in request["body"]["query"]
    assert request["body"]["variables"] == {"serviceId": "svc-scheduler-1", "environmentId": "env-prod-1"}
    assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
    # The token is a secret: it appears nowhere the run writes.
    assert TOKEN not in run.output and TOKEN not in json.dumps(run.certificate)


@pytest.mark.parametrize(("profile", "env", "why"), [
    ("", {}, "no railway_token_env in the profile"),
    ('railway_token_env = "JC_TEST_RAILWAY_TOKEN"\n', {"JC_TEST_RAILWAY_TOKEN": ""},
     "its variable JC_TEST_RAILWAY_TOKEN is empty or unset"),
], ids=["no-token-variable", "empty-token"])
def test_scheduler_scale_skipped_without_a_token(stack: NativeStack, tmp_path: Path, profile: str,
                                                 env: dict[str, str], why: str) -> None:
    """Off the local stack, with no token to read Railway with, the replica count is not
    judged: skipped, saying why (never passed, never guessed)."""
    info = stack.info
    assert info is not None
    targets = tmp_path / "targets.toml"
    targets.write_text(
        "[targets.remote]\nlocal = false\n"
        f'api_url = "{info.api_url}"\nenvironment = "{LOCAL_ENV}"\nproject_ref = "{LOCAL_REF}"\n'
        'database_url_env = "JC_REMOTE_DB"\nredis_url_env = "JC_REMOTE_REDIS"\n' + profile)
    run = run_suite("--target-file", str(targets), "--target", "remote",
                    paths=("checks/test_scheduler.py::test_scheduler_scale",), reports=tmp_path / "reports",
                    env={"JC_REMOTE_DB": info.database_url, "JC_REMOTE_REDIS": info.redis_url, **env})
    assert run.outcomes() == {"JC-SCHED-04": "skipped"}, run.output[-3000:]
    assert run.message("JC-SCHED-04") == (
        f"no Railway API token for target remote ({why}): the scheduler's replica count cannot be read")
