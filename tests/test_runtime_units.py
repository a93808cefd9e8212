"""Units of the runtime contract (runbook.toml [runtime]), its cron arithmetic, the messages'
statements and the Railway probe — no stack needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures.probes import runtime as pr
from fixtures.probes.runtime.scheduler import _glob_escape
from fixtures.probes.runtime.statements import kill_statement, resume_statement
from fixtures.stack.refapp import history
from plugins.contract.runbook import load_runbook
from plugins.contract.runtime import Job, load
from plugins.contract.toml_schema import ConfigError
from plugins.contract.verdict import Undecidable

ROOT = Path(__file__).resolve().parents[1]
RUNBOOK = (ROOT / "runbook.toml").read_text()


def _job(cron: str, tz: str = "UTC", grace_min: float = 2) -> Job:
    return Job(name="j", cron=cron, timezone=tz, grace=timedelta(minutes=grace_min), if_fails="x")


# --- the contract -------------------------------------------------------------------------


def test_shipped_runtime_section() -> None:
    rt = load_runbook(ROOT / "runbook.toml").section("runtime")
    assert len(rt.jobs) == 11 and rt.jobs[0].name == "processar-mensagens-agendadas"
    assert rt.status.success[0] == "sucesso" and rt.status.failure[0] == "falha" and rt.status.running[0] == "executando"
    assert rt.stuck_after == timedelta(minutes=30) and rt.queue.max_age == timedelta(minutes=5)
    assert rt.failure_window == timedelta(days=7) and rt.pause.paused == ("pausado",)
    assert load() == rt  # the refapp's and the seed's loader read the same table


@pytest.mark.parametrize(("edit", "expect"), [
    (lambda s: s.replace('cron = "*/15 * * * *"', 'cron = "*/15 * * *"'), "runtime.jobs[2].cron: '*/15 * * *' is not a 5-field cron"),
    (lambda s: s.replace('cron = "0 2 * * *"', 'cron = "0 25 * * *"'), "runtime.jobs[3].cron"),
    (lambda s: s.replace('timezone = "America/Sao_Paulo"', 'timezone = "America/Sao_Polo"'), "runtime.jobs[10].timezone: unknown time zone"),
    (lambda s: s.replace('name = "relatorio-diario"', 'name = "verificar-alertas"'), "runtime.jobs[5].name: job 'verificar-alertas' is listed twice"),
    (lambda s: s.replace('running = ["executando", "running"]', 'running = ["executando", "error"]'), "runtime.status.running: 'error' is also listed under failure"),
    (lambda s: s.replace("failure_rate_max = 0.05", "failure_rate_max = 5"), "runtime.failure_rate_max: must be a ratio"),
    (lambda s: s.replace("stuck_minutes = 30", "stuck_minutes = 0"), "runtime.stuck_minutes: must be greater than 0"),
    (lambda s: s.replace("grace_minutes = 2\n", "grace_minutes = 2\ngrace = 3\n", 1), "runtime.jobs[0].grace: unknown key"),
    (lambda s: s.replace('[runtime.queue]\ntable = "fila_mensagens"', '[runtime.queue]\ntable = ""'),
     "runtime.queue.table: must not be empty"),
    (lambda s: s.replace("heartbeat_ttl_seconds = 15", 'heartbeat_ttl_seconds = "15"'), "runtime.scheduler.heartbeat_ttl_seconds: must be an integer"),
    (lambda s: s.replace('if_fails = "Alerts late"\n', ""), "runtime.jobs[2].if_fails: missing required key"),
    (lambda s: s.replace('liveness = "heartbeat_key"\nbeat_job = ""', 'liveness = "job_runs"\nbeat_job = "heartbeat"'),
     "runtime.scheduler.beat_job: 'heartbeat' is not a job of runtime.jobs"),
    (lambda s: s.replace('liveness = "heartbeat_key"', 'liveness = "redis"'),
     "runtime.scheduler.liveness: must be one of 'heartbeat_key', 'job_runs', got 'redis'"),
    (lambda s: s.replace('worker_liveness = "arq_key"', 'worker_liveness = "arq"'),
     "runtime.queue.worker_liveness: must be one of 'arq_key', 'queue_progress', got 'arq'"),
    (lambda s: s.replace('health_check_key = "arq:queue:health-check"', 'health_check_key = ""'),
     "runtime.queue.health_check_key: must not be empty (worker_liveness = 'arq_key')"),
    (lambda s: s.replace("critical = true", 'critical = "yes"', 1), "runtime.jobs[0].critical: must be"),
    (lambda s: s.replace("heartbeat_expiry_ratio_max = 4", "heartbeat_expiry_ratio_max = 1"),
     "runtime.heartbeat_expiry_ratio_max: must be greater than 1"),
    (lambda s: s.replace('refused_evidence = "warning"', 'refused_evidence = "warn"'),
     "runtime.refused_evidence: must be one of 'warning', 'failure', got 'warn'"),
    (lambda s: s.replace("heartbeat_ttl_seconds = 15", "heartbeat_ttl_seconds = 60"),
     "runtime.scheduler.heartbeat_ttl_seconds: must lie between the renewal period (heartbeat_period_seconds = 5) "
     "and runtime.heartbeat_expiry_ratio_max = 4 periods (20 s), got 60"),
    (lambda s: s.replace("heartbeat_ttl_seconds = 15", "heartbeat_ttl_seconds = 4"),
     "runtime.scheduler.heartbeat_ttl_seconds: must lie between"),
    (lambda s: s.replace("health_check_interval_seconds = 5", "health_check_interval_seconds = 0"),
     "runtime.queue.health_check_interval_seconds: must be greater than 0"),
    (lambda s: s.replace('liveness = "heartbeat_key"\nbeat_job = ""',
                         'liveness = "job_runs"\nbeat_job = "processar-mensagens-agendadas"').replace(
                             "grace_minutes = 2\n", "grace_minutes = 60\n", 1),
     "runtime.jobs[0].grace_minutes: the beat job 'processar-mensagens-agendadas' ('* * * * *', every 1 min) may "
     "be at most runtime.heartbeat_expiry_ratio_max = 4 periods late, got 60 min: its runs could not go stale"),
], ids=["cron-fields", "cron-range", "timezone", "duplicate-job", "word-twice", "rate", "non-positive",
        "unknown-key", "empty-name", "wrong-type", "missing-key", "beat-job", "liveness", "worker-liveness",
        "no-arq-key", "critical-type", "expiry-ratio", "refused-word", "ttl-outlives", "ttl-dies-between-beats",
        "arq-interval", "beat-grace"])
def test_bad_runtime_section(tmp_path: Path, edit, expect: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "runbook.toml"
    text = edit(RUNBOOK)
    assert text != RUNBOOK
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_runbook(path)
    assert str(err.value).startswith(f"{path}: ") and expect in str(err.value)


def test_bad_runtime_section_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "runbook.toml"
    path.write_text(RUNBOOK.replace('timezone = "America/Sao_Paulo"', 'timezone = "Mars/Olympus"'))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "checks/test_scheduler.py", "-q", "-p", "no:cacheprovider",
         "--reports-dir", str(tmp_path / "reports"), "--runbook", str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert f"{path}: runtime.jobs[10].timezone: unknown time zone 'Mars/Olympus'" in proc.stderr
    assert not (tmp_path / "reports").exists()


# --- cron arithmetic ----------------------------------------------------------------------


def test_fires_are_computed_in_the_jobs_time_zone() -> None:
    job = _job("0 10,13,17,20 * * *", "America/Sao_Paulo", 30)  # São Paulo is UTC-3 all year
    start = datetime(2026, 11, 25, 0, 0, tzinfo=UTC)
    assert [f.hour for f in job.fires_between(start, start + timedelta(days=1))] == [13, 16, 20, 23]
    now = datetime(2026, 11, 25, 16, 20, tzinfo=UTC)
    assert job.due_fire(now) == datetime(2026, 11, 25, 13, 0, tzinfo=UTC)  # 16:00 is still in its grace
    assert job.due_fire(now + timedelta(minutes=10)) == datetime(2026, 11, 25, 16, 0, tzinfo=UTC)


def test_a_fire_is_its_own_previous_fire() -> None:
    job = _job("*/15 * * * *")
    fire = datetime(2026, 11, 25, 14, 15, tzinfo=UTC)
    assert job.previous_fire(fire) == fire
    assert job.previous_fire(fire - timedelta(microseconds=1)) == datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
    assert job.next_fire(fire) == datetime(2026, 11, 25, 14, 30, tzinfo=UTC)


@pytest.mark.parametrize(("cron", "per_day"), [
    ("* * * * *", 1440), ("*/15 * * * *", 96), ("0 * * * *", 24), ("0 2 * * *", 1),
    ("0 10,13,17,20 * * *", 4), ("0 9 * * 1", 1 / 7), ("0 2 * * 0", 1 / 7), ("0 2 * * 7", 1 / 7),
])
def test_runs_per_day(cron: str, per_day: float) -> None:
    assert _job(cron).runs_per_day() == pytest.approx(per_day)


_minutes = st.one_of(st.just("*"), st.just("*/5"), st.lists(st.integers(0, 59), min_size=1, max_size=3, unique=True)
                     .map(lambda v: ",".join(map(str, sorted(v)))))
_hours = st.one_of(st.just("*"), st.lists(st.integers(0, 23), min_size=1, max_size=3, unique=True)
                   .map(lambda v: ",".join(map(str, sorted(v)))))
_dows = st.one_of(st.just("*"), st.lists(st.integers(0, 6), min_size=1, max_size=3, unique=True)
                  .map(lambda v: ",".join(map(str, sorted(v)))))
_crons = st.builds(lambda m, h, d: f"{m} {h} * * {d}", _minutes, _hours, _dows)
_zones = st.sampled_from(["UTC", "America/Sao_Paulo", "Europe/Lisbon", "America/New_York"])
_moments = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC))


@settings(max_examples=60, deadline=None)
@given(cron=_crons, tz=_zones, now=_moments, grace=st.integers(1, 120))
def test_cron_slots_property(cron: str, tz: str, now: datetime, grace: int) -> None:
    """A moment belongs to exactly one slot: [previous fire, next fire); the due firing is
    the last one whose grace has run out; fires listed in a window are fires."""
    job = _job(cron, tz, grace)
    prev = job.previous_fire(now)
    assert prev <= now < job.next_fire(prev)
    assert job.previous_fire(prev) == prev
    due = job.due_fire(now)
    assert due <= now - job.grace < job.next_fire(due)
    fires = job.fires_between(now - timedelta(days=2), now)
    assert fires == sorted(set(fires)) and all(now - timedelta(days=2) <= f <= now for f in fires)
    assert all(job.previous_fire(f) == f for f in fires[:5])
    if fires:
        assert fires[-1] == prev


@settings(max_examples=40, deadline=None)
@given(cron=_crons)
def test_runs_per_day_matches_four_weeks_of_firings(cron: str) -> None:
    """Over 28 days every weekday occurs 4 times: the estimate is then exact."""
    job = _job(cron)
    if job.runs_per_day() * 28 > 3000:
        return  # the every-minute kind is counted by the parametrized cases; iterating is slow
    start = datetime(2026, 3, 2, tzinfo=UTC)
    fires = job.fires_between(start, start + timedelta(days=28) - timedelta(microseconds=1))
    assert job.runs_per_day() == pytest.approx(len(fires) / 28.0)


# --- what the messages tell the operator to run -------------------------------------------


def _runtime_with(schema: str, **executions: str):  # type: ignore[no-untyped-def]
    rb = load_runbook(ROOT / "runbook.toml")
    rt = rb.section("runtime")
    from dataclasses import replace

    return replace(rb, schema=schema), replace(rt, executions=replace(rt.executions, **executions))


def test_kill_statement_is_the_runbooks_in_the_deployments_names() -> None:
    rb, rt = _runtime_with("public")
    run = pr.StuckRun("relatorio-diario", "0b1c", "executando", datetime.now(UTC), "s1", 1900)
    assert kill_statement(rt, rb, [run]) == (
        "UPDATE job_executions SET status = 'falha', ended_at = NOW(), erro = 'Killed manually due to timeout' "
        "WHERE job_id = '0b1c' AND status = 'executando';")
    rb, rt = _runtime_with("ops", table="JobRuns", status="state")
    other = pr.StuckRun("x", "9f'9", "running", datetime.now(UTC), None, 1900)
    assert kill_statement(rt, rb, [run, other]) == (
        "UPDATE ops.\"JobRuns\" SET state = 'falha', ended_at = NOW(), erro = 'Killed manually due to timeout' "
        "WHERE job_id IN ('0b1c', '9f''9') AND state IN ('executando', 'running');")


def test_resume_statement_is_the_runbooks() -> None:
    rb, rt = _runtime_with("public")
    assert resume_statement(rt, rb) == (
        "INSERT INTO julia_status (status, motivo, alterado_via) VALUES ('ativo', 'Retomando operacao normal', 'manual');")


def test_history_rows_use_the_first_words() -> None:
    rt = load()
    started = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
    run_id, job, status, at, instance = history.start_params(rt, "verificar-alertas", started, "julia-scheduler-1")
    assert (job, status, at, instance) == ("verificar-alertas", "executando", started, "julia-scheduler-1")
    assert history.finish_params(rt, run_id, started, started + timedelta(milliseconds=1234), None) == (
        "sucesso", started + timedelta(milliseconds=1234), 1234, None, run_id)
    failed = history.finish_params(rt, run_id, started, started, "x" * 900)
    assert failed[0] == "falha" and len(failed[3]) == history.ERROR_CHARS


def test_heartbeat_prefix_is_matched_literally() -> None:
    assert _glob_escape("julia:sched[1]*?:") == "julia:sched\\[1\\]\\*\\?:"


# --- Railway -----------------------------------------------------------------------------


class _Stub(BaseHTTPRequestHandler):
    status = 200
    body: Any = {}
    seen: list[dict[str, str]] = []

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen.append(dict(self.headers))
        payload = self.body.encode() if isinstance(self.body, str) else json.dumps(self.body).encode()
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def stub() -> Iterator[tuple[type[_Stub], str]]:
    handler = type("S", (_Stub,), {"seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    Thread(target=server.serve_forever, daemon=True).start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}/graphql/v2"
    server.shutdown()
    server.server_close()


def _scale(url: str, kind: str = "account") -> pr.RailwayScale:
    return pr.railway_scale(url=url, token="tok-123456", token_kind=kind, service_id="s", environment_id="e",
                            timeout_s=2)


def test_railway_project_token_header(stub) -> None:  # type: ignore[no-untyped-def]
    handler, url = stub
    handler.body = {"data": {"serviceInstance": {"serviceName": "julia-scheduler", "numReplicas": 1,
                                                 "latestDeployment": {"status": "SUCCESS", "meta": json.dumps(
                                                     {"serviceManifest": {"deploy": {"multiRegionConfig": {
                                                         "us-west2": {"numReplicas": 3}}}}})}}}}
    scale = _scale(url, "project")
    assert scale.replicas == 3 and scale.by_region == {"us-west2": 3}  # the manifest wins over numReplicas
    assert handler.seen[0]["Project-Access-Token"] == "tok-123456" and "Authorization" not in handler.seen[0]


@pytest.mark.parametrize(("status", "body", "says"), [
    (500, "oops", "answered HTTP 500"),
    (200, "<html>", "answered non-JSON"),
    (200, {"errors": [{"message": "Problem processing request"}]}, "Problem processing request"),
    (200, {"data": {"serviceInstance": None}}, "no serviceInstance for service s in environment e"),
    (200, {"data": {"serviceInstance": {"serviceName": "x"}}}, "carries no replica count"),
], ids=["http-500", "html", "graphql-error", "unknown-service", "no-count"])
def test_railway_answers_that_cannot_decide(stub, status: int, body: Any, says: str) -> None:  # type: ignore[no-untyped-def]
    handler, url = stub
    handler.status, handler.body = status, body
    with pytest.raises(Undecidable, match=says):
        _scale(url)


def test_railway_unknown_token_kind() -> None:
    with pytest.raises(Undecidable, match="railway_token_kind 'oauth'"):
        _scale("http://127.0.0.1:9/", "oauth")


# --- the reference app's runtime modes: bad configuration is one line, exit code 2 --------


@pytest.mark.parametrize(("env", "says"), [
    ({"RUN_MODE": "worker", "WORKER_POLL_SECONDS": "7"}, "WORKER_POLL_SECONDS=7 must divide 60"),
    ({"RUN_MODE": "scheduler", "JC_RUNBOOK": "/nonexistent/runbook.toml"}, "cannot read runbook /nonexistent/runbook.toml"),
], ids=["worker-poll", "scheduler-runbook"])
def test_runtime_modes_reject_bad_configuration(env: dict[str, str], says: str) -> None:
    base = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "DATABASE_URL": "postgresql://u@127.0.0.1:1/x",
            "REDIS_URL": "redis://127.0.0.1:1/0", "APP_ENV": "local", "SUPABASE_PROJECT_REF": "ref"}
    proc = subprocess.run([sys.executable, "-m", "fixtures.stack.refapp"], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert says in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


# --- cron-slot duplicate detection, against a real database -------------------------------

_PROP_NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@settings(max_examples=25, deadline=None)
@given(cron=_crons, tz=_zones, offsets=st.lists(st.integers(0, 2 * 24 * 3600 - 1), max_size=12),
       repeat=st.lists(st.integers(0, 11), max_size=4), at_fire=st.lists(st.integers(0, 60), max_size=3))
def test_duplicate_slots_match_an_oracle(stack, cron: str, tz: str, offsets: list[int],  # type: ignore[no-untyped-def]
                                         repeat: list[int], at_fire: list[int]) -> None:
    """Property: the one SQL query behind JC-SCHED-01 finds exactly the cron slots that hold
    more than one run of their job — the slot of a run being the latest firing at or before
    it — as a plain Python count over the same runs says (runs before the window's first
    firing belong to no slot in the window)."""
    import uuid

    import psycopg
    from psycopg import sql as pgsql

    from fixtures.clients import Database
    from plugins.contract.redaction import Redactor

    rb = load_runbook(ROOT / "runbook.toml")
    ex = pr.contract_of(rb).executions
    job = Job(name=f"prop-{uuid.uuid4().hex[:10]}", cron=cron, timezone=tz, grace=timedelta(minutes=2), if_fails="x")
    start = _PROP_NOW - timedelta(days=2)
    runs = [start + timedelta(seconds=s) for s in offsets]
    runs += [runs[i] + timedelta(seconds=1) for i in repeat if i < len(runs)]  # near-duplicates
    fires = job.fires_between(start, _PROP_NOW)
    end = job.next_fire(_PROP_NOW)
    runs += [fires[i] for i in at_fire if i < len(fires)]  # a run exactly on a firing opens its slot

    expected: dict[datetime, int] = {}
    for t in runs:
        slot = max((f for f in fires if f <= t), default=None)
        if slot is not None:
            expected[slot] = expected.get(slot, 0) + 1
    expected = {slot: n for slot, n in expected.items() if n > 1}

    table = pgsql.Identifier(rb.schema, ex.table)
    with psycopg.connect(stack.info.database_url, autocommit=True) as conn:
        with conn.cursor() as cur:
            cur.executemany(pgsql.SQL("INSERT INTO {} ({}, {}, {}) VALUES (%s, %s, 'prop')").format(
                table, pgsql.Identifier(ex.job), pgsql.Identifier(ex.started_at), pgsql.Identifier(ex.instance)),
                [(job.name, t) for t in runs])
        try:
            db = Database(stack.info.database_url, rb.db_session, Redactor(), read_only=True)
            found = pr.duplicate_slots(db, rb, {job.name: fires}, {job.name: end})
            db.close()
        finally:
            conn.execute(pgsql.SQL("DELETE FROM {} WHERE {} = %s").format(table, pgsql.Identifier(ex.job)),
                         (job.name,))
    assert {d.slot: d.runs for d in found} == expected
    assert all(d.job == job.name and d.instances == ("prop",) and len(d.run_ids) == d.runs for d in found)


# --- the reference scheduler's job table ----------------------------------------------------


def test_scheduler_registers_the_runbooks_jobs() -> None:
    """APScheduler gets runbook.toml's job table: one job per row, by its name, firing when
    the checks' own cron arithmetic says it does — in the job's time zone (the period
    reports in São Paulo), across a day, a week and a daylight-saving change elsewhere."""
    from fixtures.stack.refapp.scheduler import build_scheduler

    rt = load()
    scheduler = build_scheduler(lambda job: None, rt)  # type: ignore[arg-type]
    registered = {j.id: j for j in scheduler.get_jobs()}
    assert sorted(registered) == sorted(job.name for job in rt.jobs)
    assert any(job.timezone == "America/Sao_Paulo" for job in rt.jobs)
    for job in rt.jobs:
        entry = registered[job.name]
        assert entry.args == (job,) and str(entry.trigger.timezone) == job.timezone
        for start in (datetime(2026, 11, 25, 14, 7, 30, tzinfo=UTC), datetime(2026, 11, 29, 23, 59, 59, tzinfo=UTC),
                      datetime(2026, 3, 8, 6, 30, tzinfo=UTC)):
            moment = start
            for _ in range(4):
                # APScheduler's next fire at or after a moment; the contract's strictly after.
                fire = entry.trigger.get_next_fire_time(None, moment + timedelta(microseconds=1))
                assert fire == job.next_fire(moment), (job.name, moment)
                moment = fire


# --- the seed's volumes -------------------------------------------------------------------


def test_seed_scales_the_runbooks_volumes(stack) -> None:  # type: ignore[no-untyped-def]
    """seed(scale=2) writes twice the runbook's per-day volumes ("High-Volume Tables") —
    job_executions included — while the scheduler's runs stay those of the cron table."""
    import secrets

    import psycopg

    from fixtures.stack import seed
    from fixtures.stack.database import apply_migrations, replace_db
    from fixtures.stack.refapp.history import WORKER_JOB

    name = f"julia_seedscale_{secrets.token_hex(3)}"
    url = replace_db(stack.info.database_url, name)
    maintenance = load_runbook(ROOT / "runbook.toml").section("maintenance")
    per_day = {t.table: (t.rows_per_day, t.time_column) for t in maintenance.high_volume_tables if t.rows_per_day}
    now = datetime(2026, 11, 25, 14, 7, 30, tzinfo=UTC)
    since = now - timedelta(days=1)
    counted: dict[float, tuple[dict[str, int], dict[str, int]]] = {}
    with psycopg.connect(stack.info.admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        apply_migrations(url)
        for scale in (1.0, 2.0):
            seed.seed(url, environment="local", project_ref="scale", scale=scale, days=1, now=now)
            with psycopg.connect(url) as conn:
                volumes = {table: conn.execute(f"SELECT count(*) FROM {table} WHERE {column} >= %s",  # type: ignore[arg-type]
                                               (since,)).fetchone()[0] for table, (_, column) in per_day.items()}
                runs = dict(conn.execute("SELECT job_name, count(*) FROM job_executions WHERE job_name <> %s"
                                         " GROUP BY job_name", (WORKER_JOB,)).fetchall())
            counted[scale] = volumes, runs
    finally:
        with psycopg.connect(stack.info.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    for scale, (volumes, _) in counted.items():
        for table, (rows_per_day, _) in per_day.items():
            assert volumes[table] == pytest.approx(scale * rows_per_day, rel=0.01), (scale, table, volumes)
    cron_runs = counted[1.0][1]
    assert counted[2.0][1] == cron_runs and set(cron_runs) == {job.name for job in load().jobs}
    assert cron_runs["processar-mensagens-agendadas"] == 1440  # a day of minutes


# The reference scheduler runs the contract's jobs, in the contract's zones. Zones with DST
# are left out here: APScheduler and croniter resolve a firing inside a DST gap or fold
# differently, and neither is what this property is about.
_contract_zones = st.sampled_from(sorted({job.timezone for job in load().jobs} | {"UTC"}))


@settings(max_examples=60, deadline=None)
@given(cron=_crons, tz=_contract_zones, now=_moments)
def test_scheduler_trigger_fires_on_the_contracts_cron(cron: str, tz: str, now: datetime) -> None:
    """Property: for any cron of the shape the table uses (day-of-week lists with cron's own
    numbering included), the reference scheduler's trigger fires exactly when the checks'
    cron arithmetic says."""
    from fixtures.stack.refapp.scheduler import cron_trigger

    job = _job(cron, tz)
    trigger = cron_trigger(job)
    moment = now
    for _ in range(3):
        fire = trigger.get_next_fire_time(None, moment + timedelta(microseconds=1))
        assert fire == job.next_fire(moment), (cron, tz, moment)
        moment = fire


@pytest.mark.parametrize("cron", ["0 9 * * 0-6", "0 9 * * */1", "0 9 * * 0,1,2,3,4,5,6,7"])
def test_scheduler_trigger_every_day_of_the_week(cron: str) -> None:
    """A day-of-week field that covers the whole week is every day (croniter says '*')."""
    from fixtures.stack.refapp.scheduler import cron_trigger

    trigger = cron_trigger(_job(cron))
    start = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    fires = [start := trigger.get_next_fire_time(None, start + timedelta(microseconds=1)) for _ in range(7)]
    assert [f.date() for f in fires] == [(start - timedelta(days=6 - i)).date() for i in range(7)]


def test_scheduler_trigger_refuses_what_it_cannot_honour() -> None:
    """APScheduler cannot say "the second Monday" nor cron's "day of month OR day of week":
    the reference scheduler refuses such a cron instead of firing on other days."""
    from fixtures.stack.refapp.scheduler import cron_trigger

    with pytest.raises(ValueError, match="nth weekday"):
        cron_trigger(_job("0 9 * * 1#2"))
    with pytest.raises(ValueError, match="both day of month and week"):
        cron_trigger(_job("0 9 1 * 1"))


def test_stale_beat_reasons() -> None:
    """A heartbeat key proves nothing when it cannot expire, beats in the future, beat long
    ago, or expires more than heartbeat_expiry_ratio_max renewal periods after it was written."""
    from checks.test_scheduler import _stale_beat

    rt = load()
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

    def beat(ttl: int, at: datetime) -> pr.Heartbeat:
        return pr.Heartbeat("i", "k", ttl, {"beat": at.isoformat()})

    assert _stale_beat(beat(15, now), now, rt) is None
    assert _stale_beat(beat(20, now + timedelta(seconds=5)), now, rt) is None  # the tolerated skew
    assert _stale_beat(beat(-1, now), now, rt) == "no expiry"
    assert _stale_beat(beat(15, now + timedelta(days=3)), now, rt) == (
        "beat 2026-03-05T12:00:00+00:00 is 3 days in the future, beyond the 5 s clock skew")
    assert _stale_beat(beat(21, now), now, rt) == "expires in 21 s, more than 4 × its 5 s renewal period"
    assert _stale_beat(beat(600, now - timedelta(minutes=10)), now, rt) == "last beat 10 min ago, expires in 600 s"


def test_refused_lines_name_table_key_and_value() -> None:
    at = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)
    ahead = pr.Refused("job_executions", "id 7", "heartbeat success", "started_at", at, ahead_s=86400 - 3)
    assert ahead.line() == ("job_executions id 7 (heartbeat success): started_at 2026-03-03 12:00:00Z is 23 h "
                            "in the future")
    assert ahead.line(label=False).startswith("job_executions id 7: started_at")
    back = pr.Refused("job_executions", "id 8", "", "finished_at", at, before=("started_at", at + timedelta(hours=1)))
    assert back.line() == ("job_executions id 8: finished_at 2026-03-03 12:00:00Z is before its started_at "
                           "2026-03-03 13:00:00Z")
    assert [pr.span(s) for s in (4, 90, 7199, 7200, 172799, 172800)] == [
        "4 s", "1 min", "119 min", "2 h", "47 h", "2 days"]


def test_heartbeat_is_written_with_its_ttl(stack) -> None:  # type: ignore[no-untyped-def]
    """The reference scheduler's heartbeat expires unless renewed (a crashed scheduler's key
    dies with its TTL), and the check reads it as live; the same key left without expiry, or
    renewed no more, reads as stale."""
    import types

    import redis

    from checks.test_scheduler import _stale_beat
    from fixtures.clients import SafeRedis
    from fixtures.stack.refapp.scheduler import Heartbeat

    rb = load_runbook(ROOT / "runbook.toml")
    rt = pr.contract_of(rb)
    instance = f"unit-{datetime.now(UTC).timestamp():.0f}"
    beat = Heartbeat(types.SimpleNamespace(redis_url=stack.info.redis_url), rt, instance)  # type: ignore[arg-type]
    client = SafeRedis.from_url(stack.info.redis_url, decode_responses=True)
    try:
        beat.beat()
        (found,) = [b for b in pr.scheduler_heartbeats(client, rb) if b.instance == instance]
        assert 0 < found.ttl_s <= rt.scheduler.heartbeat_ttl_s and found.detail["pid"] == os.getpid()
        now = pr.redis_now(client)
        assert _stale_beat(found, now, rt) is None
        later = now + timedelta(seconds=rt.scheduler.heartbeat_ttl_s) + rt.clock_skew + timedelta(seconds=1)
        assert _stale_beat(found, later, rt).startswith("last beat ")  # type: ignore[union-attr]
        redis.Redis.from_url(stack.info.redis_url).persist(found.key)
        (kept,) = [b for b in pr.scheduler_heartbeats(client, rb) if b.instance == instance]
        assert kept.ttl_s == -1 and _stale_beat(kept, now, rt) == "no expiry"
    finally:
        beat.clear()
        client.close()
    assert client.exists(found.key) == 0
