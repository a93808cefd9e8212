"""The runtime checks' queries at production volume: bounded, indexed, never a sequential scan.

`job_executions` grows ~10,000 rows a day and is archived after 90 days (runbook "Database
Maintenance"); `fila_mensagens` is the busiest queue. The checks run after every deploy and
every night against production, so each of their queries on these tables must be served
by an index. This test seeds a database (the same seed, scaled up to 3× the runbook's
per-day volumes), ages its history to 30 days by copying the seeded days backwards (a longer history at the
same daily rate, which is what makes a time-bounded query selective), lets the planner see
it (VACUUM ANALYZE, as autovacuum would), runs the checks' own code through a database
client that EXPLAINs every statement, and fails on any Seq Scan of those tables.
"""

from __future__ import annotations

import inspect
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from checks import test_jobs, test_pause, test_queue, test_scheduler
from fixtures.probes import drift as probes_drift
from fixtures.probes import runtime as pr
from fixtures.clients import Database
from fixtures.stack import seed
from fixtures.stack.backends.native import NativeStack
from fixtures.stack.database import apply_migrations, replace_db
from fixtures.stack.job_history import JOB_EXECUTIONS_PER_DAY
from plugins.contract.redaction import Redactor
from plugins.contract.runbook import load_runbook
from plugins.contract.runtime import load
from plugins.contract.verdict import Violation

ROOT = Path(__file__).resolve().parents[1]
HISTORY_DAYS = 30
# The seed scaled up (3× the runbook's ~10,000 job runs a day), one day of it, copied back
# to HISTORY_DAYS: ~900,000 job_executions rows.
SCALE = 3
SEEDED_DAYS = 1


class ExplainingDatabase(Database):
    """Runs every statement twice: once under EXPLAIN (kept), once for real (returned)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.plans: list[tuple[str, dict[str, Any]]] = []
        self.jit = "?"

    def query(self, sql: str, params: dict[str, Any] | tuple[Any, ...] | None = None) -> list[dict[str, Any]]:
        if "FROM" in sql.upper():
            rows = super().query("EXPLAIN (FORMAT JSON) " + sql, params)
            self.plans.append((sql, rows[0]["QUERY PLAN"][0]["Plan"]))
            self.jit = super().query("SHOW jit")[0]["jit"]  # in the checks' own session settings
        return super().query(sql, params)


def seq_scans(plan: dict[str, Any], tables: set[str]) -> list[str]:
    found = []
    if plan.get("Node Type") == "Seq Scan" and plan.get("Relation Name") in tables:
        found.append(f"Seq Scan on {plan['Relation Name']}" + (f" (filter {plan['Filter']})" if plan.get("Filter") else ""))
    for child in plan.get("Plans", []):
        found += seq_scans(child, tables)
    return found


def filtered_by(plan: dict[str, Any], tables: set[str], column: str) -> list[str]:
    """Scans of a high-volume table that test ``column`` row by row instead of seeking it in
    an index: an index walked in time order, other jobs' rows read and thrown away."""
    found = []
    if (plan.get("Relation Name") in tables and column in plan.get("Filter", "")
            and column not in plan.get("Index Cond", "")):
        found.append(f"{plan['Node Type']} {plan.get('Index Name', '')} on {plan['Relation Name']} "
                     f"filtering {plan['Filter']}")
    for child in plan.get("Plans", []):
        found += filtered_by(child, tables, column)
    return found


def scans(plan: dict[str, Any]) -> list[str]:
    here = [f"{plan['Node Type']}" + (f" using {plan['Index Name']}" if plan.get("Index Name") else "")
            + (f" on {plan['Relation Name']}" if plan.get("Relation Name") else "")] if "Scan" in plan.get("Node Type", "") else []
    return here + [s for child in plan.get("Plans", []) for s in scans(child)]


@pytest.fixture(scope="module")
def scaled_database(stack: NativeStack) -> Iterator[str]:
    assert stack.info is not None
    name = f"julia_plans_{secrets.token_hex(3)}"
    url = replace_db(stack.info.database_url, name)
    with psycopg.connect(stack.info.admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        apply_migrations(url)
        seed.seed(url, environment="local", project_ref="plans", scale=SCALE, days=SEEDED_DAYS)
        with psycopg.connect(url, autocommit=True) as conn:
            # The stack runs synchronous_commit=off; VACUUM marks a page all-visible only
            # once its rows' commit is flushed (hint bits), so flush these before it runs.
            conn.execute("SET synchronous_commit = on")
            # Older history at the same daily volume: the seeded days, copied backwards.
            conn.execute("""
                INSERT INTO job_executions (job_id, job_name, status, started_at, ended_at, created_at,
                                            erro, duracao_ms, scheduler_instance)
                SELECT gen_random_uuid(), job_name, status, started_at - k * %(days)s, ended_at - k * %(days)s,
                       created_at - k * %(days)s, erro, duracao_ms, scheduler_instance
                FROM job_executions, generate_series(1, %(copies)s) k
                ORDER BY started_at - k * %(days)s
            """, {"days": timedelta(days=SEEDED_DAYS), "copies": HISTORY_DAYS // SEEDED_DAYS - 1})
            conn.execute("""
                INSERT INTO fila_mensagens (cliente_id, conversa_id, conteudo, processada, created_at, updated_at)
                SELECT cliente_id, conversa_id, conteudo, processada, created_at - k * %(days)s, updated_at - k * %(days)s
                FROM fila_mensagens, generate_series(1, %(copies)s) k
            """, {"days": timedelta(days=SEEDED_DAYS), "copies": HISTORY_DAYS // SEEDED_DAYS - 1})
            # The deployment's heartbeat: an `ativo` row a minute (alterado_via 'sistema', not a
            # decision). It makes julia_status a high-volume table: ~43,000 rows a month.
            conn.execute("""
                INSERT INTO julia_status (status, motivo, alterado_via, created_at)
                SELECT 'ativo', 'Heartbeat', 'sistema', t
                FROM generate_series(date_trunc('minute', now()) - %(days)s, now(), interval '1 minute') t
            """, {"days": timedelta(days=HISTORY_DAYS)})
            # A pause two hours ago, lifted an hour later: JC-PAUSE-02 reads the queue inside it.
            conn.execute("INSERT INTO julia_status (status, motivo, alterado_via, created_at) VALUES"
                         " ('pausado', 'plano', 'manual', now() - interval '2 hours'),"
                         " ('ativo', 'plano', 'manual', now() - interval '1 hour')")
            # Impossible evidence the checks must find and refuse, by range scans like the rest: a
            # run, a decision and a send stamped in three days (beyond the two-day probe below), a
            # run that ended before it started.
            conn.execute("INSERT INTO job_executions (job_name, status, started_at, ended_at, scheduler_instance)"
                         " SELECT j, 'sucesso', now() + interval '3 days', now() + interval '3 days', 'skewed'"
                         " FROM unnest(%s::text[]) j", ([job.name for job in load().jobs[:2]],))
            conn.execute("UPDATE job_executions SET ended_at = started_at - interval '1 hour' WHERE job_id IN"
                         " (SELECT job_id FROM job_executions WHERE started_at > now() - interval '2 minutes'"
                         " ORDER BY started_at DESC LIMIT 2)")
            conn.execute("INSERT INTO julia_status (status, motivo, alterado_via, created_at) VALUES"
                         " ('pausado', 'skewed', 'manual', now() + interval '3 days')")
            conn.execute("INSERT INTO fila_mensagens (cliente_id, conteudo, processada, created_at, updated_at)"
                         " SELECT id, 'skewed', true, now(), now() + interval '3 days' FROM clientes LIMIT 1")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE job_executions")
            conn.execute("VACUUM ANALYZE fila_mensagens")
            conn.execute("VACUUM ANALYZE julia_status")
            visible = conn.execute("SELECT relallvisible::float / greatest(relpages, 1) FROM pg_class"
                                   " WHERE relname = 'job_executions'").fetchone()
        assert visible is not None and visible[0] > 0.9, f"VACUUM left {visible} of the pages all-visible"
        yield url
    finally:
        with psycopg.connect(stack.info.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_runtime_queries_use_indices_at_scale(scaled_database: str, tmp_path: Path) -> None:
    """The checks run twice: in the runbook's words, and with julia_status rows written by a
    heartbeat that are not decisions (runtime.pause.heartbeat_via, the deployment's) — the
    queries that then skip those rows must not read the table whole either."""
    rb = load_runbook(ROOT / "runbook.toml")
    runtime = pr.contract_of(rb)
    heartbeat = tmp_path / "runbook.toml"
    # ... and with the scheduler's liveness read from its job runs (the deployment's: no key),
    # a per-minute job of the table as the beat.
    heartbeat.write_text((ROOT / "runbook.toml").read_text().replace(
        "heartbeat_via = []", 'heartbeat_via = ["sistema"]').replace(
        'liveness = "heartbeat_key"\nbeat_job = ""', 'liveness = "job_runs"\nbeat_job = "processar-mensagens-agendadas"'))
    rb_heartbeat = load_runbook(heartbeat)
    assert pr.contract_of(rb_heartbeat).pause.heartbeat_via == ("sistema",)
    assert pr.contract_of(rb_heartbeat).beat is not None
    high_volume = {runtime.executions.table, runtime.queue.table, runtime.pause.table}
    db = ExplainingDatabase(scaled_database, rb.db_session, Redactor(), read_only=True)
    try:
        rows = db.query("SELECT count(*) AS n, min(started_at) AS first FROM job_executions")[0]
        assert rows["n"] > 0.95 * SCALE * JOB_EXECUTIONS_PER_DAY * HISTORY_DAYS, rows
        assert rows["first"] < datetime.now(UTC) - timedelta(days=HISTORY_DAYS - 2), rows
        beats = db.query("SELECT count(*) AS n FROM julia_status WHERE alterado_via = 'sistema'")[0]["n"]
        assert beats > 1400 * HISTORY_DAYS, beats
        db.plans.clear()
        now = pr.db_now(db)
        names = probes_drift.RuntimeNames({}, {})  # every name present: no drift to look for
        warned: list[str] = []
        for book in (rb, rb_heartbeat):
            contract = pr.contract_of(book)
            for check in (test_scheduler.test_one_run_per_cron_slot, test_scheduler.test_jobs_run_on_schedule,
                          test_scheduler.test_other_jobs_run_on_schedule, test_jobs.test_no_stuck_jobs,
                          test_jobs.test_failure_rate, test_pause.test_julia_active,
                          test_queue.test_queue_drained, test_pause.test_nothing_sent_while_paused):
                given = {"db": db, "runbook": book, "runtime": contract, "now": now, "names": names,
                         "warn": warned.append}
                wants = inspect.signature(check).parameters
                try:
                    check(**{k: v for k, v in given.items() if k in wants})
                except (Violation, pytest.skip.Exception):
                    pass  # the seeded state need not be healthy here: only the plans matter
            if contract.beat is not None:
                try:
                    test_scheduler._judge_beat(db, book, contract, now, names, warned.append)
                except Violation:
                    pass
            pr.last_errors(db, book, [job.name for job in contract.jobs], now)
        # The impossible rows were found (and refused) by the checks' own range scans.
        refused = pr.refused_runs(db, rb, {job.name: now - timedelta(minutes=5) for job in runtime.jobs}, now)
        assert sum(len(r) for r in refused.values()) >= 2, refused
        assert [r.refused.column for r in pr.refused_status_rows(db, rb, now)] == ["created_at"]
        assert [r.column for r in pr.refused_queue_rows(db, rb, now)] == ["updated_at"]
        # No decision inside a window two days ahead: the newest one before it is looked up
        # (walking back over heartbeats), then — were there none — the newest heartbeat.
        state = pr.julia_status(db, rb_heartbeat, now + timedelta(days=2))
        assert state is not None and (state.status, state.changed_via) == ("ativo", "manual"), state
    finally:
        db.close()
    touching = [(q, p) for q, p in db.plans if any(t in q for t in high_volume)]
    assert len(touching) >= 6, [q for q, _ in db.plans]
    report = "\n".join(f"{' '.join(q.split())[:90]}…\n    {', '.join(scans(p))} (cost {p['Total Cost']:.0f})"
                       for q, p in touching)
    bad = [(q, s) for q, p in touching for s in seq_scans(p, high_volume)]
    assert not bad, "sequential scans of high-volume tables:\n" + "\n".join(
        f"{s}\n  in: {' '.join(q.split())[:300]}" for q, s in bad) + "\n\nall plans:\n" + report
    # A query about one job must seek that job in the (job_name, started_at) index: walking
    # started_at backwards and filtering the job read 75,000 rows per job at 10× (847 ms).
    walked = [(q, s) for q, p in touching for s in filtered_by(p, high_volume, runtime.executions.job)]
    assert not walked, "job filtered row by row:\n" + "\n".join(
        f"{s}\n  in: {' '.join(q.split())[:300]}" for q, s in walked) + "\n\nall plans:\n" + report
    # PostgreSQL JIT-compiles plans costed above jit_above_cost (default 100,000): ~1 s of
    # compiling per query, for nothing. The checks' sessions turn JIT off; and at the
    # runbook's volume (the costs here are at SCALE×, and grow with the window's rows) every
    # plan stays under the threshold anyway — a plan growing faster than the data fails.
    assert db.jit == "off"
    costly = [f"{p['Total Cost']:.0f}: {' '.join(q.split())[:120]}" for q, p in touching
              if p["Total Cost"] > 100_000 * SCALE]
    assert not costly, f"plans costed above jit_above_cost × {SCALE}:\n" + "\n".join(costly) + "\n\n" + report
    print(report)
