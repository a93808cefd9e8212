"""The deployed system's health endpoints, replayed over loopback from a real stack's state.

The issue's second dialect must be proven against something that speaks it. Rather than
teach the reference app a second language, the proof uses (a) a schema variant of the
reference database (``tests/data/deployment_schema.sql``: no ``_migrations``, the version
in app_settings, the runbook's views as tables, the app's own critical lists, the
deployment's job/queue/status columns, its prompts) and (b) this loopback server, which
answers the deployment's routes and body shapes *computed from that database and the
stack's Redis* at every request — so a fault injected with SQL or into Redis shows on the
next answer, as it would in production.

The routes, shapes and status rules are the deployed app's own, read from its public code
(rafa77-tech/whats-agents: app/api/routes/health.py and app/services/health/*.py, cited
route by route below, and pinned by tests/test_deployment_twin.py): all 16 ``/health*``
routes; ``/health/rate`` and ``/health/circuit`` answer 404. Its circuit breakers live in
this object's memory, as each real process keeps its own.
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import psycopg
import redis
from psycopg import sql
from psycopg.rows import dict_row

from plugins.contract.runtime import RuntimeContract
from tests.loopback import Canned, LoopbackApi

SCHEMA_VARIANT = Path(__file__).resolve().parent / "data" / "deployment_schema.sql"


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


# --- the deployed API's health routes ------------------------------------------------------
#
# Every rule below is read from the deployed app's public code (rafa77-tech/whats-agents,
# HEAD e8dea89); the file is named beside each. The app's own texts (its Portuguese log and
# alert messages) are not copied: the twin says the same facts in its own words, and the
# checks quote whatever the app says.

# app/services/health/constants.py: the app's critical lists, its expected schema version
# (a constant of the code; the twin is given its own), the prompts contract and the jobs
# whose absence makes /health/jobs critical.
APP_TABLES = ("clientes", "conversations", "fila_mensagens", "doctor_state", "intent_log",
              "touch_reconciliation_log", "app_settings")
APP_VIEWS = ("campaign_sends", "campaign_metrics")
CRITICAL_JOBS = ("processar_fila_mensagens", "processar_campanhas_agendadas", "verificar_whatsapp", "processar_grupos")
JOB_SLA_SECONDS = {
    "processar_fila_mensagens": 180, "processar_campanhas_agendadas": 180, "verificar_whatsapp": 900,
    "processar_grupos": 900, "processar_handoffs": 1800, "verificar_alertas": 2700,
    "verificar_alertas_grupos": 2700, "sincronizar_briefing": 7200, "processar_confirmacao_plantao": 7200,
    "processar_followups": 90000, "processar_pausas_expiradas": 90000, "avaliar_conversas_pendentes": 90000,
    "report_manha": 90000, "report_fim_dia": 90000, "sincronizar_templates": 90000,
    "limpar_grupos_finalizados": 90000, "consolidar_metricas_grupos": 90000,
    "doctor_state_manutencao_diaria": 90000, "report_semanal": 691200, "atualizar_prompt_feedback": 691200,
    "doctor_state_manutencao_semanal": 691200, "processar_retomadas": 259200,
}


@dataclass(frozen=True)
class PromptRule:
    """One required prompt: its minimum length, the sentinels whose absence is an error, and
    those whose absence is a warning."""

    min_len: int
    required: tuple[str, ...] = ()
    warning: tuple[str, ...] = ()


REQUIRED_PROMPTS: dict[str, PromptRule] = {
    "julia_base": PromptRule(2000, (
        "[INVARIANT:INBOUND_ALWAYS_REPLY]", "[INVARIANT:OPTOUT_ABSOLUTE]", "[INVARIANT:KILL_SWITCHES_PRIORITY]",
        "[INVARIANT:NO_CONFIRM_WITHOUT_RESERVATION]", "[INVARIANT:NO_IDENTITY_DEBATE]", "[CAPABILITY:HANDOFF]",
        "[FALLBACK:DIRETRIZES_EMPTY_OK]"),
        ("[INVARIANT:OUTBOUND_QUIET_HOURS]", "[INVARIANT:NO_METACOMMUNICATION]")),
    "julia_primeira_msg": PromptRule(100),
    "julia_tools": PromptRule(300),
}
CIRCUITS = ("evolution", "claude", "supabase")
# app/services/circuit_breaker.py: failures to open, first reset (s), longest reset (s).
BREAKER_SETTINGS = {"evolution": (5, 300, 1800), "claude": (3, 60, 300), "supabase": (5, 30, 120)}
# app/services/grupos/fila.py: the stages of the groups pipeline.
GROUP_STAGES = ("pendente", "heuristica", "classificacao", "extracao", "normalizacao", "deduplicacao",
                "importacao", "finalizado", "erro", "descartado")
BRASILIA = ZoneInfo("America/Sao_Paulo")
# strftime('%A') under the C locale (rate_limiter.py reads the day's name that way).
_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_TIMEOUT_S = 2


def now_utc() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    """Timestamps as the app writes them (``datetime.isoformat()`` of an aware datetime) and
    as PostgREST returns timestamptz columns (UTC offset)."""
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def _said(exc: BaseException) -> str:
    """An exception as ``str(e)`` shows it: the first line."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class NotSingleRow(Exception):
    """What supabase-py raises for ``.single()`` when the filter matches no row: PostgREST
    answers 406 (PGRST116) and postgrest-py raises on any non-2xx."""


class _Session:
    """One request's database connection, opened on first use; a connection that cannot be
    made fails every query of the request with the same error, as every PostgREST call of a
    request fails when the database is down."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: psycopg.Connection[Any] | None = None
        self.error: Exception | None = None

    def rows(self, statement: str | sql.Composable, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        if self.conn is None and self.error is None:
            try:
                self.conn = psycopg.connect(self.url, connect_timeout=_TIMEOUT_S, autocommit=True,
                                            options="-c timezone=UTC", row_factory=dict_row)
            except psycopg.Error as exc:
                self.error = exc
        if self.error is not None:
            raise self.error
        assert self.conn is not None
        with self.conn.cursor() as cur:
            cur.execute(statement, params)  # type: ignore[arg-type]
            return list(cur.fetchall()) if cur.description else []

    def count(self, statement: str, params: tuple[Any, ...] = ()) -> int:
        return int(self.rows(statement, params)[0]["n"])

    def single(self, statement: str, params: tuple[Any, ...] = ()) -> dict[str, Any]:
        rows = self.rows(statement, params)
        if len(rows) != 1:
            raise NotSingleRow(f"PGRST116: JSON object requested, {len(rows)} rows returned")
        return rows[0]

    def function_exists(self, name: str) -> bool:
        return bool(self.rows("SELECT 1 FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = "
                              "p.pronamespace WHERE n.nspname = 'public' AND p.proname = %s", (name,)))

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


class CircuitOpen(Exception):
    """A call refused because its breaker is open (circuit_breaker.py CircuitOpenError)."""


@dataclass
class Breaker:
    """One in-memory circuit breaker of the API process (app/services/circuit_breaker.py):
    closed → open after N consecutive failures (timeouts do not count); open → half_open on
    the first call after the reset time (doubling per failed half-open attempt, capped);
    half_open → closed on a success, back to open on a failure. Every transition is written to
    circuit_transitions when that table exists (errors ignored, as the app does)."""

    nome: str
    falhas_para_abrir: int
    tempo_reset_inicial: int
    tempo_reset_max: int
    estado: str = "closed"
    falhas_consecutivas: int = 0
    ultima_falha: datetime | None = None
    ultimo_sucesso: datetime | None = None
    tentativas_half_open: int = 0
    ultimo_erro_tipo: str | None = None
    record: Callable[[dict[str, Any]], None] | None = field(default=None, repr=False)

    def tempo_reset(self) -> int:
        return min(int(self.tempo_reset_inicial * 2 ** self.tentativas_half_open), self.tempo_reset_max)

    def status(self) -> dict[str, Any]:
        return {"nome": self.nome, "estado": self.estado, "falhas_consecutivas": self.falhas_consecutivas,
                "ultima_falha": iso(self.ultima_falha), "ultimo_sucesso": iso(self.ultimo_sucesso),
                "tentativas_half_open": self.tentativas_half_open, "tempo_reset_atual": self.tempo_reset(),
                "ultimo_erro_tipo": self.ultimo_erro_tipo}

    def transition(self, to: str, reason: str) -> None:
        if to == self.estado:
            return
        before, self.estado = self.estado, to
        if self.record is not None:
            self.record({"circuit_name": self.nome, "from_state": before, "to_state": to, "reason": reason,
                         "falhas_consecutivas": self.falhas_consecutivas,
                         "tentativas_half_open": self.tentativas_half_open})

    def call(self, fn: Callable[[], Any]) -> Any:
        if self.estado == "open" and self.ultima_falha is not None:
            wait = self.tempo_reset()
            if (now_utc() - self.ultima_falha).total_seconds() >= wait:
                self.transition("half_open", f"timeout_reset_{wait}s")
        if self.estado == "open":
            raise CircuitOpen(f"circuit {self.nome} is open")
        try:
            result = fn()
        except Exception as exc:
            self.failure(exc)
            raise
        self.falhas_consecutivas = 0
        self.ultimo_sucesso = now_utc()
        if self.estado == "half_open":
            self.tentativas_half_open = 0
            self.transition("closed", "recuperado")
        return result

    def failure(self, exc: BaseException) -> None:
        self.ultima_falha = now_utc()
        self.ultimo_erro_tipo = _error_type(exc)
        if self.ultimo_erro_tipo == "timeout":
            return  # a timeout updates ultima_falha but does not count
        self.falhas_consecutivas += 1
        if self.estado == "half_open":
            self.tentativas_half_open += 1
            self.transition("open", f"falha_half_open_tentativa_{self.tentativas_half_open}")
        elif self.falhas_consecutivas >= self.falhas_para_abrir:
            self.transition("open", f"muitas_falhas_{self.falhas_consecutivas}")


def _error_type(exc: BaseException) -> str:
    """circuit_breaker.py _classificar_erro: timeout | client_4xx | server_5xx | network | unknown."""
    if isinstance(exc, TimeoutError):
        return "timeout"
    text = str(exc).lower()
    if any(code in text for code in ("400", "401", "403", "404")):
        return "client_4xx"
    if any(code in text for code in ("500", "502", "503", "504")):
        return "server_5xx"
    if any(word in text for word in ("connection", "network", "refused")):
        return "network"
    return "unknown"


def _breakers() -> dict[str, Breaker]:
    return {name: Breaker(name, *BREAKER_SETTINGS[name]) for name in CIRCUITS}


@dataclass
class DeploymentApp:
    """The deployed API's 16 health routes (app/api/routes/health.py), computed per request
    from the twin's database, Redis and process state.

    ``app_env`` and ``project_ref`` are the container's APP_ENV and SUPABASE_PROJECT_REF
    (``""`` = unset); ``expected_version`` is the EXPECTED_SCHEMA_VERSION its code ships with;
    ``env`` holds the other variables the app reads (OUTBOUND_ALLOWLIST, EVOLUTION_API_URL,
    GIT_SHA, RUN_MODE, MAX_MSGS_POR_HORA, PILOT_MODE, …; absent = unset, the app's default).
    The app's REDIS_URL is ``redis_url``, the Redis it really talks to. The circuit breakers
    are this process's memory (``breakers``), as each real process keeps its own.
    """

    database_url: str
    redis_url: str
    app_env: str
    project_ref: str
    expected_version: str
    env: dict[str, str] = field(default_factory=dict)
    breakers: dict[str, Breaker] = field(default_factory=_breakers)
    chip_breakers: dict[str, Breaker] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for breaker in self.breakers.values():
            breaker.record = self._record_transition

    # --- the process's settings (app/core/config.py, app/services/health/constants.py) ----

    def var(self, name: str, default: str = "") -> str:
        if name == "APP_ENV":
            return self.app_env
        if name == "SUPABASE_PROJECT_REF":
            return self.project_ref
        if name == "REDIS_URL":
            return self.redis_url
        return self.env.get(name, default)

    @property
    def is_production(self) -> bool:
        return self.app_env.lower() == "production"

    def _version_var(self, explicit: str, railway: str) -> str:
        """constants.py: the explicit variable unless empty or "unknown", else Railway's, else
        "unknown"."""
        value = self.var(explicit)
        if value and value != "unknown":
            return value
        return self.var(railway) or "unknown"

    def version(self) -> dict[str, str]:
        return {"git_sha": self._version_var("GIT_SHA", "RAILWAY_GIT_COMMIT_SHA"),
                "deployment_id": self._version_var("BUILD_TIME", "RAILWAY_DEPLOYMENT_ID"),
                "railway_environment": self.var("RAILWAY_ENVIRONMENT", "unknown"),
                "run_mode": self.var("RUN_MODE", "unknown")}

    def runtime_endpoints(self) -> dict[str, str]:
        """config.py runtime_endpoints: each service URL's host only."""
        def host(url: str) -> str:
            if not url:
                return "(not configured)"
            try:
                parsed = urlsplit(url)
            except ValueError:
                return "(parse error)"
            return parsed.netloc or parsed.path.split("/")[0] or "(invalid)"

        supabase = self.var("SUPABASE_URL")
        return {"evolution_host": host(self.var("EVOLUTION_API_URL")), "chatwoot_host": host(self.var("CHATWOOT_URL")),
                "redis_host": host(self.redis_url), "julia_api_host": host(self.var("JULIA_API_URL")),
                "chip_activator_host": host(self.var("CHIP_ACTIVATOR_URL")),
                "supabase_project": host(supabase).split(".")[0] if supabase else "(not configured)"}

    def localhost_urls(self) -> list[str]:
        """config.py has_localhost_urls: NAME=url for each of four service URLs on localhost."""
        found = []
        for name in ("EVOLUTION_API_URL", "CHATWOOT_URL", "REDIS_URL", "JULIA_API_URL"):
            url = self.var(name)
            if url and any(p in url.lower() for p in ("localhost", "127.0.0.1", "0.0.0.0")):
                found.append(f"{name}={url}")
        return found

    def allowlist(self) -> set[str]:
        """config.py outbound_allowlist_numbers: the digits of each comma-separated number."""
        raw = self.var("OUTBOUND_ALLOWLIST")
        return {"".join(c for c in n if c.isdigit()) for n in raw.split(",") if n.strip()} if raw else set()

    # --- the process's clients ------------------------------------------------------------

    def _redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, socket_timeout=_TIMEOUT_S,
                                    socket_connect_timeout=_TIMEOUT_S, decode_responses=True)

    def _redis_ok(self) -> bool:
        """app/services/redis.py verificar_conexao_redis: a PING; any error is False."""
        try:
            return bool(self._redis().ping())
        except redis.RedisError:
            return False

    def _cache_get(self, key: str) -> dict[str, Any] | None:
        try:
            raw = self._redis().get(key)
        except redis.RedisError:
            return None
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return None

    def _cache_set(self, key: str, value: dict[str, Any], ttl: int) -> None:
        try:
            self._redis().setex(key, ttl, json.dumps(value, ensure_ascii=False))
        except redis.RedisError:
            pass

    def _record_transition(self, row: dict[str, Any]) -> None:
        session = _Session(self.database_url)
        try:
            session.rows("INSERT INTO circuit_transitions (circuit_name, from_state, to_state, reason, "
                         "falhas_consecutivas, tentativas_half_open, created_at) VALUES (%s, %s, %s, %s, %s, %s, now())",
                         (row["circuit_name"], row["from_state"], row["to_state"], row["reason"],
                          row["falhas_consecutivas"], row["tentativas_half_open"]))
        except psycopg.Error:
            pass
        finally:
            session.close()

    def set_circuit(self, name: str, estado: str, falhas: int | None = None) -> None:
        """Put a breaker in a state, as the process's own calls would have left it (the fault
        tests' means: the state lives in the API process's memory, nowhere else)."""
        breaker = self.breakers[name]
        breaker.estado = estado
        if falhas is not None:
            breaker.falhas_consecutivas = falhas
        elif estado == "open":
            breaker.falhas_consecutivas = breaker.falhas_para_abrir
        if estado != "closed":
            breaker.ultima_falha = now_utc()

    def _evolution(self) -> Any:
        """EvolutionClient.verificar_conexao through the evolution breaker (whatsapp.py): GET
        {EVOLUTION_API_URL}/instance/connectionState/{EVOLUTION_INSTANCE}. One attempt (the app
        retries network errors with back-off before its breaker counts one failure)."""
        def get() -> Any:
            base = self.var("EVOLUTION_API_URL")
            if not base.startswith(("http://", "https://")):
                raise ValueError(f"unsupported URL {base!r}: no http:// or https://")
            url = f"{base.rstrip('/')}/instance/connectionState/{self.var('EVOLUTION_INSTANCE', 'Revoluna')}"
            request = urllib.request.Request(url, headers={"apikey": self.var("EVOLUTION_API_KEY")})
            try:
                with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as resp:
                    return json.loads(resp.read() or b"null")
            except urllib.error.HTTPError as exc:
                raise RuntimeError(f"HTTP {exc.code} from {url}") from None
            except urllib.error.URLError as exc:
                if isinstance(exc.reason, TimeoutError):
                    raise TimeoutError(f"timeout calling {url}") from None
                raise ConnectionError(f"connection error calling {url}: {exc.reason}") from None

        return self.breakers["evolution"].call(get)

    @staticmethod
    def _evolution_state(status: Any) -> str | None:
        """health.py / connectivity.py: instance.state when the answer has "instance", else state."""
        if not status or not isinstance(status, dict):
            return None
        node = status.get("instance", {}) if "instance" in status else status
        return node.get("state") if isinstance(node, dict) else None

    # --- routes ------------------------------------------------------------------------------

    def liveness(self) -> tuple[int, Any]:
        """health.py health_check: no I/O, always 200."""
        return 200, {"status": "healthy", "timestamp": iso(now_utc()), "service": "julia-api"}

    def ready(self) -> tuple[int, Any]:
        """health.py readiness_check: always 200; ready / degraded (database ok, Redis not) /
        not_ready (database failed). Evolution is reported but never decides."""
        checks: dict[str, Any] = {"redis": "ok" if self._redis_ok() else "error"}
        session = _Session(self.database_url)
        try:
            session.rows("SELECT id FROM clientes LIMIT 1")
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"], checks["database_error"] = "error", _said(exc)
        finally:
            session.close()
        try:
            checks["evolution"] = "ok" if self._evolution_state(self._evolution()) == "open" else "degraded"
        except Exception:
            checks["evolution"] = "unknown"
        ok = checks["redis"] == "ok" and checks["database"] == "ok"
        status = "ready" if ok else "degraded" if checks["database"] == "ok" else "not_ready"
        return 200, {"status": status, "checks": checks, "timestamp": iso(now_utc())}

    def deep(self) -> tuple[int, Any]:
        """app/services/health/deep.py executar_deep_health_check, in its order: the two
        guards (a CRITICAL one returns at once, 503, the rest "pending"), localhost, dev
        guardrails, Redis and prompts, Supabase, tables, views, schema version; healthy/200
        only when nothing set all_ok false (a schema version behind, or unreadable, does not)."""
        checks: dict[str, dict[str, Any]] = {
            "environment": {"status": "pending", "app_env": self.app_env, "db_env": None},
            "project_ref": {"status": "pending", "app_ref": self.project_ref, "db_ref": None},
            "localhost_check": {"status": "pending"}, "dev_guardrails": {"status": "pending"},
            "redis": {"status": "pending", "message": None}, "supabase": {"status": "pending", "message": None},
            "tables": {"status": "pending", "missing": []}, "views": {"status": "pending", "missing": []},
            "schema_version": {"status": "pending", "current": None, "expected": self.expected_version},
            "prompts": {"status": "pending"},
        }
        session = _Session(self.database_url)
        try:
            return self._deep(session, checks)
        finally:
            session.close()

    def _deep(self, session: _Session, checks: dict[str, dict[str, Any]]) -> tuple[int, Any]:
        all_ok, critical = True, False
        for part, key, mine, db_field in (("environment", "environment", self.app_env, "db_env"),
                                          ("project_ref", "supabase_project_ref", self.project_ref, "db_ref")):
            if part == "project_ref" and not self.project_ref:
                checks[part]["status"] = "skipped"
                checks[part]["message"] = "SUPABASE_PROJECT_REF is not set: guard not run"
                continue
            try:
                found = session.single("SELECT value FROM app_settings WHERE key = %s", (key,))["value"]
            except Exception as exc:  # a missing row included: an error, not a mismatch
                checks[part]["status"], checks[part]["message"] = "error", _said(exc)
                all_ok = False
                continue
            checks[part][db_field] = found
            if found == mine:
                checks[part]["status"] = "ok"
            else:
                checks[part]["status"] = "CRITICAL"
                checks[part]["message"] = f"{part} mismatch: the container has {mine!r}, app_settings {found!r}"
                all_ok, critical = False, True
        if critical:
            return 503, {"status": "CRITICAL", "message": "deployed against the wrong environment: roll back now",
                         "checks": checks, "runtime_endpoints": self.runtime_endpoints(), "deploy_safe": False,
                         "timestamp": iso(now_utc())}

        violations = self.localhost_urls()
        checks["localhost_check"] = {"status": "ok", "violations": violations,
                                     "runtime_endpoints": self.runtime_endpoints()}
        if violations and self.is_production:
            checks["localhost_check"].update(status="CRITICAL", message=f"localhost URLs in production: {violations}")
            all_ok = False
        elif violations:
            checks["localhost_check"].update(status="warning",
                                             message=f"localhost URLs (fine for local development): {violations}")

        if self.is_production:
            checks["dev_guardrails"] = {"status": "skipped", "message": "production: dev guardrails do not apply",
                                        "app_env": self.app_env, "is_production": True}
        else:
            numbers = self.allowlist()
            checks["dev_guardrails"] = {"status": "ok", "app_env": self.app_env, "is_production": False,
                                        "allowlist_configured": bool(numbers), "allowlist_count": len(numbers)}
            if not numbers:
                checks["dev_guardrails"].update(
                    status="CRITICAL",
                    message="OUTBOUND_ALLOWLIST is empty outside production: every outbound message is blocked")
                all_ok = False

        if self._redis_ok():
            checks["redis"]["status"] = "ok"
        else:
            checks["redis"].update(status="error", message="Redis PING failed")
            all_ok = False
        checks["prompts"] = self._prompts(session)
        if checks["prompts"]["status"] == "error":
            all_ok = False

        try:
            session.rows("SELECT id FROM clientes LIMIT 1")
            checks["supabase"]["status"] = "ok"
        except Exception as exc:
            checks["supabase"].update(status="error", message=_said(exc))
            all_ok = False
        for part, names in (("tables", APP_TABLES), ("views", APP_VIEWS)):
            for name in names:
                try:
                    session.rows(sql.SQL("SELECT * FROM {} LIMIT 1").format(sql.Identifier(name)))
                except Exception:
                    checks[part]["missing"].append(name)
            checks[part]["status"] = "error" if checks[part]["missing"] else "ok"
            all_ok = all_ok and not checks[part]["missing"]
        try:
            current = session.single("SELECT value FROM app_settings WHERE key = 'schema_version'")["value"]
            checks["schema_version"]["current"] = current
            if current and current >= self.expected_version:  # a string comparison, as the app's
                checks["schema_version"]["status"] = "ok"
            else:
                checks["schema_version"].update(
                    status="warning", message=f"schema behind the code: {current} < {self.expected_version}")
        except Exception as exc:  # e.g. no schema_version row: an error that leaves all_ok alone
            checks["schema_version"].update(status="error", message=_said(exc))

        return (200 if all_ok else 503), {
            "status": "healthy" if all_ok else "unhealthy", "version": self.version(),
            "runtime_endpoints": self.runtime_endpoints(), "schema": self._fingerprint(session), "checks": checks,
            "deploy_safe": all_ok, "timestamp": iso(now_utc())}

    def _prompts(self, session: _Session) -> dict[str, Any]:
        """app/services/health/schema.py verificar_contrato_prompts: each required prompt must
        exist, be active, be long enough and carry its required sentinels (error); a missing
        warning sentinel is a warning."""
        result: dict[str, Any] = {"status": "pending", "missing": [], "inactive": [], "too_short": [],
                                  "missing_sentinels": [], "missing_warnings": [], "versions": {}}
        try:
            rows = session.rows("SELECT nome, versao, ativo, conteudo FROM prompts WHERE nome = ANY(%s)",
                                (list(REQUIRED_PROMPTS),))
        except Exception as exc:
            result.update(status="error", message=_said(exc))
            return result
        found = {r["nome"]: r for r in rows}
        error = warning = False
        for name, rule in REQUIRED_PROMPTS.items():
            row = found.get(name)
            if not row:
                result["missing"].append(name)
                error = True
                continue
            if not row["ativo"]:
                result["inactive"].append(name)
                error = True
                continue
            result["versions"][name] = row["versao"]
            text = row["conteudo"] or ""
            if len(text) < rule.min_len:
                result["too_short"].append({"nome": name, "len": len(text), "min": rule.min_len})
                error = True
            for sentinel in rule.required:
                if sentinel not in text:
                    result["missing_sentinels"].append({"prompt": name, "sentinel": sentinel})
                    error = True
            for sentinel in rule.warning:
                if sentinel not in text:
                    result["missing_warnings"].append({"prompt": name, "sentinel": sentinel})
                    warning = True
        result["status"] = "error" if error else "warning" if warning else "ok"
        return result

    def _fingerprint(self, session: _Session) -> dict[str, Any]:
        """schema.py gerar_schema_fingerprint: sha256 of "table:column:type:nullable|" over the
        critical tables' columns, from the RPC get_table_columns_for_fingerprint. The RPC is in
        no file of the app's repository (bootstrap or migrations): where the database lacks it,
        the app's call fails and it answers its fallback fingerprint, as the twin does."""
        tables = list(APP_TABLES)
        try:
            if not session.function_exists("get_table_columns_for_fingerprint"):
                raise LookupError("PGRST202: function public.get_table_columns_for_fingerprint(table_names) "
                                  "not found in the schema cache")
            columns = session.rows("SELECT * FROM get_table_columns_for_fingerprint(%s)", (tables,))
            if not columns:
                return {"fingerprint": "error", "error": "no schema information", "tables_checked": tables}
            text = "".join(f"{c.get('table_name', '')}:{c.get('column_name', '')}:{c.get('data_type', '')}:"
                           f"{c.get('is_nullable', '')}|" for c in sorted(
                               columns, key=lambda c: (c.get("table_name", ""), c.get("column_name", ""))))
            return {"fingerprint": hashlib.sha256(text.encode()).hexdigest()[:16], "tables_checked": tables,
                    "columns_count": len(columns)}
        except Exception as exc:
            simple = hashlib.sha256("|".join(sorted(tables)).encode()).hexdigest()[:16]
            return {"fingerprint": f"fallback-{simple}", "tables_checked": tables, "error": _said(exc)}

    def schema(self) -> tuple[int, Any]:
        """health.py schema_info: always 200; {"error", "timestamp"} when it fails."""
        session = _Session(self.database_url)
        try:
            rows = session.rows("SELECT key, value FROM app_settings WHERE key IN ('schema_version', "
                                "'schema_applied_at')")
            found = {r["key"]: r["value"] for r in rows}
            current = found.get("schema_version")
            return 200, {"current_version": current, "expected_version": self.expected_version,
                         "schema_up_to_date": current >= self.expected_version if current else False,
                         "applied_at": found.get("schema_applied_at"),
                         "fingerprint": self._fingerprint(session).get("fingerprint"),
                         "critical_tables": list(APP_TABLES), "critical_views": list(APP_VIEWS),
                         "timestamp": iso(now_utc())}
        except Exception as exc:
            return 200, {"error": _said(exc), "timestamp": iso(now_utc())}
        finally:
            session.close()

    def rate_limit(self) -> tuple[int, Any]:
        """rate_limiter.py obter_estatisticas: the Redis strings rate:hora:YYYYMMDDHH and
        rate:dia:YYYYMMDD of Brasília's clock; any error (Redis down, a counter that is not
        an integer) answers an empty object. Always 200."""
        return 200, {"rate_limit": self.rate_stats(), "timestamp": iso(now_utc())}

    def rate_stats(self, at: datetime | None = None) -> dict[str, Any]:
        local = (at or now_utc()).astimezone(BRASILIA)
        try:
            client = self._redis()
            hora = client.get(f"rate:hora:{local:%Y%m%d%H}")
            dia = client.get(f"rate:dia:{local:%Y%m%d}")
            return {"msgs_hora": int(hora) if hora else 0, "limite_hora": int(self.var("MAX_MSGS_POR_HORA", "20")),
                    "msgs_dia": int(dia) if dia else 0, "limite_dia": int(self.var("MAX_MSGS_POR_DIA", "100")),
                    # Monday to Friday, 08:00 to 20:00 (the DatabaseConfig hours, not the env's)
                    "horario_permitido": local.weekday() <= 4 and 8 <= local.hour < 20,
                    "hora_atual": f"{local:%H:%M}", "dia_semana": _DAY_NAMES[local.weekday()]}
        except (redis.RedisError, ValueError):
            return {}

    def circuits(self) -> tuple[int, Any]:
        """health.py circuit_status: this process's breakers."""
        return 200, {"circuits": {name: b.status() for name, b in self.breakers.items()}, "timestamp": iso(now_utc())}

    def circuits_history(self, query: dict[str, str]) -> tuple[int, Any]:
        """health.py circuit_breaker_history (+ circuit_breaker.py obter_historico_transicoes):
        circuit_transitions of the last ``horas`` hours, newest first, at most 100."""
        name = query.get("circuit_name") or None
        try:
            hours = int(query.get("horas", "24"))
        except ValueError:
            return 422, {"detail": [{"loc": ["query", "horas"], "msg": "Input should be a valid integer",
                                     "type": "int_parsing"}]}
        session = _Session(self.database_url)
        try:
            rows = session.rows(
                "SELECT * FROM circuit_transitions WHERE created_at >= now() - make_interval(hours => %s)"
                + (" AND circuit_name = %s" if name else "") + " ORDER BY created_at DESC LIMIT 100",
                (hours, name) if name else (hours,))
            rows = [{k: iso(v) if isinstance(v, datetime) else str(v) if isinstance(v, uuid.UUID) else v
                     for k, v in r.items()} for r in rows]
            by: dict[str, list[dict[str, Any]]] = {}
            for r in rows:
                by.setdefault(r.get("circuit_name", "unknown"), []).append(
                    {"from": r.get("from_state"), "to": r.get("to_state"), "reason": r.get("reason"),
                     "falhas": r.get("falhas_consecutivas"), "at": r.get("created_at")})
            return 200, {"circuit_filter": name, "period_hours": hours, "total_transitions": len(rows),
                         "by_circuit": by, "transitions": rows[:50], "timestamp": iso(now_utc())}
        except Exception as exc:
            return 200, {"error": _said(exc), "timestamp": iso(now_utc())}
        finally:
            session.close()

    def whatsapp(self) -> tuple[int, Any]:
        """connectivity.py verificar_evolution."""
        instance = self.var("EVOLUTION_INSTANCE", "Revoluna")
        try:
            status = self._evolution()
            state = self._evolution_state(status)
            body: dict[str, Any] = {"connected": state == "open", "instance": instance, "state": state or "unknown",
                                    "details": status}
        except Exception as exc:
            body = {"connected": False, "instance": instance, "state": "error", "error": _said(exc)}
        return 200, {**body, "timestamp": iso(now_utc())}

    def grupos(self) -> tuple[int, Any]:
        """health.py grupos_worker_health (+ app/services/grupos/fila.py): the pipeline's count
        per stage and the items idle for over an hour (at most 100 read, so the thresholds of
        100 and 500 are never passed)."""
        session = _Session(self.database_url)
        try:
            stats = {stage: session.count("SELECT count(*) AS n FROM fila_processamento_grupos WHERE estagio = %s",
                                          (stage,)) for stage in GROUP_STAGES}
            stats["erros_max_tentativas"] = session.count(
                "SELECT count(*) AS n FROM fila_processamento_grupos WHERE tentativas >= 3")
            stuck = session.rows(
                "SELECT id FROM fila_processamento_grupos WHERE estagio <> ALL(%s) AND updated_at < now() - "
                "interval '1 hour' ORDER BY updated_at LIMIT 100", (["finalizado", "descartado", "erro"],))
            status = "unhealthy" if len(stuck) > 500 else "degraded" if len(stuck) > 100 else "healthy"
            return 200, {"status": status, "fila": stats, "travados": {
                "count": len(stuck), "threshold_degraded": 100, "threshold_unhealthy": 500}, "timestamp": iso(now_utc())}
        except Exception as exc:
            return 200, {"status": "error", "error": _said(exc), "timestamp": iso(now_utc())}
        finally:
            session.close()

    def jobs(self) -> tuple[int, Any]:
        """app/services/health/jobs_monitor.py obter_status_jobs: the last 24 h of
        job_executions per job; degraded on any error/timeout run, critical when a critical
        job has no run in the window. Its staleness test subtracts a naive datetime from an
        aware one and swallows the TypeError, so seconds_since_last_run is always null and no
        job is ever stale — the twin answers the same."""
        session = _Session(self.database_url)
        try:
            rows = session.rows(
                "SELECT job_name, started_at, finished_at, status, duration_ms, items_processed, error FROM "
                "job_executions WHERE started_at >= now() - interval '24 hours' ORDER BY started_at DESC")
        except Exception as exc:
            session.close()
            return 200, {"status": "error", "error": _said(exc), "timestamp": iso(now_utc())}
        session.close()
        summary: dict[str, dict[str, Any]] = {}
        durations: dict[str, list[int]] = {}
        for ex in rows:
            name = ex["job_name"]
            s = summary.setdefault(name, {
                "last_run": None, "last_status": None, "runs_24h": 0, "success_24h": 0, "errors_24h": 0,
                "timeouts_24h": 0, "avg_duration_ms": 0, "total_items_processed": 0, "last_error": None,
                "sla_seconds": JOB_SLA_SECONDS.get(name), "is_stale": False, "seconds_since_last_run": None})
            s["runs_24h"] += 1
            if s["last_run"] is None:
                s["last_run"], s["last_status"] = iso(ex["started_at"]), ex["status"]
            if ex["status"] == "success":
                s["success_24h"] += 1
            elif ex["status"] == "error":
                s["errors_24h"] += 1
                if s["last_error"] is None:
                    s["last_error"] = ex["error"]
            elif ex["status"] == "timeout":
                s["timeouts_24h"] += 1
            if ex["duration_ms"]:
                durations.setdefault(name, []).append(ex["duration_ms"])
            if ex["items_processed"]:
                s["total_items_processed"] += ex["items_processed"]
        for name, values in durations.items():
            summary[name]["avg_duration_ms"] = int(sum(values) / len(values))
        errors = [n for n, s in summary.items() if s["errors_24h"] > 0]
        timeouts = [n for n, s in summary.items() if s["timeouts_24h"] > 0]
        missing = [j for j in CRITICAL_JOBS if j not in summary]
        status = "critical" if missing else "degraded" if errors or timeouts else "healthy"
        return 200, {"status": status, "jobs": summary, "alerts": {
            "jobs_with_errors": errors, "jobs_with_timeouts": timeouts, "stale_jobs": [], "critical_stale": [],
            "missing_critical": missing}, "sla_config": {"critical_jobs": list(CRITICAL_JOBS),
                                                          "sla_definitions": JOB_SLA_SECONDS},
            "period": "24h", "total_executions": len(rows), "timestamp": iso(now_utc())}

    def _queue_stats(self, session: _Session) -> dict[str, Any]:
        """app/services/fila.py obter_estatisticas_completas: six reads of fila_mensagens (the
        errors of the last hour are counted by updated_at)."""
        n = session.count
        pendentes = n("SELECT count(*) AS n FROM fila_mensagens WHERE status = 'pendente'")
        processando = n("SELECT count(*) AS n FROM fila_mensagens WHERE status = 'processando'")
        enviadas = n("SELECT count(*) AS n FROM fila_mensagens WHERE status = 'enviada' AND enviada_em >= "
                     "now() - interval '1 hour'")
        erros = n("SELECT count(*) AS n FROM fila_mensagens WHERE status = 'erro' AND updated_at >= "
                  "now() - interval '1 hour'")
        travadas = n("SELECT count(*) AS n FROM fila_mensagens WHERE status = 'processando' AND "
                     "processando_desde < now() - interval '1 hour'")
        oldest = session.rows("SELECT created_at FROM fila_mensagens WHERE status = 'pendente' "
                              "ORDER BY created_at LIMIT 1")
        age = round((now_utc() - oldest[0]["created_at"]).total_seconds() / 60, 1) if oldest else None
        return {"pendentes": pendentes, "processando": processando, "enviadas_ultima_hora": enviadas,
                "erros_ultima_hora": erros, "mensagem_mais_antiga_min": age, "travadas": travadas}

    def fila(self) -> tuple[int, Any]:
        """app/services/health/fila.py obter_saude_fila: the rules in the app's order (a backlog
        over 100 sets degraded even after a critical)."""
        session = _Session(self.database_url)
        try:
            stats = self._queue_stats(session)
        except Exception as exc:
            return 200, {"status": "error", "error": _said(exc), "timestamp": iso(now_utc())}
        finally:
            session.close()
        status, alerts = "healthy", []
        if stats["travadas"] > 0:
            status = "degraded"
            alerts.append(f"{stats['travadas']} stuck messages")
        if stats["travadas"] > 10:
            status = "critical"
            alerts.append("too many stuck messages")
        if stats["pendentes"] > 100:
            status = "degraded"
            alerts.append(f"backlog: {stats['pendentes']} pending")
        if stats["pendentes"] > 500:
            status = "critical"
            alerts.append("critical backlog")
        if stats["erros_ultima_hora"] > 10:
            status = status if status == "critical" else "degraded"
            alerts.append(f"{stats['erros_ultima_hora']} errors in the last hour")
        age = stats["mensagem_mais_antiga_min"]
        if age and age > 60:
            status = status if status == "critical" else "degraded"
            alerts.append(f"oldest pending message: {age:.1f} min")
        return 200, {"status": status, "alerts": alerts, "metrics": stats, "thresholds": {
            "backlog_warning": 100, "backlog_critical": 500, "travadas_warning": 1, "travadas_critical": 10,
            "erros_hora_warning": 10, "idade_warning_min": 60}, "timestamp": iso(now_utc())}

    def _active_chips(self, session: _Session, columns: str, order: str = "") -> list[dict[str, Any]]:
        return session.rows(f"SELECT {columns} FROM chips WHERE status = 'active'{order}")

    def alerts(self) -> tuple[int, Any]:
        """app/services/health/alerts.py coletar_alertas_sistema: queue, circuits and chips
        alerts, cached 15 s in Redis under health:alerts; status critical / warning / ok (an
        alert of severity error changes nothing)."""
        cached = self._cache_get("health:alerts")
        if cached:
            return 200, {**cached, "timestamp": iso(now_utc())}
        found: list[dict[str, Any]] = []
        session = _Session(self.database_url)
        try:
            try:
                stats = self._queue_stats(session)
                if stats["travadas"] > 0:
                    found.append({"severity": "warning" if stats["travadas"] < 10 else "critical", "source": "fila",
                                  "message": f"{stats['travadas']} stuck messages", "value": stats["travadas"]})
                if stats["pendentes"] > 100:
                    found.append({"severity": "warning" if stats["pendentes"] < 500 else "critical",
                                  "source": "fila", "message": f"backlog: {stats['pendentes']} pending",
                                  "value": stats["pendentes"]})
            except Exception as exc:
                found.append({"severity": "error", "source": "fila", "message": f"queue unreadable: {_said(exc)}"})
            for name, b in self.breakers.items():
                if b.estado == "open":
                    found.append({"severity": "critical", "source": "circuit_breaker",
                                  "message": f"circuit {name} is open", "circuit": name,
                                  "falhas": b.falhas_consecutivas})
                elif b.estado == "half_open":
                    found.append({"severity": "warning", "source": "circuit_breaker",
                                  "message": f"circuit {name} is testing recovery", "circuit": name})
            try:
                chips = self._active_chips(session, "id, trust_score, evolution_connected, status")
                total = len(chips)
                connected = len([c for c in chips if c["evolution_connected"]])
                weak = len([c for c in chips if (c["trust_score"] or 0) < 40])
                if total == 0:
                    found.append({"severity": "critical", "source": "chips", "message": "chip pool empty"})
                elif connected == 0:
                    found.append({"severity": "critical", "source": "chips", "message": "no chip connected"})
                elif connected < total * 0.5:
                    found.append({"severity": "warning", "source": "chips",
                                  "message": f"few chips connected: {connected}/{total}", "conectados": connected,
                                  "total": total})
                if weak > total * 0.3:
                    found.append({"severity": "warning", "source": "chips",
                                  "message": f"many critical chips: {weak}/{total}", "criticos": weak})
            except Exception as exc:
                found.append({"severity": "error", "source": "chips", "message": f"chips unreadable: {_said(exc)}"})
        finally:
            session.close()
        order = {"critical": 0, "error": 1, "warning": 2, "info": 3}
        found.sort(key=lambda a: order.get(a.get("severity", "info"), 99))
        severities = {a["severity"] for a in found}
        result = {"status": "critical" if "critical" in severities else "warning" if "warning" in severities
                  else "ok", "total_alerts": len(found), "alerts": found}
        self._cache_set("health:alerts", result, 15)
        return 200, {**result, "timestamp": iso(now_utc())}

    def score(self) -> tuple[int, Any]:
        """app/services/health/scoring.py calcular_health_score: connectivity 30 (Redis,
        Evolution open 10 / other state 5, Supabase), queue 25, chips 25, circuits 20; cached
        15 s under health:score."""
        cached = self._cache_get("health:score")
        if cached:
            return 200, {**cached, "timestamp": iso(now_utc())}
        session = _Session(self.database_url)
        try:
            connectivity = 10 if self._redis_ok() else 0
            try:
                state = self._evolution_state(self._evolution())
                connectivity += 10 if state == "open" else 5 if state else 0
            except Exception:
                pass
            try:
                session.rows("SELECT id FROM clientes LIMIT 1")
                connectivity += 10
            except Exception:
                pass
            try:
                stats = self._queue_stats(session)
                queue = 25 - (15 if stats["pendentes"] > 500 else 5 if stats["pendentes"] > 100 else 0) \
                    - (10 if stats["travadas"] > 10 else 5 if stats["travadas"] > 0 else 0) \
                    - (10 if stats["erros_ultima_hora"] > 20 else 5 if stats["erros_ultima_hora"] > 5 else 0)
                queue = max(0, queue)
            except Exception:
                queue = 0
            try:
                chips = self._active_chips(session, "id, trust_score, evolution_connected")
                if not chips:
                    chip_score = 0
                else:
                    connected = len([c for c in chips if c["evolution_connected"]]) / len(chips)
                    healthy = len([c for c in chips if (c["trust_score"] or 0) >= 60]) / len(chips)
                    chip_score = max(0, 25 - (15 if connected < 0.5 else 5 if connected < 0.8 else 0)
                                     - (10 if healthy < 0.3 else 5 if healthy < 0.5 else 0))
            except Exception:
                chip_score = 0
        finally:
            session.close()
        circuits = max(0, 20 - sum(8 if b.estado == "open" else 3 if b.estado == "half_open" else 0
                                   for b in self.breakers.values()))
        total = connectivity + queue + chip_score + circuits
        level, color = (("healthy", "green") if total >= 80 else ("attention", "yellow") if total >= 60
                        else ("degraded", "orange") if total >= 40 else ("critical", "red"))
        result = {"score": total, "max_score": 100, "level": level, "color": color, "breakdown": {
            "connectivity": {"score": connectivity, "max": 30}, "fila": {"score": queue, "max": 25},
            "chips": {"score": chip_score, "max": 25}, "circuits": {"score": circuits, "max": 20}},
            "thresholds": {"healthy": 80, "attention": 60, "degraded": 40, "critical": 0}}
        self._cache_set("health:score", result, 15)
        return 200, {**result, "timestamp": iso(now_utc())}

    def telefones(self) -> tuple[int, Any]:
        """health.py telefones_validation_status (+ app/services/validacao_telefone.py): counts
        by phone status from the RPC count_by_status_telefone, or by clientes.status_telefone
        when the RPC returns nothing; any error (the RPC missing included) is {}. Status
        degraded over 10,000 pending, "warning" over 50,000."""
        session = _Session(self.database_url)
        stats: dict[str, int] = {}
        try:
            if not session.function_exists("count_by_status_telefone"):
                raise LookupError("PGRST202: function public.count_by_status_telefone not found")
            rows = session.rows("SELECT * FROM count_by_status_telefone()")
            if rows:
                stats = {r["status"]: r["count"] for r in rows}
            else:
                stats = {s: session.count("SELECT count(*) AS n FROM clientes WHERE status_telefone = %s", (s,))
                         for s in ("pendente", "validando", "validado", "invalido", "erro")}
        except Exception:
            stats = {}
        finally:
            session.close()
        total = sum(stats.values())
        pending = stats.get("pendente", 0)
        status = "warning" if pending > 50000 else "degraded" if pending > 10000 else "healthy"
        return 200, {"status": status, "stats": stats, "total": total,
                     "taxa_validos_pct": round(stats.get("validado", 0) / total * 100, 2) if total else 0,
                     "taxa_invalidos_pct": round(stats.get("invalido", 0) / total * 100, 2) if total else 0,
                     "backlog_pendentes": pending, "timestamp": iso(now_utc())}

    def pilot(self) -> tuple[int, Any]:
        """app/workers/pilot_mode.py get_pilot_status (+ config.py): PILOT_MODE (default true)
        switches every autonomous feature off; else each *_ENABLED flag (default false)."""
        def flag(name: str, default: bool) -> bool:
            raw = self.var(name)
            return default if raw == "" else raw.strip().lower() in ("1", "true", "yes", "on")

        pilot = flag("PILOT_MODE", True)
        names = {"discovery_automatico": "DISCOVERY_AUTOMATICO_ENABLED",
                 "oferta_automatica": "OFERTA_AUTOMATICA_ENABLED",
                 "reativacao_automatica": "REATIVACAO_AUTOMATICA_ENABLED",
                 "feedback_automatico": "FEEDBACK_AUTOMATICO_ENABLED"}
        features = {k: False if pilot else flag(v, False) for k, v in names.items()}
        enabled = sum(features.values())
        message = ("pilot mode on: every autonomous action is off" if pilot else
                   f"{enabled}/{len(features)} autonomous features on")
        return 200, {"pilot_mode": pilot, "features": features, "enabled_count": enabled,
                     "total_count": len(features), "message": message, "timestamp": iso(now_utc())}

    def chips(self) -> tuple[int, Any]:
        """app/services/health/chips.py obter_saude_chips: the active chips by trust score
        with their own in-memory breakers, cached 30 s under health:chips."""
        cached = self._cache_get("health:chips")
        if cached:
            return 200, {**cached, "timestamp": iso(now_utc())}
        session = _Session(self.database_url)
        try:
            chips = self._active_chips(session, "*", " ORDER BY trust_score DESC")
        except Exception as exc:
            return 200, {"status": "error", "error": _said(exc), "timestamp": iso(now_utc())}
        finally:
            session.close()
        shown, counts = [], dict.fromkeys(("disponiveis", "saudaveis", "atencao", "criticos", "circuit_aberto",
                                            "desconectados"), 0)
        for chip in chips:
            trust = chip.get("trust_score") or 50
            breaker = self.chip_breakers.get(str(chip["id"]))
            state = breaker.estado if breaker else "closed"
            connected = chip.get("evolution_connected", False)
            health = "saudavel" if trust >= 80 else "atencao" if trust >= 60 else "critico"
            counts[{"saudavel": "saudaveis", "atencao": "atencao", "critico": "criticos"}[health]] += 1
            available = state != "open" and bool(connected)
            counts["disponiveis"] += available
            counts["circuit_aberto"] += state == "open"
            counts["desconectados"] += not connected
            shown.append({"telefone": (chip.get("telefone") or "N/A")[-4:], "trust_score": trust,
                          "trust_level": chip.get("trust_level", "unknown"), "health": health,
                          "circuit_state": state, "circuit_falhas": breaker.falhas_consecutivas if breaker else 0,
                          "evolution_connected": connected, "pode_prospectar": chip.get("pode_prospectar", False),
                          "pode_followup": chip.get("pode_followup", False),
                          "pode_responder": chip.get("pode_responder", False),
                          "msgs_hoje": chip.get("msgs_enviadas_hoje", 0), "erros_24h": chip.get("erros_ultimas_24h", 0),
                          "is_available": available})
        total = len(chips)
        if total == 0:
            status, message = "critical", "chip pool empty"
        elif counts["disponiveis"] == 0:
            status, message = "critical", "no chip available (all open or disconnected)"
        elif counts["saudaveis"] < total * 0.3:
            status, message = "degraded", f"few healthy chips: {counts['saudaveis']}/{total}"
        elif counts["circuit_aberto"] > total * 0.5:
            status, message = "degraded", f"many chips with an open circuit: {counts['circuit_aberto']}/{total}"
        else:
            status, message = "healthy", "chip pool healthy"
        result = {"status": status, "message": message, "summary": {
            "total": total, **counts,
            "trust_medio": round(sum(c.get("trust_score", 0) for c in chips) / total, 1) if total else 0},
            "capacidade": {
                "prospeccao": len([c for c in chips if c.get("pode_prospectar") and c.get("trust_score", 0) >= 60]),
                "followup": len([c for c in chips if c.get("pode_followup") and c.get("trust_score", 0) >= 40]),
                "resposta": len([c for c in chips if c.get("pode_responder") and c.get("trust_score", 0) >= 20])},
            "chips": shown}
        self._cache_set("health:chips", result, 30)
        return 200, {**result, "timestamp": iso(now_utc())}

    def routes(self) -> dict[str, Callable[[dict[str, str]], tuple[int, Any]]]:
        """The 16 routes of app/api/routes/health.py (its docstring lists them; no other route
        of the app starts with /health). ``/health/rate`` and ``/health/circuit`` are not among
        them: 404."""
        plain: dict[str, Callable[[], tuple[int, Any]]] = {
            "/health": self.liveness, "/health/ready": self.ready, "/health/deep": self.deep,
            "/health/rate-limit": self.rate_limit, "/health/circuits": self.circuits,
            "/health/whatsapp": self.whatsapp, "/health/grupos": self.grupos, "/health/schema": self.schema,
            "/health/jobs": self.jobs, "/health/telefones": self.telefones, "/health/pilot": self.pilot,
            "/health/chips": self.chips, "/health/fila": self.fila, "/health/alerts": self.alerts,
            "/health/score": self.score}
        out: dict[str, Callable[[dict[str, str]], tuple[int, Any]]] = {
            path: (lambda query, handler=handler: handler()) for path, handler in plain.items()}
        out["/health/circuits/history"] = self.circuits_history
        return out


@dataclass
class DeploymentApi(LoopbackApi):
    """A LoopbackApi whose routes are the deployment's, computed per request."""

    app: DeploymentApp | None = None

    def answer_target(self, target: str) -> tuple[int, bytes, str, tuple[tuple[str, str], ...], float]:
        parts = urlsplit(target)
        if parts.path not in self.routes and self.app is not None:
            handler = self.app.routes().get(parts.path)
            if handler is not None:
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                status, body = handler(query)
                payload, ctype = Canned(status, body).payload()
                return status, payload, ctype, (), 0.0
        return super().answer(parts.path)
