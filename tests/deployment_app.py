"""The deployed system's health endpoints, replayed over loopback from a real stack's state.

The issue's second dialect must be proven against something that speaks it. Rather than
teach the reference app a second language, the proof uses (a) a schema variant of the
reference database (``tests/data/deployment_schema.sql``: no ``_migrations``, the version
in app_settings, the runbook's views as tables, the app's own critical lists, the
deployment's job/queue/status columns) and (b) this loopback server, which answers the
deployment's routes and body shapes *computed from that database and the stack's Redis* at
every request — so a fault injected with SQL or into Redis shows on the next answer, as it
would in production.

Shapes (issue 10's facts): ``/health/ready`` always 200 with ``status``
ready|degraded|not_ready and ``checks.redis`` / ``checks.database`` = ok|error;
``/health/deep`` with parts under ``checks`` (ok|error|warning|CRITICAL|skipped|pending),
top healthy|unhealthy|CRITICAL, ``deploy_safe``, ``version`` and ``schema.fingerprint``, a
guard mismatch answering 503 CRITICAL with the remaining parts ``pending``;
``/health/rate-limit`` ``{"rate_limit": {msgs_hora, limite_hora, msgs_dia, limite_dia}}``;
``/health/circuits`` ``{"circuits": {evolution|claude|supabase: {estado,
falhas_consecutivas}}}``; ``/health/rate``, ``/health/circuit`` and ``/health/schema`` 404.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import redis
from psycopg import sql

from plugins.contract_runtime import RuntimeContract

from fixtures.stack.dbsetup import version_key
from fixtures.stack.refapp.report import CIRCUIT_KEY_PREFIX, RATE_DEFAULT_LIMITS, RATE_KEY_PREFIX, utc_timestamp
from tests.loopback import Canned, LoopbackApi

SCHEMA_VARIANT = Path(__file__).resolve().parent / "data" / "deployment_schema.sql"

# The app's own critical lists (issue 10: "the app's own critical lists").
APP_TABLES = ("clientes", "conversations", "fila_mensagens", "doctor_state", "intent_log",
              "touch_reconciliation_log", "app_settings")
APP_VIEWS = ("campaign_sends", "campaign_metrics")
CIRCUITS = ("evolution", "claude", "supabase")
_TIMEOUT_S = 2


def apply_schema_variant(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        with conn.transaction():
            conn.execute(SCHEMA_VARIANT.read_text(encoding="utf-8"))  # type: ignore[arg-type]


def compact(database_url: str,
            tables: tuple[str, ...] = ("job_executions", "fila_mensagens", "julia_status")) -> None:
    """Rewrite the tables the variant converted (and the history refill replaced), so their
    dead rows are not read as bloat by the maintenance checks: a deployment's autovacuum
    would have reclaimed them long ago."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        for table in tables:
            conn.execute(sql.SQL("VACUUM (FULL, ANALYZE) {}").format(sql.Identifier(table)))


def fill_job_history(database_url: str, contract: RuntimeContract, now: datetime, *,
                     since: datetime | None = None, replace: tuple[str, ...] = ()) -> int:
    """The runs the deployment's scheduler would have recorded, in the contract's own names.

    With ``since`` (building the variant): the history of the jobs in ``replace`` (the
    reference scheduler's, as the variant renamed them) and of the contract's job table is
    replaced by every firing of that table from ``since`` (or two firings back, for jobs
    rarer than that) to ``now``, in each job's time zone. Without it: only the gap since each
    job's last recorded run is filled (a cloned variant is minutes older than its test).
    Every run succeeded.

    Each run of the beat job (``runtime.scheduler.beat_job``) also leaves what the real one
    leaves in the pause table: a heartbeat row in the first active word, by the first of
    ``runtime.pause.heartbeat_via`` (whats-agents app/api/routes/jobs/core.py heartbeat).
    """
    ex, pa = contract.executions, contract.pause
    table = sql.Identifier(ex.table)
    names = [job.name for job in contract.jobs]
    beat = contract.beat
    rows: list[tuple[object, ...]] = []
    beats: list[datetime] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        last: dict[str, datetime] = {}
        if since is not None:
            conn.execute(sql.SQL("DELETE FROM {} WHERE {} = ANY (%s)").format(table, sql.Identifier(ex.job)),
                         ([*names, *replace],))
        else:
            last = {str(n): t for n, t in conn.execute(
                sql.SQL("SELECT {job}, max({started}) FROM {t} WHERE {job} = ANY (%s) GROUP BY 1").format(
                    job=sql.Identifier(ex.job), started=sql.Identifier(ex.started_at), t=table), (names,))}
        for job in contract.jobs:
            if job.name in last:
                start = last[job.name] + timedelta(microseconds=1)
            elif since is not None:
                start = min(since, job.previous_fire(job.previous_fire(now) - timedelta(microseconds=1)))
            else:
                continue
            ms = 60 if job.runs_per_day() >= 1440 else 900
            fires = job.fires_between(start, now)
            rows += [(uuid.uuid4(), job.name, contract.status.success[0], fire, fire + timedelta(milliseconds=ms), ms)
                     for fire in fires]
            if beat is not None and job.name == beat.name and pa.heartbeat_via:
                beats += [fire + timedelta(milliseconds=ms // 2) for fire in fires]
        columns = sql.SQL(", ").join(sql.Identifier(c) for c in (
            ex.id, ex.job, ex.status, ex.started_at, ex.ended_at, ex.duration_ms))
        with conn.cursor() as cur, cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(table, columns)) as copy:
            for row in rows:
                copy.write_row(row)
        if beats:
            beat_columns = sql.SQL(", ").join(sql.Identifier(c) for c in (
                pa.status, pa.reason, pa.changed_via, pa.created_at))
            with conn.cursor() as cur, cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(
                    sql.Identifier(pa.table), beat_columns)) as copy:
                for at in beats:
                    copy.write_row((pa.active[0], "heartbeat", pa.heartbeat_via[0], at))
    return len(rows)


@dataclass(frozen=True)
class DeploymentApp:
    """The deployed app's health logic, as its public behaviour describes it."""

    database_url: str
    redis_url: str
    app_env: str
    project_ref: str
    expected_version: str  # the constant the app's code ships with

    # --- probes ----------------------------------------------------------------------------

    def _redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, socket_timeout=_TIMEOUT_S,
                                    socket_connect_timeout=_TIMEOUT_S, decode_responses=True)

    def _redis_error(self) -> str | None:
        try:
            self._redis().ping()
        except redis.RedisError as exc:
            return type(exc).__name__
        return None

    def _db(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.database_url, connect_timeout=_TIMEOUT_S, autocommit=True)

    def _db_facts(self) -> dict[str, Any]:
        with self._db() as conn:
            kinds = dict(conn.execute(
                "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public' AND c.relname = ANY(%s)", (list(APP_TABLES + APP_VIEWS),)).fetchall())
            settings = dict(conn.execute(
                "SELECT key, value FROM app_settings WHERE key IN "
                "('environment', 'supabase_project_ref', 'schema_version', 'schema_applied_at')").fetchall())
            columns = conn.execute(
                "SELECT string_agg(table_name || '.' || column_name || ':' || data_type, ',' ORDER BY table_name,"
                " column_name) FROM information_schema.columns WHERE table_schema = 'public'").fetchone()
        return {
            "missing_tables": [t for t in APP_TABLES if kinds.get(t) not in ("r", "p")],
            "missing_views": [v for v in APP_VIEWS if kinds.get(v) not in ("v", "m")],
            "settings": settings,
            "fingerprint": hashlib.sha256(str(columns[0] if columns else "").encode()).hexdigest()[:16],
        }

    # --- routes ----------------------------------------------------------------------------

    def liveness(self) -> tuple[int, Any]:
        return 200, {"status": "ok", "service": "julia-api"}

    def ready(self) -> tuple[int, Any]:
        """Always 200: the status word says whether it is ready."""
        redis_ok = self._redis_error() is None
        try:
            with self._db() as conn:
                conn.execute("SELECT 1")
            db_ok = True
        except psycopg.Error:
            db_ok = False
        status = "ready" if redis_ok and db_ok else "degraded" if redis_ok else "not_ready"
        return 200, {"status": status, "checks": {"redis": "ok" if redis_ok else "error",
                                                  "database": "ok" if db_ok else "error"}}

    def deep(self) -> tuple[int, Any]:
        checks: dict[str, dict[str, Any]] = {}
        redis_error = self._redis_error()
        try:
            facts: dict[str, Any] | None = self._db_facts()
            db_error = None
        except psycopg.Error as exc:
            facts, db_error = None, type(exc).__name__
        settings = facts["settings"] if facts else {}
        # The guards run first; a mismatch stops the rest (left "pending").
        env, ref = settings.get("environment"), settings.get("supabase_project_ref")
        guard_words = ("skipped", "skipped") if facts is None else (
            "ok" if env == self.app_env else "CRITICAL", "ok" if ref == self.project_ref else "CRITICAL")
        checks["environment"] = {"status": guard_words[0], "app_env": self.app_env, "db_environment": env}
        checks["project_ref"] = {"status": guard_words[1], "app_project_ref": self.project_ref, "db_project_ref": ref}
        checks["localhost_check"] = {"status": "ok"}
        checks["dev_guardrails"] = {"status": "skipped" if self.app_env != "production" else "ok"}
        mismatch = "CRITICAL" in guard_words
        rest = ("redis", "supabase", "tables", "views", "schema_version", "prompts")
        if mismatch:
            checks.update({name: {"status": "pending"} for name in rest})
        else:
            checks["redis"] = {"status": "ok"} if redis_error is None else {"status": "error", "error": redis_error}
            checks["supabase"] = {"status": "ok"} if db_error is None else {"status": "error", "error": db_error}
            if facts is None:
                checks.update({name: {"status": "skipped"} for name in ("tables", "views", "schema_version")})
            else:
                checks["tables"] = {"status": "error" if facts["missing_tables"] else "ok",
                                    "missing": facts["missing_tables"]}
                checks["views"] = {"status": "error" if facts["missing_views"] else "ok",
                                   "missing": facts["missing_views"]}
                checks["schema_version"] = self._schema_version(settings)
            checks["prompts"] = {"status": "ok"}
        words = {c["status"] for c in checks.values()}
        status = "CRITICAL" if mismatch else "healthy" if words <= {"ok", "warning", "skipped"} else "unhealthy"
        body = {
            "status": status,
            "timestamp": utc_timestamp(),
            "deploy_safe": status == "healthy",
            "version": {"git_sha": "0" * 40, "deployment_id": "loopback-replay",
                        "railway_environment": self.app_env, "run_mode": "api"},
            "schema": {"fingerprint": facts["fingerprint"] if facts else f"fallback-{db_error}"},
            "checks": checks,
        }
        return (200 if status == "healthy" else 503), body

    def _schema_version(self, settings: dict[str, str]) -> dict[str, Any]:
        """ok at the expected version; warning when the database is ahead (migration first,
        code after); error when behind or unknown."""
        current = settings.get("schema_version")
        if current is None or not current.isdigit():
            word = "error"
        elif version_key(current) == version_key(self.expected_version):
            word = "ok"
        else:
            word = "warning" if version_key(current) > version_key(self.expected_version) else "error"
        return {"status": word, "current": current, "expected": self.expected_version,
                "applied_at": settings.get("schema_applied_at")}

    def rate_limit(self) -> tuple[int, Any]:
        try:
            client = self._redis()
            hashes = {ns: client.hgetall(f"{RATE_KEY_PREFIX}{ns}") for ns in RATE_DEFAULT_LIMITS}
        except redis.RedisError as exc:
            return 503, {"error": type(exc).__name__}
        hora, dia = hashes["mensagens_hora"], hashes["mensagens_dia"]
        used_h, limit_h = int(hora.get("used", 0)), int(hora.get("limit", RATE_DEFAULT_LIMITS["mensagens_hora"]))
        used_d, limit_d = int(dia.get("used", 0)), int(dia.get("limit", RATE_DEFAULT_LIMITS["mensagens_dia"]))
        return 200, {"rate_limit": {"msgs_hora": used_h, "limite_hora": limit_h, "msgs_dia": used_d,
                                    "limite_dia": limit_d, "pode_enviar": used_h < limit_h and used_d < limit_d}}

    def circuits(self) -> tuple[int, Any]:
        try:
            states = self._redis().mget([f"{CIRCUIT_KEY_PREFIX}{name}" for name in CIRCUITS])
        except redis.RedisError as exc:
            return 503, {"error": type(exc).__name__}
        return 200, {"circuits": {name: {"estado": state or "closed", "falhas_consecutivas": 0}
                                  for name, state in zip(CIRCUITS, states)}}

    def routes(self) -> dict[str, Callable[[], tuple[int, Any]]]:
        ok = lambda: (200, {"status": "ok"})  # noqa: E731 - routes the checks never read
        return {"/health": self.liveness, "/health/ready": self.ready, "/health/deep": self.deep,
                "/health/rate-limit": self.rate_limit, "/health/circuits": self.circuits,
                "/health/jobs": ok, "/health/fila": ok, "/health/alerts": ok, "/health/score": ok}


@dataclass
class DeploymentApi(LoopbackApi):
    """A LoopbackApi whose routes are the deployment's, computed per request."""

    app: DeploymentApp | None = None

    def answer(self, path: str) -> tuple[int, bytes, str, tuple[tuple[str, str], ...], float]:
        if path not in self.routes and self.app is not None:
            handler = self.app.routes().get(path)
            if handler is not None:
                status, body = handler()
                payload, ctype = Canned(status, body).payload()
                return status, payload, ctype, (), 0.0
        return super().answer(path)
