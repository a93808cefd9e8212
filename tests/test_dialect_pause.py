"""The pause invariant (JC-PAUSE-02) in both dialects: "while Júlia is paused, nothing is sent".

The reference worker honours the pause (it reads the newest decision of julia_status before
claiming anything); a worker started with the fault ``JC_FAULT_IGNORE_PAUSE=1`` sends anyway
— the incident the invariant exists for — and the invariant fails naming the rows. In the
runbook's words a sent row is ``processada = true`` at ``updated_at``; in the deployment's it
is ``status = 'enviada'`` at ``enviada_em``, and the heartbeat's ``ativo`` rows
(``alterado_via = 'sistema'``) written after the pause do not end it.

Each extra worker runs on its own Redis database (its own ARQ queue and health-check key),
so it never shares cron runs with the stack's worker.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
import redis

from fixtures.stack.app_services import runtime_executor
from fixtures.stack.backends.native import NativeStack
from fixtures.stack.refapp.worker import CYCLE_KEY, IGNORE_PAUSE_ENV
from plugins.contract.runtime import DIALECT_ENV
from tests.conftest import LOCAL_ENV, LOCAL_REF, SuiteRun
from tests.test_dialect_deployment import Deployed, deployed, variant_template
from tests.test_runtime_faults import wait_for

RUNTIME = ("checks/test_scheduler.py", "checks/test_jobs.py", "checks/test_queue.py", "checks/test_pause.py")
PAUSE_CHECKS = ("-k", "julia_active or nothing_sent")
FAST = {"WORKER_POLL_SECONDS": "1"}


def _redis_url(stack: NativeStack, db: int) -> str:
    assert stack.info is not None
    return stack.info.redis_url.rsplit("/", 1)[0] + f"/{db}"


@contextmanager
def extra_worker(stack: NativeStack, name: str, database_url: str, redis_db: int,
                 env: dict[str, str]) -> Iterator[redis.Redis]:
    """A julia-worker process of the reference app, stopped on exit; yields its Redis."""
    assert stack.info is not None and stack.tmpdir is not None
    url = _redis_url(stack, redis_db)
    ex = runtime_executor("worker", instance=name, database_url=database_url, redis_url=url,
                          environment=LOCAL_ENV, project_ref=LOCAL_REF, run_id=stack.run_id,
                          logdir=stack.tmpdir, extra_env={**FAST, **env})
    ex.start()
    try:
        yield redis.Redis.from_url(url)
    finally:
        ex.stop()


def _saw_pause(r: redis.Redis, since: datetime) -> bool:
    raw = r.get(CYCLE_KEY)
    cycle: dict[str, Any] | None = json.loads(raw) if raw else None
    return bool(cycle and cycle["outcome"] == "paused" and datetime.fromisoformat(cycle["at"]) > since)


def _query(url: str, statement: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(statement).fetchall()  # type: ignore[arg-type]


def _outcomes(run: SuiteRun) -> dict[str, str]:
    assert run.certificate is not None, run.output[-3000:]
    return run.outcomes()


def test_runbook_dialect_pause_honoured_then_ignored(healthy: NativeStack, suite, sql) -> None:  # type: ignore[no-untyped-def]
    assert healthy.info is not None
    url = healthy.info.database_url
    sql("INSERT INTO julia_status (status, motivo, alterado_via) "
        "VALUES ('pausado', 'Emergência - pausado manualmente', 'manual')")
    paused_at = datetime.now(UTC)
    sql("INSERT INTO fila_mensagens (cliente_id, conteudo) "
        "SELECT id, 'Confirma sua presença no plantão de domingo?' FROM clientes ORDER BY id LIMIT 3")
    ids = sorted(str(r[0]) for r in _query(url, "SELECT id FROM fila_mensagens WHERE NOT processada"))
    assert len(ids) == 3

    # The stack's worker honours the pause: a cycle after it, and nothing sent.
    stack_redis = redis.Redis.from_url(_redis_url(healthy, 0))
    wait_for("the stack's worker seeing the pause", lambda: _saw_pause(stack_redis, paused_at), timeout_s=30)
    run = suite(*PAUSE_CHECKS, paths=RUNTIME)
    assert _outcomes(run) == {"JC-PAUSE-01": "failed", "JC-PAUSE-02": "passed"}, run.output[-3000:]

    # A worker that ignores the pause sends the backlog: the invariant names every row.
    with extra_worker(healthy, "julia-worker-ignores-pause", url, 1, {IGNORE_PAUSE_ENV: "1"}):
        wait_for("the faulty worker sending", lambda: _query(
            url, "SELECT count(*) = 3 FROM fila_mensagens WHERE processada AND updated_at > now() - interval '5 min'"
            " AND id IN (" + ",".join(ids) + ")")[0][0], timeout_s=30)
    run = suite(*PAUSE_CHECKS, paths=RUNTIME)
    assert _outcomes(run) == {"JC-PAUSE-01": "failed", "JC-PAUSE-02": "failed"}, run.output[-3000:]
    msg = run.message("JC-PAUSE-02")
    assert msg.startswith(f"3 fila_mensagens row(s) sent while Júlia was paused — ids {', '.join(ids)}; "
                          "expected nothing with processada = true and updated_at inside a pause "
                          "(julia_status pausado since "), msg
    assert "'Emergência - pausado manualmente'" in msg, msg


def test_deployment_dialect_pause_honoured_then_ignored(deployed: Deployed, healthy: NativeStack) -> None:  # noqa: F811
    """The heartbeat keeps writing `ativo` after the pause: Júlia is still paused."""
    url = deployed.database_url
    deployed.sql("INSERT INTO julia_status (status, motivo, alterado_via, created_at) "
                 "VALUES ('pausado', 'Emergência - pausado manualmente', 'manual', now() - interval '20 seconds'),"
                 "       ('ativo', 'heartbeat', 'sistema', now() - interval '10 seconds')")
    paused_at = datetime.now(UTC)
    deployed.sql("INSERT INTO fila_mensagens (cliente_id, conteudo, status) "
                 "SELECT id, 'Nova vaga disponível na sua região.', 'pendente' FROM clientes ORDER BY id LIMIT 3")
    ids = sorted(str(r[0]) for r in _query(url, "SELECT id FROM fila_mensagens WHERE status = 'pendente'"))
    assert len(ids) == 3
    dialect = {DIALECT_ENV: "deployment"}

    with extra_worker(healthy, "julia-worker-deployment", url, 2, dialect) as r:
        wait_for("the deployment's worker seeing the pause", lambda: _saw_pause(r, paused_at), timeout_s=30)
    assert _query(url, "SELECT count(*) FROM fila_mensagens WHERE status = 'pendente'") == [(3,)]
    run = deployed.run("deployment", *PAUSE_CHECKS, paths=RUNTIME)
    assert _outcomes(run) == {"JC-PAUSE-01": "failed", "JC-PAUSE-02": "passed"}, run.output[-3000:]
    # The verdict from the newest decision (the heartbeat's newer 'ativo' row is what the app's
    # view julia_status_atual shows), the resume statement whole.
    msg = run.message("JC-PAUSE-01")
    assert "newest decision is 'pausado'" in msg and "motivo 'Emergência - pausado" in msg, msg
    assert "; the view julia_status_atual says 'ativo' (heartbeat at 20" in msg, msg
    assert msg.endswith("): verdict from the decision. To resume: INSERT INTO julia_status (status, motivo, "
                        "alterado_via) VALUES ('ativo', 'Retomando operacao normal', 'manual');"), msg

    with extra_worker(healthy, "julia-worker-deployment-ignores-pause", url, 3,
                      {**dialect, IGNORE_PAUSE_ENV: "1"}):
        wait_for("the faulty worker sending", lambda: _query(
            url, "SELECT count(*) = 3 FROM fila_mensagens WHERE status = 'enviada' AND id IN ("
            + ",".join(ids) + ")")[0][0], timeout_s=30)
    run = deployed.run("deployment", *PAUSE_CHECKS, paths=RUNTIME)
    assert _outcomes(run) == {"JC-PAUSE-01": "failed", "JC-PAUSE-02": "failed"}, run.output[-3000:]
    msg = run.message("JC-PAUSE-02")
    assert msg.startswith(f"3 fila_mensagens row(s) sent while Júlia was paused — ids {', '.join(ids)}; "
                          "expected nothing with status in enviada and enviada_em inside a pause "
                          "(julia_status pausado/manutencao since "), msg
    assert "(julia_status rows alterado_via in sistema are the heartbeat's, not decisions)" in msg, msg

    # A manual resume that leaves alterado_via out (NULL) is a decision, not a heartbeat:
    # Júlia is active again; the sends inside the pause stay a violation.
    deployed.sql("INSERT INTO julia_status (status, motivo, created_at) VALUES ('ativo', 'retomada', now())")
    run = deployed.run("deployment", *PAUSE_CHECKS, paths=RUNTIME)
    assert _outcomes(run) == {"JC-PAUSE-01": "passed", "JC-PAUSE-02": "failed"}, run.output[-3000:]
