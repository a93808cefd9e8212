"""The runtime checks in the deployment dialect, against the deployment twin (issue 15, points 9-13).

The real Júlia's scheduler is a loop that POSTs /jobs/<path> and records job_executions; it
writes no Redis key, and its every-minute `heartbeat` job is the beat (whats-agents
app/workers/scheduler.py, app/api/routes/jobs/core.py). Its queue worker writes no ARQ key
(app/workers/fila_worker.py); fila_mensagens rows are due at `agendar_para` (app/services/fila.py).
Nothing reads the pause switch; the heartbeat writes `ativo` / `sistema` rows every minute, and
the app's view julia_status_atual shows the newest row of any kind (bootstrap/01-schema.sql).
The Railway project runs three services from one image by RUN_MODE (scripts/entrypoint.sh);
in the incident of 2026-01-23 the worker service had never been created
(docs/auditorias/incidente-2026-01-23-campanha-sem-envio.md).

Each test injects one of those facts' faults into the twin (tests/deployment_app.py,
tests/data/deployment_schema.sql) with SQL — "the scheduler stopped N minutes ago" is its runs
of the last N minutes deleted — and asserts exactly which invariants fail, and why.

The real app stamps its rows with its own clock, not the database's: job_executions'
started_at / finished_at (app/workers/scheduler.py _registrar_inicio_job / _registrar_fim_job,
agora_utc), the heartbeat's julia_status row (app/api/routes/jobs/core.py, created_at from
agora_utc) and the queue's sends (app/services/fila.py). A skewed app clock leaves rows "in the
future" — and the dashboard calls Júlia online while the newest julia_status row is under 5
minutes old (dashboard/app/api/dashboard/status/route.ts), so one stamped tomorrow keeps her
"online" for a day. Issue 16's faults inject exactly that (points 2 and 3).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.stack.platform import LocalRailway
from tests.conftest import LOCAL_ENV, LOCAL_REF, ROOT, SuiteRun, run_suite
from tests.test_runtime_faults import evidence_of
from tests.test_dialect_deployment import (  # noqa: F401 - fixtures
    DEPLOYMENT_RUNTIME,
    Deployed,
    deployed,
    variant_template,
)

RUNTIME = ("checks/test_scheduler.py", "checks/test_jobs.py", "checks/test_queue.py", "checks/test_pause.py")
NO_RAILWAY = ("--deselect", "checks/test_scheduler.py::test_scheduler_scale")
INCIDENT = "the whats-worker service (RUN_MODE=worker) was never created on Railway"
TOKEN = "rw-twin-token-3c9d1e"
# Nothing claimed or sent in the last 8 minutes: the reference seed's last sends (made when the
# stack started, minutes ago) pushed back.
PUSH_BACK_SENDS = ("UPDATE fila_mensagens SET enviada_em = now() - interval '8 minutes', processando_desde = "
                   "now() - interval '8 minutes', outcome_at = now() - interval '8 minutes' "
                   "WHERE enviada_em > now() - interval '8 minutes'")


def run(deployed: Deployed, *args: str, profile: str = "", env: dict[str, str] | None = None) -> SuiteRun:  # noqa: F811
    """The runtime checks against the twin in the deployment dialect, read-only as against
    production; ``profile`` adds lines to the target's profile (Railway's keys)."""
    targets = deployed.tmp_path / "targets-runtime.toml"
    targets.write_text(
        "[targets.deployed]\nlocal = false\n"
        f'api_url = "{deployed.api.url}"\nenvironment = "{LOCAL_ENV}"\nproject_ref = "{LOCAL_REF}"\n'
        'database_url_env = "JC_DEPLOYED_DB"\nredis_url_env = "JC_DEPLOYED_REDIS"\n'
        'dialect = "deployment"\n' + profile)
    return run_suite("--target-file", str(targets), "--target", "deployed", *args, paths=RUNTIME,
                     reports=deployed.tmp_path / "reports",
                     env={"JC_DEPLOYED_DB": deployed.database_url, "JC_DEPLOYED_REDIS": deployed.redis_url,
                          **(env or {})})


def not_passed(run: SuiteRun) -> dict[str, str]:  # noqa: F811
    assert run.certificate is not None, run.output[-3000:]
    return {i: o for i, o in run.outcomes().items() if o != "passed"}


def row(run: SuiteRun, inv: str) -> dict[str, object]:  # noqa: F811
    assert run.certificate is not None
    return next(r for r in run.certificate["invariants"] if r["id"] == inv)


def declared(run: SuiteRun) -> dict[str, dict[str, object]]:  # noqa: F811
    assert run.certificate is not None
    return {str(d["key"]): d for d in run.certificate["drift"] if "declared_in" in d}


def warnings_of(run: SuiteRun) -> dict[str, list[str]]:  # noqa: F811
    assert run.certificate is not None, run.output[-3000:]
    return {str(r["id"]): list(r["warnings"]) for r in run.certificate["invariants"] if r.get("warnings")}


def contract_copy(tmp_path: Path, *edits: tuple[str, str], dialect: tuple[tuple[str, str], ...] = ()) -> Path:
    """runbook.toml and the deployment dialect beside it, with (old, new) edits to each."""
    folder = tmp_path / "contract"
    (folder / "dialects").mkdir(parents=True)
    for source, target, changes in ((ROOT / "runbook.toml", folder / "runbook.toml", edits),
                                    (ROOT / "dialects" / "deployment.toml", folder / "dialects" / "deployment.toml",
                                     dialect)):
        text = source.read_text()
        for old, new in changes:
            assert old in text, old
            text = text.replace(old, new, 1)
        target.write_text(text)
    return folder / "runbook.toml"


def inserted(deployed: Deployed, statement: str) -> str:  # noqa: F811
    """Run an INSERT … RETURNING id against the twin; the id."""
    import psycopg

    with psycopg.connect(deployed.database_url, autocommit=True) as conn:
        row = conn.execute(statement).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return str(row[0])


def stop_scheduler(deployed: Deployed, minutes: int) -> None:  # noqa: F811
    """The scheduler stopped ``minutes`` ago: its runs since then, and the heartbeat rows
    those runs wrote, never happened."""
    deployed.sql(f"DELETE FROM job_executions WHERE started_at > now() - interval '{minutes} minutes'")
    deployed.sql(f"DELETE FROM julia_status WHERE alterado_via = 'sistema' AND created_at > now() - "
                 f"interval '{minutes} minutes'")


def test_the_contract_is_the_real_schedulers() -> None:
    """42 jobs with the real crons in America/Sao_Paulo; the app's CRITICAL_JOBS are the
    critical ones; the liveness modes the real code leaves evidence for."""
    rt = DEPLOYMENT_RUNTIME
    assert len(rt.jobs) == 42 and {j.timezone for j in rt.jobs} == {"America/Sao_Paulo"}
    assert {j.name for j in rt.jobs if j.critical} == {
        "processar_fila_mensagens", "processar_campanhas_agendadas", "verificar_whatsapp", "processar_grupos"}
    jobs = {j.name: j for j in rt.jobs}
    assert jobs["heartbeat"].cron == "* * * * *" and jobs["meta_window_keeper"].cron == "0 8,10,12,14,16,18 * * 1-5"
    assert "relatorio_diario" not in jobs and "relatorio_periodo" not in jobs
    assert (jobs["report_manha"].cron, jobs["report_fim_dia"].cron) == ("0 10 * * *", "0 20 * * *")
    assert (rt.scheduler.liveness, rt.scheduler.beat_job, rt.scheduler.service_name) == (
        "job_runs", "heartbeat", "whats-scheduler")
    assert (rt.queue.worker_liveness, rt.queue.due_at, rt.queue.claimed_at, rt.queue.service_name) == (
        "queue_progress", "agendar_para", "processando_desde", "whats-worker")
    assert (rt.pause.current_view, rt.pause.holds_queue) == ("julia_status_atual", False)


def test_scheduler_liveness_from_its_job_runs(deployed: Deployed) -> None:  # noqa: F811
    """Point 9. The scheduler stopped 4 minutes ago (a batch still running, left by the loop):
    no run of the every-minute heartbeat job within its grace — JC-SCHED-02 says the scheduler
    is down or stuck, names its last run and what julia_status shows; the critical per-minute
    jobs are late (JC-SCHED-03) and the heartbeat job too (JC-SCHED-05). Then a second
    scheduler: every beat slot run twice, and twice the heartbeat rows — rule 4."""
    stop_scheduler(deployed, 4)
    deployed.sql("INSERT INTO job_executions (id, job_name, status, started_at) "
                 "VALUES (gen_random_uuid(), 'processar_grupos', 'running', now() - interval '3 minutes')")
    down = run(deployed, *NO_RAILWAY)
    assert not_passed(down) == {"JC-SCHED-02": "failed", "JC-SCHED-03": "failed", "JC-SCHED-05": "failed"}, \
        down.output[-3000:]
    msg = down.message("JC-SCHED-02")
    assert re.fullmatch(r"expected exactly one live scheduler, found no run of its every-minute 'heartbeat' job "
                        r"since \S+ \S+ \(grace 2 min; last run \S+ \S+ success; newest julia_status heartbeat row "
                        r"\S+ \S+\): whats-scheduler is down, or stuck — its loop waits for the batch still running: "
                        r"processar_grupos since \S+ \S+", msg), msg
    late = down.message("JC-SCHED-03")
    assert late.startswith("expected every critical job to succeed after its last due firing, found 2 late: "), late
    assert "processar_fila_mensagens ('* * * * *' America/Sao_Paulo)" in late
    assert "processar_campanhas_agendadas ('* * * * *' America/Sao_Paulo)" in late
    other = down.message("JC-SCHED-05")
    assert other.startswith("expected every non-critical job to succeed after its last due firing, found 1 late: "
                            "heartbeat ('* * * * *' America/Sao_Paulo)"), other
    assert "If Fails: no julia_status heartbeat row" in other


def test_two_schedulers_in_job_runs(deployed: Deployed) -> None:  # noqa: F811
    deployed.sql("INSERT INTO job_executions (id, job_name, status, started_at, finished_at, duration_ms) "
                 "SELECT gen_random_uuid(), job_name, status, started_at + interval '2 seconds', "
                 "finished_at + interval '2 seconds', duration_ms FROM job_executions "
                 "WHERE job_name = 'heartbeat' AND started_at > now() - interval '5 minutes'")
    deployed.sql("INSERT INTO julia_status (status, motivo, alterado_via, created_at) "
                 "SELECT status, motivo, alterado_via, created_at + interval '2 seconds' FROM julia_status "
                 "WHERE alterado_via = 'sistema' AND created_at > now() - interval '5 minutes'")
    two = run(deployed, *NO_RAILWAY)
    assert not_passed(two) == {"JC-SCHED-01": "failed", "JC-SCHED-02": "failed"}, two.output[-3000:]
    msg = two.message("JC-SCHED-02")
    assert re.fullmatch(r"expected exactly one live scheduler \(rule 4: 1 instance, no autoscale\), found the "
                        r"every-minute 'heartbeat' job run more than once in (\d+) cron slot\(s\) since \S+ \S+ "
                        r"\(\S+ \S+: 2 runs.*\); julia_status has (\d+) heartbeat rows since \S+ \S+: more than one "
                        r"whats-scheduler is running", msg), msg
    slots, rows = int(re.search(r"in (\d+) cron slot", msg)[1]), int(re.search(r"has (\d+) heartbeat", msg)[1])
    assert slots >= 2 and rows == 2 * slots, msg  # every beat slot twice, in both tables
    assert "heartbeat @ " in two.message("JC-SCHED-01") and " by " not in two.message("JC-SCHED-01")


def test_critical_jobs_weigh_more(deployed: Deployed) -> None:  # noqa: F811
    """Point 10. verificar_whatsapp (one of the app's CRITICAL_JOBS) silent for 20 minutes
    fails JC-SCHED-03 (critical, the post-deploy gate); sincronizar_briefing (hourly, not
    critical) silent for 3 hours fails JC-SCHED-05 (normal, nightly). The jobs the runbook
    names that the code no longer schedules, and its UTC times, are declared drift."""
    deployed.sql("DELETE FROM job_executions WHERE job_name = 'verificar_whatsapp' "
                 "AND started_at > now() - interval '20 minutes'")
    deployed.sql("DELETE FROM job_executions WHERE job_name = 'sincronizar_briefing' "
                 "AND started_at > now() - interval '3 hours'")
    late = run(deployed, *NO_RAILWAY)
    assert not_passed(late) == {"JC-SCHED-03": "failed", "JC-SCHED-05": "failed"}, late.output[-3000:]
    assert (row(late, "JC-SCHED-03")["severity"], row(late, "JC-SCHED-05")["severity"]) == ("critical", "normal")
    assert late.message("JC-SCHED-03").startswith(
        "expected every critical job to succeed after its last due firing, found 1 late: verificar_whatsapp "
        "('*/5 * * * *' America/Sao_Paulo): last success 20"), late.message("JC-SCHED-03")
    assert "If Fails: not run: POST /jobs/verificar-whatsapp" in late.message("JC-SCHED-03")
    assert late.message("JC-SCHED-05").startswith(
        "expected every non-critical job to succeed after its last due firing, found 1 late: sincronizar_briefing "
        "('0 * * * *' America/Sao_Paulo)"), late.message("JC-SCHED-05")
    assert "If Fails: Briefing stale" in late.message("JC-SCHED-05")
    drift = declared(late)
    assert drift["runtime: relatorio-diario"]["runbook"].startswith("relatorio-diario runs daily at 8:00 AM UTC")
    assert "not scheduled" in str(drift["runtime: relatorio-diario"]["deployment"])
    assert "America/Sao_Paulo" in str(drift["runtime: job time zone"]["deployment"])
    assert "13h and 17h reports were removed" in str(drift["runtime: period reports"]["deployment"])
    assert "runtime.jobs" in drift and "runtime.scheduler.liveness" in drift


def test_scheduled_rows_are_not_backlog(deployed: Deployed) -> None:  # noqa: F811
    """Point 11. A campaign row created 10 minutes ago for tomorrow, and a retry due in two
    minutes, are scheduled, not backlog: nothing fails. A row due 7 minutes ago with nothing
    sent since is backlog, named beside the scheduled ones."""
    deployed.sql("INSERT INTO fila_mensagens (cliente_id, conteudo, tipo, created_at, agendar_para) "
                 "SELECT id, 'Nova vaga disponível na sua região.', 'campanha', now() - interval '10 minutes', "
                 "now() + interval '1 day' FROM clientes ORDER BY id LIMIT 1")
    deployed.sql("INSERT INTO fila_mensagens (cliente_id, conteudo, created_at, agendar_para, tentativas, erro) "
                 "SELECT id, 'Lembrete: plantão amanhã às 19h.', now() - interval '30 minutes', "
                 "now() + interval '2 minutes', 1, 'Sem capacidade' FROM clientes ORDER BY id OFFSET 1 LIMIT 1")
    calm = run(deployed, *NO_RAILWAY)
    assert not_passed(calm) == {}, calm.output[-3000:]
    deployed.sql(PUSH_BACK_SENDS)
    deployed.sql("INSERT INTO fila_mensagens (cliente_id, conteudo, created_at, agendar_para) "
                 "SELECT id, 'Confirma sua presença no plantão de domingo?', now() - interval '7 minutes', "
                 "now() - interval '7 minutes' FROM clientes ORDER BY id OFFSET 2 LIMIT 1")
    due = run(deployed, *NO_RAILWAY)
    assert not_passed(due) == {"JC-QUEUE-01": "failed", "JC-QUEUE-02": "failed"}, due.output[-3000:]
    msg = due.message("JC-QUEUE-01")
    assert msg.startswith("expected no unprocessed fila_mensagens row due more than 5 min ago while Júlia is "
                          "active, found 1 (of 1 pending; oldest since 20"), msg
    assert "; 2 more scheduled for later (agendar_para from 20" in msg and "), not backlog); processed" in msg
    assert msg.endswith(": the worker is not processing"), msg


def test_pause_verdict_from_the_decision(deployed: Deployed) -> None:  # noqa: F811
    """Point 12. Paused through Slack 3 minutes ago; the heartbeat has written 'ativo' /
    'sistema' since, so the app's view julia_status_atual says 'ativo': JC-PAUSE-01 judges
    the decision and says so. Nothing in the deployment holds the queue for a pause: a row
    sent a minute ago fails JC-PAUSE-02, and the queue is judged (not skipped) while paused."""
    deployed.sql(PUSH_BACK_SENDS)
    deployed.sql("INSERT INTO julia_status (status, motivo, alterado_por, alterado_via, created_at) VALUES "
                 "('pausado', 'Pausado via Slack', 'U0OPS', 'slack', now() - interval '3 minutes'), "
                 "('ativo', 'heartbeat', 'scheduler', 'sistema', now() - interval '2 minutes'), "
                 "('ativo', 'heartbeat', 'scheduler', 'sistema', now() - interval '1 minute')")
    deployed.sql("INSERT INTO fila_mensagens (cliente_id, conteudo, status, created_at, agendar_para, "
                 "processando_desde, enviada_em, outcome, outcome_at) "
                 "SELECT id, 'Nova vaga disponível na sua região.', 'enviada', now() - interval '2 minutes', "
                 "now() - interval '2 minutes', now() - interval '1 minute', now() - interval '1 minute', 'SENT', "
                 "now() - interval '1 minute' FROM clientes ORDER BY id LIMIT 1")
    paused = run(deployed, *NO_RAILWAY)
    assert not_passed(paused) == {"JC-PAUSE-01": "failed", "JC-PAUSE-02": "failed"}, paused.output[-3000:]
    msg = paused.message("JC-PAUSE-01")
    assert re.fullmatch(r"expected Júlia ativo, found her paused: newest decision is 'pausado' since \S+ \S+ "
                        r"\(3 min ago\), motivo 'Pausado via Slack', alterado_via 'slack'; the view julia_status_atual "
                        r"says 'ativo' \(heartbeat at \S+ \S+\): verdict from the decision\. To resume: INSERT INTO "
                        r"julia_status \(status, motivo, alterado_via\) VALUES \('ativo', 'Retomando operacao normal', "
                        r"'manual'\);", msg), msg
    assert paused.message("JC-PAUSE-02").startswith("1 fila_mensagens row(s) sent while Júlia was paused")
    pause = declared(paused)["runtime: the pause switch"]
    assert "no code reads julia_status" in str(pause["deployment"]) and "stops the queue" in str(pause["runbook"])
    assert declared(paused)["runtime.pause.holds_queue"]["deployment"] is False

    # The app's view gone: the verdict says it has only the decision to go by.
    deployed.sql("DROP VIEW julia_status_atual")
    noview = run(deployed, *NO_RAILWAY, "-k", "julia_active")
    assert noview.outcomes() == {"JC-PAUSE-01": "failed"}, noview.output[-3000:]
    assert ("; the app's view julia_status_atual does not exist: verdict from the newest decision. To resume"
            in noview.message("JC-PAUSE-01")), noview.message("JC-PAUSE-01")


def test_queue_judged_while_paused(deployed: Deployed) -> None:  # noqa: F811
    """A backlog while paused is no design of the deployment's: JC-QUEUE-01 fails, saying so."""
    deployed.sql("INSERT INTO julia_status (status, motivo, alterado_via, created_at) "
                 "VALUES ('pausado', 'Emergência - pausado manualmente', 'manual', now() - interval '6 minutes')")
    deployed.sql(PUSH_BACK_SENDS)
    deployed.sql("INSERT INTO fila_mensagens (cliente_id, conteudo, created_at, agendar_para) "
                 "SELECT id, 'Lembrete: plantão amanhã às 19h.', now() - interval '7 minutes', "
                 "now() - interval '7 minutes' FROM clientes ORDER BY id LIMIT 2")
    got = run(deployed, *NO_RAILWAY)
    assert not_passed(got) == {"JC-PAUSE-01": "failed", "JC-QUEUE-01": "failed", "JC-QUEUE-02": "failed"}, \
        got.output[-3000:]
    assert ("row due more than 5 min ago although Júlia is 'pausado' (the deployment's pause does not hold the "
            "queue), found 2 (of 2 pending") in got.message("JC-QUEUE-01")


def test_no_worker_evidence_is_a_warning_not_a_failure(deployed: Deployed) -> None:  # noqa: F811
    """Nothing due and nothing sent lately: the deployment's worker leaves no trace to judge —
    said plainly, and passed (a healthy quiet night must not fail forever)."""
    deployed.sql(PUSH_BACK_SENDS)
    quiet = run(deployed, *NO_RAILWAY, "-k", "worker_alive")
    assert quiet.outcomes() == {"JC-QUEUE-02": "passed"}, quiet.output[-3000:]
    assert row(quiet, "JC-QUEUE-02")["warnings"] == [
        "the deployment offers no worker liveness evidence right now: whats-worker writes no heartbeat, and with "
        "nothing due it leaves no trace (fila_mensagens: no due row, 0 claimed and 0 sent in the last 5 min)"]


@pytest.fixture
def railway() -> Iterator[str]:
    """The local Railway stand-in with the project of the incident: the api and the scheduler,
    no worker service."""
    platform = LocalRailway(lambda: 1, services={"svc-api": ("whats-agents", lambda: 1),
                                                 "svc-scheduler": ("whats-scheduler", lambda: 1)})
    url = platform.start()
    try:
        yield url
    finally:
        platform.stop()


def test_missing_worker_service_is_the_incident(deployed: Deployed, railway: str) -> None:  # noqa: F811
    """Point 13, the incident of 2026-01-23: campaign rows due for 10 minutes, nothing claimed
    or sent — and Railway does not know the worker service the profile names. JC-QUEUE-02
    fails with the incident's cause; JC-SCHED-04 reads the scheduler and the api by their ids
    and passes."""
    deployed.sql(PUSH_BACK_SENDS)
    deployed.sql("INSERT INTO fila_mensagens (cliente_id, conteudo, tipo, metadata, created_at, agendar_para) "
                 "SELECT id, 'Nova vaga disponível na sua região.', 'campanha', '{\"campanha_id\": \"17\"}', "
                 "now() - interval '10 minutes', now() - interval '10 minutes' FROM clientes ORDER BY id LIMIT 3")
    # Without Railway: the queue alone — due rows, no consumer.
    alone = run(deployed, *NO_RAILWAY)
    assert not_passed(alone) == {"JC-QUEUE-01": "failed", "JC-QUEUE-02": "failed"}, alone.output[-3000:]
    msg = alone.message("JC-QUEUE-02")
    assert re.fullmatch(r"expected a live worker to claim due rows within 1 min, found fila_mensagens: 3 due row\(s\) "
                        r"waiting since \S+ \S+ \(10 min\), 0 claimed and 0 sent in the last 5 min: no consumer is "
                        r"claiming due rows, as in the incident of 2026-01-23: " + re.escape(INCIDENT)
                        + "; campaigns were queued, never sent", msg), msg

    # With Railway: it does not know the worker's service id.
    profile = ('railway_token_env = "JC_TWIN_RAILWAY_TOKEN"\n'
               f'railway_api_url = "{railway}"\nrailway_environment_id = "production"\n'
               'railway_scheduler_service_id = "svc-scheduler"\nrailway_api_service_id = "svc-api"\n'
               'railway_worker_service_id = "svc-worker"\n')
    found = run(deployed, profile=profile, env={"JC_TWIN_RAILWAY_TOKEN": TOKEN})
    assert not_passed(found) == {"JC-QUEUE-01": "failed", "JC-QUEUE-02": "failed"}, found.output[-3000:]
    msg = found.message("JC-QUEUE-02")
    assert re.fullmatch(r"expected the worker service whats-worker on Railway, found none: Railway does not know "
                        r"its service id svc-worker \(3 due row\(s\) waiting since \S+ \S+, none claimed or sent in 5 "
                        r"min\): no consumer is claiming due rows, as in the incident of 2026-01-23: "
                        + re.escape(INCIDENT) + "; campaigns were queued, never sent", msg), msg
    assert found.outcomes()["JC-SCHED-04"] == "passed"
    assert TOKEN not in found.output and TOKEN not in json.dumps(found.certificate)
    services = declared(found)["runtime: Railway services"]
    assert "whats-worker" in str(services["deployment"]) and "julia-worker" in str(services["runbook"])


def test_api_service_without_replicas(deployed: Deployed, tmp_path: Path) -> None:  # noqa: F811
    """JC-SCHED-04 reads each service the profile names: the api at 0 replicas fails it."""
    platform = LocalRailway(lambda: 1, services={"svc-api": ("whats-agents", lambda: 0),
                                                 "svc-scheduler": ("whats-scheduler", lambda: 1)})
    url = platform.start()
    try:
        profile = ('railway_token_env = "JC_TWIN_RAILWAY_TOKEN"\n'
                   f'railway_api_url = "{url}"\nrailway_environment_id = "production"\n'
                   'railway_scheduler_service_id = "svc-scheduler"\nrailway_api_service_id = "svc-api"\n')
        got = run(deployed, "-k", "scheduler_scale", profile=profile, env={"JC_TWIN_RAILWAY_TOKEN": TOKEN})
    finally:
        platform.stop()
    assert got.outcomes() == {"JC-SCHED-04": "failed"}, got.output[-3000:]
    assert got.message("JC-SCHED-04") == (
        "expected the api service whats-agents to run at least 1 replica, Railway reports 0")


# --- issue 16: impossible evidence (point 2) and liveness that cannot go stale (point 3) -------

FUTURE = r"\S+ \S+ is 23 h in the future"


def test_dead_scheduler_behind_runs_stamped_tomorrow(deployed: Deployed) -> None:  # noqa: F811
    """Point 2. whats-scheduler stopped 4 minutes ago, on a clock a day ahead: its last heartbeat
    run and the julia_status row that run wrote are stamped tomorrow, and its last
    processar_fila_mensagens "success" ended an hour before it started. None of it is a beat or
    a success: JC-SCHED-02 says the scheduler is down and names both heartbeat rows; the
    critical per-minute jobs are late (JC-SCHED-03), the heartbeat job too (JC-SCHED-05), each
    naming its refused row."""
    stop_scheduler(deployed, 4)
    beat = inserted(deployed, "INSERT INTO job_executions (id, job_name, status, started_at, finished_at, duration_ms) "
                    "VALUES (gen_random_uuid(), 'heartbeat', 'success', now() + interval '1 day', "
                    "now() + interval '1 day 1 second', 1000) RETURNING id")
    row = inserted(deployed, "INSERT INTO julia_status (status, motivo, alterado_por, alterado_via, created_at) "
                   "VALUES ('ativo', 'Heartbeat automático', 'scheduler', 'sistema', now() + interval '1 day') "
                   "RETURNING id")
    backwards = inserted(deployed, "INSERT INTO job_executions (id, job_name, status, started_at, finished_at, "
                         "duration_ms) VALUES (gen_random_uuid(), 'processar_fila_mensagens', 'success', "
                         "now() - interval '30 seconds', now() - interval '1 hour', 0) RETURNING id")
    down = run(deployed, *NO_RAILWAY)
    assert not_passed(down) == {"JC-SCHED-02": "failed", "JC-SCHED-03": "failed", "JC-SCHED-05": "failed"}, \
        down.output[-3000:]
    msg = down.message("JC-SCHED-02")
    assert re.fullmatch(r"expected exactly one live scheduler, found no run of its every-minute 'heartbeat' job "
                        r"since \S+ \S+ \(grace 2 min; last run \S+ \S+ success; newest julia_status heartbeat row "
                        r"\S+ \S+\): whats-scheduler is down; not counted \(impossible\): job_executions id "
                        rf"{beat}: started_at {FUTURE} \(\+1 more\)", msg), msg
    assert [(r["table"], r["key"], r["column"]) for r in evidence_of(down, "JC-SCHED-02")["refused"]] == [
        ("job_executions", f"id {beat}", "started_at"), ("julia_status", f"id {row}", "created_at")]
    late = down.message("JC-SCHED-03")
    assert re.search(r"found 2 late: processar_fila_mensagens \('\* \* \* \* \*' America/Sao_Paulo\): last "
                     r"success \S+ \S+ \(last run \S+ \S+ success\) — not counted: job_executions id "
                     rf"{backwards}: finished_at \S+ \S+ is before its started_at \S+ \S+, due ", late), late
    other = down.message("JC-SCHED-05")
    assert re.search(r"found 1 late: heartbeat \('\* \* \* \* \*' America/Sao_Paulo\): last success \S+ \S+ — not "
                     rf"counted: job_executions id {beat}: started_at {FUTURE}, due ", other), other
    # The heartbeat row is the scheduler's evidence, not a decision: JC-PAUSE-01 is not its reporter.
    assert warnings_of(down) == {}, warnings_of(down)


def test_pause_stamped_tomorrow_decides_nothing(deployed: Deployed) -> None:  # noqa: F811
    """Point 2. A Slack pause stamped tomorrow would be the newest decision (and the app's view)
    for a day: it decides nothing, and JC-PAUSE-01 says so in a warning naming the row. A real
    pause 3 minutes ago with a resume stamped tomorrow stays a pause; the view, stuck on the
    resume, is said to be in the future."""
    deployed.sql(PUSH_BACK_SENDS)
    ahead = inserted(deployed, "INSERT INTO julia_status (status, motivo, alterado_por, alterado_via, created_at) "
                     "VALUES ('pausado', 'Pausado via Slack', 'U0OPS', 'slack', now() + interval '1 day') RETURNING id")
    calm = run(deployed, *NO_RAILWAY, "-k", "julia_active or nothing_sent")
    assert not_passed(calm) == {}, calm.output[-3000:]
    assert warnings_of(calm) == {"JC-PAUSE-01": [
        f"1 refused as julia_status decision(s) (not counted; the verdict stands on the rest): julia_status id "
        f"{ahead} ('pausado' by slack): created_at " + warnings_of(calm)["JC-PAUSE-01"][0].split("created_at ")[1]]}
    assert re.search(rf"created_at {FUTURE}$", warnings_of(calm)["JC-PAUSE-01"][0])

    deployed.sql(f"DELETE FROM julia_status WHERE id = '{ahead}'")
    deployed.sql("INSERT INTO julia_status (status, motivo, alterado_por, alterado_via, created_at) VALUES "
                 "('pausado', 'Pausado via Slack', 'U0OPS', 'slack', now() - interval '3 minutes')")
    resume = inserted(deployed, "INSERT INTO julia_status (status, motivo, alterado_por, alterado_via, created_at) "
                      "VALUES ('ativo', 'Retomado via Slack', 'U0OPS', 'slack', now() + interval '1 day') RETURNING id")
    paused = run(deployed, *NO_RAILWAY, "-k", "julia_active or nothing_sent")
    assert not_passed(paused) == {"JC-PAUSE-01": "failed"}, paused.output[-3000:]
    # The decision, the pointer and the resume statement fill the message's 400 characters: the
    # refused row is named in full in a warning of the same check.
    msg = paused.message("JC-PAUSE-01")
    assert re.fullmatch(r"expected Júlia ativo, found her paused: newest decision is 'pausado' since \S+ \S+ "
                        r"\(3 min ago\), motivo 'Pausado via Slack', alterado_via 'slack'; 1 julia_status row\(s\) "
                        r"stamped in the future not counted \(named in a warning\)\. To resume: INSERT INTO "
                        r"julia_status \(status, motivo, alterado_via\) VALUES \('ativo', 'Retomando operacao normal', "
                        r"'manual'\);", msg), msg
    [said] = warnings_of(paused)["JC-PAUSE-01"]
    assert re.fullmatch(rf"not counted as julia_status decision\(s\) \(impossible\): julia_status id {resume} "
                        rf"\('ativo' by slack\): created_at {FUTURE}", said), said
    # The app's view is stuck on the resume stamped tomorrow: the evidence says so.
    view = evidence_of(paused, "JC-PAUSE-01")["view"]
    assert (view["status"], view["changed_via"]) == ("ativo", "slack"), view


def test_row_sent_tomorrow_proves_no_worker(deployed: Deployed) -> None:  # noqa: F811
    """Point 2. Due rows waiting 10 minutes and no consumer — but one row 'enviada' with its
    claim and send stamped tomorrow. It is no progress: JC-QUEUE-02 (the worker's liveness, read
    from the queue) and JC-QUEUE-01 fail as with no send at all, naming the row's two stamps."""
    deployed.sql(PUSH_BACK_SENDS)
    deployed.sql("INSERT INTO fila_mensagens (cliente_id, conteudo, created_at, agendar_para) "
                 "SELECT id, 'Nova vaga disponível na sua região.', now() - interval '10 minutes', "
                 "now() - interval '10 minutes' FROM clientes ORDER BY id LIMIT 3")
    sent = inserted(deployed, "INSERT INTO fila_mensagens (cliente_id, conteudo, status, created_at, agendar_para, "
                    "processando_desde, enviada_em, outcome, outcome_at) SELECT id, 'Lembrete: plantão amanhã às 19h.', "
                    "'enviada', now(), now(), now() + interval '1 day', now() + interval '1 day', 'SENT', "
                    "now() + interval '1 day' FROM clientes ORDER BY id OFFSET 3 LIMIT 1 RETURNING id")
    got = run(deployed, *NO_RAILWAY)
    assert not_passed(got) == {"JC-QUEUE-01": "failed", "JC-QUEUE-02": "failed"}, got.output[-3000:]
    refused = rf"fila_mensagens id {sent}: enviada_em {FUTURE} \(\+1 more\)"
    worker = got.message("JC-QUEUE-02")  # the first refused stamp; the incident's text is cut at 400 characters
    assert re.fullmatch(r"expected a live worker to claim due rows within 1 min, found fila_mensagens: 3 due row\(s\) "
                        r"waiting since \S+ \S+ \(10 min\), 0 claimed and 0 sent in the last 5 min; not counted "
                        rf"\(impossible\): {refused}: no consumer is claiming due rows, as in the incident of "
                        r"2026-01-23: .*", worker), worker
    queue = got.message("JC-QUEUE-01")
    assert re.search(rf"processed in the last 5 min: 0; not counted \(impossible\): {refused}: the worker is not "
                     r"processing$", queue), queue
    assert [(r["column"], r["key"]) for r in evidence_of(got, "JC-QUEUE-01")["refused"]] == [
        ("enviada_em", f"id {sent}"), ("processando_desde", f"id {sent}")]


def test_beat_evidence_that_cannot_go_stale(deployed: Deployed) -> None:  # noqa: F811
    """Point 3. Beside a live scheduler, a heartbeat run and its julia_status row stamped three
    days ahead would keep "proving" it alive for three days after it died: JC-SCHED-02 refuses
    them — a warning, or a failure where the contract declares refused_evidence = "failure".
    A contract whose beat job's grace is far longer than its period (a run a day old still a
    beat) is refused before anything runs, naming the key."""
    beat = inserted(deployed, "INSERT INTO job_executions (id, job_name, status, started_at, finished_at, duration_ms) "
                    "VALUES (gen_random_uuid(), 'heartbeat', 'success', now() + interval '3 days', "
                    "now() + interval '3 days 1 second', 1000) RETURNING id")
    row = inserted(deployed, "INSERT INTO julia_status (status, motivo, alterado_por, alterado_via, created_at) "
                   "VALUES ('ativo', 'Heartbeat automático', 'scheduler', 'sistema', now() + interval '3 days') "
                   "RETURNING id")
    lines = (rf"job_executions id {beat}: started_at \S+ \S+ is 2 days in the future; "
             rf"julia_status id {row}: created_at \S+ \S+ is 2 days in the future")
    live = run(deployed, *NO_RAILWAY)
    assert not_passed(live) == {}, live.output[-3000:]
    said_by = warnings_of(live)
    [said] = said_by.pop("JC-SCHED-02")
    assert re.fullmatch(r"2 refused as the scheduler's beat \('heartbeat' runs, julia_status heartbeat rows\) \(not "
                        rf"counted; the verdict stands on the rest\): {lines}", said), said
    assert set(said_by) <= {"JC-QUEUE-02"}  # the quiet queue's own note, if the twin is idle

    strict = contract_copy(deployed.tmp_path, ('refused_evidence = "warning"', 'refused_evidence = "failure"'))
    failed = run(deployed, *NO_RAILWAY, "--runbook", str(strict), "-k", "one_live_scheduler")
    assert not_passed(failed) == {"JC-SCHED-02": "failed"}, failed.output[-3000:]
    assert re.fullmatch(r"expected the scheduler's beat \('heartbeat' runs, julia_status heartbeat rows\) to be "
                        r"believable evidence, found 2 that are not \(runtime.refused_evidence = 'failure'\): "
                        + lines, failed.message("JC-SCHED-02")), failed.message("JC-SCHED-02")

    lax = contract_copy(deployed.tmp_path / "lax", dialect=(("grace_minutes = 2\n", "grace_minutes = 1440\n"),))
    refused = run(deployed, "--runbook", str(lax))
    assert refused.exitcode == 4 and refused.certificate is None, refused.output[-3000:]
    assert (f"{lax} + deployment.toml: runtime.jobs[0].grace_minutes: the beat job 'heartbeat' ('* * * * *', every "
            "1 min) may be at most runtime.heartbeat_expiry_ratio_max = 4 periods late, got 1440 min: its runs could "
            "not go stale") in refused.output, refused.output[-3000:]
