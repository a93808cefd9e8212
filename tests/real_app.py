"""Boot the real Júlia (rafa77-tech/whats-agents) from a checkout, against real parts.

The deployment dialect claims to speak the real system; this harness lets the suite judge the
real system itself, locally: the app's own code, its own locked dependencies, its own schema.

- **Install**: the app's ``uv.lock`` under the Python its ``pyproject.toml`` asks for (3.13,
  from pyenv), with uv from PyPI: ``uv sync --frozen --no-dev --no-install-project`` into a
  project-local, git-ignored environment (``.real-app/envs/<sha256(uv.lock)[:16]>``) reused
  while the lock does not change.
- **Source**: the checkout is never written to; its tree (minus ``.git``, ``node_modules``,
  ``dashboard`` and any ``.env``, which the app's settings would read) is copied to a
  temporary directory the processes run from, as the Dockerfile runs them from ``/app``.
- **Database**: a database of its own on the self-test stack's PostgreSQL, loaded at run time
  with the checkout's ``bootstrap/01-schema.sql`` (tests/real_app_schema.py: Supabase's roles
  and platform objects first, statements needing extensions this server lacks skipped and
  counted), then what production has beyond that dump and the app's paths need:
  ``job_executions`` (docs/operacao/workers.md's columns), the tables that only the repo's
  ``migrations/`` create (applied from the checkout's own files), the ``app_settings`` rows of
  the local target, prompts meeting the app's prompt contract (read from the checkout's
  ``app/services/health/constants.py``) and a job history in the deployment dialect's job
  table, so no job is late at boot.
- **Outside services**: tests/postgrest_double.py as Supabase's ``/rest/v1``; loopback fakes
  for the Evolution API (instance state ``open``), Anthropic and a Slack webhook; the local
  platform stand-in (fixtures/stack/platform.py) as Railway's API counting the real scheduler.
- **Processes**: api, worker and scheduler, each started by the app's own
  ``scripts/entrypoint.sh`` with its ``RUN_MODE`` (uvicorn on a free port; ``python -m
  app.workers.fila_worker``; ``python -m app.workers.scheduler``), Redis on a database number
  of the stack's Redis nobody else uses. Readiness is bounded and says which process did not
  come up, with its last log lines.

``RealApp`` is a context manager: everything it started — processes (by their process group),
servers, the database, the Redis keys, the roles it created — is removed on exit, whatever
happened.
"""

from __future__ import annotations

import ast
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import tomllib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import redis
from psycopg import sql

from fixtures.local_platform import LOCAL_TOKEN
from fixtures.stack.info import StackInfo
from fixtures.stack.platform import LocalRailway
from fixtures.stack.services import free_port
from plugins.contract import runtime as contract_runtime
from tests.deployment_app import fill_job_history
from tests.postgrest_double import PostgrestDouble
from tests.real_app_schema import (
    LoadReport,
    apply_sql_files,
    create_platform_roles,
    drop_roles,
    load_dump_file,
)

ROOT = Path(__file__).resolve().parents[1]
REAL_APP_DIR_ENV = "JC_REAL_APP_DIR"
RUN_MARKER_ENV = "JC_REAL_APP_RUN"
# Project-local cache of installed environments (git-ignored by its own .gitignore).
CACHE_DIR = ROOT / ".real-app"
PYTHON_VERSION = "3.13.0"           # pyenv's; the app's pyproject.toml asks for >=3.13
UV_REQUIREMENT = "uv==0.13.9"          # measured with the app's lock (all wheels, nothing built)
EXCLUDED = (".git", "node_modules", "dashboard", ".env", ".venv", "__pycache__")
# A Redis database number of the stack's Redis that nothing else in the self-tests uses.
REDIS_DB = 9
SERVICE_KEY = "selftest-service-key"     # supabase-py only needs a non-empty key (no JWT)
SUPABASE_MAX_ROWS = 1000                 # a Supabase project's default API "Max rows" (db-max-rows)
APP_SERVICES = {"api": "whats-agents", "worker": "whats-worker", "scheduler": "whats-scheduler"}

# Migration files of the checkout (migrations/…) that create what the app's paths use and the
# dump lacks: the chip pool (chips, chip_interactions, pool_config, …: jobs ciclo-warming,
# atualizar-trust-scores, sincronizar-chips, meta-quality-check, the send path), its RPCs
# and views, circuit_transitions (the breaker's history), warmup_schedule (ciclo-warming),
# chip_daily_snapshots (snapshot-chips-diario), fila_mensagens_dlq (the worker's dead
# letters). Not applied: sprint-41/001 (it indexes interacoes.provider_message_id, a column
# the dump's interacoes lacks — it fails on the repo's own bootstrap), the consolidated
# sprint-25/APPLY_ME.sql and the data move MIGRATE_DATA.sql, criar_indices_performance.sql
# (indexes tables the dump lacks), and files that only alter tables the dump already has.
MIGRATIONS = (
    "sprint-25/001_chips_schema.sql", "sprint-25/002_chips_triggers.sql",
    "sprint-36/001_chip_metrics_rpcs.sql", "sprint-36/002_circuit_transitions.sql",
    "sprint-39/001_warmup_schedule.sql", "sprint-41/002_chip_daily_snapshots.sql",
    "sprint-41/003_delivery_status_rpc.sql", "sprint-41/004_snapshot_rpcs.sql",
    "sprint44_t03_5_dlq.sql",
)

# job_executions as docs/operacao/workers.md ("Metricas de Jobs") documents it. The doc lists
# status success|error|timeout; the scheduler also writes 'running' when a job starts
# (app/workers/scheduler.py), so no CHECK constrains it.
JOB_EXECUTIONS_DDL = """
CREATE TABLE IF NOT EXISTS public.job_executions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    job_name text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    status text NOT NULL,
    duration_ms integer,
    response_code integer,
    error text,
    items_processed integer
)
"""


class RealAppError(RuntimeError):
    """The real app could not be installed or booted (one line, naming the step)."""


# --- facts read from the checkout at run time ----------------------------------------------------


@dataclass(frozen=True)
class PromptContract:
    name: str
    min_len: int
    required: tuple[str, ...]
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class HealthConstants:
    """What app/services/health/constants.py declares (read as data, never imported)."""

    expected_schema_version: str
    prompts: tuple[PromptContract, ...]
    critical_jobs: tuple[str, ...]


@dataclass(frozen=True)
class Checkout:
    root: Path

    @property
    def lock(self) -> Path:
        return self.root / "uv.lock"

    @property
    def schema_dump(self) -> Path:
        return self.root / "bootstrap" / "01-schema.sql"

    def lock_hash(self) -> str:
        return hashlib.sha256(self.lock.read_bytes()).hexdigest()

    def requires_python(self) -> str:
        data = tomllib.loads((self.root / "pyproject.toml").read_text(encoding="utf-8"))
        return str(data.get("project", {}).get("requires-python", ""))

    def head(self) -> str | None:
        proc = subprocess.run(["git", "-C", str(self.root), "rev-parse", "HEAD"], capture_output=True, text=True)
        return proc.stdout.strip() or None if proc.returncode == 0 else None

    def health_constants(self) -> HealthConstants:
        path = self.root / "app" / "services" / "health" / "constants.py"
        values: dict[str, Any] = {}
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                try:
                    values[node.targets[0].id] = ast.literal_eval(node.value)
                except ValueError:
                    continue
        try:
            prompts = tuple(PromptContract(name, int(spec["min_len"]), tuple(spec.get("required_sentinels", ())),
                                           tuple(spec.get("warning_sentinels", ())))
                            for name, spec in values["REQUIRED_PROMPTS"].items())
            return HealthConstants(str(values["EXPECTED_SCHEMA_VERSION"]), prompts,
                                   tuple(values.get("CRITICAL_JOBS", ())))
        except (KeyError, TypeError, ValueError) as exc:
            raise RealAppError(f"{path}: cannot read the prompt contract / expected schema version ({exc})") from None


def prompt_text(contract: PromptContract) -> str:
    """A prompt of our own that meets the app's contract: every sentinel, at least min_len."""
    lines = [f"Synthetic {contract.name} prompt for the julia-conformance self-test (not the product's text).",
             *contract.required, *contract.warnings]
    text = "\n".join(lines) + "\n"
    filler = "This line only pads the synthetic prompt to the length the app's contract requires.\n"
    while len(text) < contract.min_len + 50:
        text += filler
    return text


# --- install --------------------------------------------------------------------------------------


def pyenv_python() -> Path:
    try:
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        root = ""
    path = Path(root or Path.home() / ".pyenv") / "versions" / PYTHON_VERSION / "bin" / "python"
    if not path.exists():
        raise RealAppError(f"Python {PYTHON_VERSION} not found at {path} (install it with `pyenv install "
                           f"{PYTHON_VERSION}`)")
    return path


def _cache_dir() -> Path:
    CACHE_DIR.mkdir(exist_ok=True)
    ignore = CACHE_DIR / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# julia-conformance: installed environments of the real app (tests/real_app.py)\n*\n")
    return CACHE_DIR


def _run(cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None, what: str,
         timeout: float = 1200) -> None:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
        raise RealAppError(f"{what} failed (exit {proc.returncode}): {tail}")


def ensure_uv(python: Path) -> Path:
    tool = _cache_dir() / "uv-tool"
    uv = tool / "bin" / "uv"
    if not uv.exists():
        _run([str(python), "-m", "venv", str(tool)], what="creating the uv tool environment")
        _run([str(tool / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
              UV_REQUIREMENT], what=f"pip install {UV_REQUIREMENT}")
    return uv


@dataclass(frozen=True)
class Installed:
    venv: Path
    seconds: float
    cached: bool


def install(checkout: Checkout, source: Path, python: Path) -> Installed:
    """The app's locked dependencies (no dev group, not the project itself), once per lock;
    one installer at a time (a file lock), so parallel sessions share the result."""
    started = time.monotonic()
    with open(_cache_dir() / "install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _install(checkout, source, python, started)


def _install(checkout: Checkout, source: Path, python: Path, started: float) -> Installed:
    digest = checkout.lock_hash()
    venv = _cache_dir() / "envs" / digest[:16]
    stamp = venv / ".jc-installed"
    if stamp.exists() and stamp.read_text() == digest and (venv / "bin" / "python").exists():
        return Installed(venv, time.monotonic() - started, True)
    uv = ensure_uv(python)
    # The machine's own registry settings (certificates, proxies, indexes) apply, as to pip.
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env.update({"UV_PROJECT_ENVIRONMENT": str(venv), "UV_CACHE_DIR": str(_cache_dir() / "uv-cache"),
                "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"})
    _run([str(uv), "sync", "--frozen", "--no-dev", "--no-install-project", "--python", str(python)],
         cwd=source, env=env, what="uv sync --frozen --no-dev --no-install-project")
    stamp.write_text(digest)
    return Installed(venv, time.monotonic() - started, False)


def copy_source(checkout: Checkout, dest: Path) -> Path:
    target = dest / "app-src"
    shutil.copytree(checkout.root, target, symlinks=True, ignore=shutil.ignore_patterns(*EXCLUDED))
    return target


# --- outside services ------------------------------------------------------------------------------


class SaasFakes:
    """Loopback stand-ins for the SaaS the app calls, under one server by path prefix:
    ``/evolution`` (Evolution API: every instance ``open``, no instances listed, sends
    accepted), ``/anthropic`` (a one-word Messages API answer), ``/slack`` (webhook ``ok``).
    Every request is recorded; anything else answers 404."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, int]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                status, body = outer.answer(self.command, urlsplit(self.path).path)
                outer.requests.append((self.command, self.path, status))
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815

            def log_message(self, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="saas-fakes", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def answer(self, method: str, path: str) -> tuple[int, Any]:
        if path.startswith("/evolution/instance/connectionState/"):
            name = path.rsplit("/", 1)[-1]
            return 200, {"instance": {"instanceName": name, "state": "open"}}
        if path == "/evolution/instance/fetchInstances":
            return 200, []
        if path.startswith(("/evolution/message/", "/evolution/chat/")) and method == "POST":
            return 201, {"key": {"id": "SELFTEST" + uuid.uuid4().hex[:12].upper()}, "status": "PENDING"}
        if path == "/anthropic/v1/messages" and method == "POST":
            return 200, {"id": "msg_selftest", "type": "message", "role": "assistant", "model": "selftest",
                         "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn",
                         "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1}}
        if path.startswith("/slack/") and method == "POST":
            return 200, "ok"
        return 404, {"error": f"no fake for {method} {path}"}

    def start(self) -> SaasFakes:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


# --- the app's processes ---------------------------------------------------------------------------


@dataclass
class AppProcess:
    run_mode: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM to the process group it leads (entrypoint.sh execs the service in place),
        then SIGKILL if it lingers."""
        if self.popen.poll() is not None:
            return
        pgid = self.popen.pid
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                return
            try:
                self.popen.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the test process dies, even by SIGKILL (Linux's
    PR_SET_PDEATHSIG survives exec), so a killed run leaves no app process behind."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG = 1
    except OSError:
        pass


def _with_db(url: str, dbname: str | int, *, redis_db: bool = False) -> str:
    if redis_db:
        parts = urlsplit(url)
        return parts._replace(path=f"/{dbname}").geturl()
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = str(dbname)
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in info.items() if v is not None})


@dataclass
class Timings:
    install_s: float = 0.0
    install_cached: bool = False
    database_s: float = 0.0
    boot_s: float = 0.0
    settle_s: float = 0.0


@dataclass
class RealApp:
    """The real app booted against the stack ``stack`` (see the module docstring)."""

    checkout: Checkout
    stack: StackInfo
    environment: str
    project_ref: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    ready_timeout_s: float = 120.0
    env_overrides: dict[str, str] = field(default_factory=dict)   # a self-test's fault (e.g. a missing key)

    # filled by start()
    api_url: str = ""
    database_url: str = ""
    redis_url: str = ""
    railway_api_url: str = ""
    git_sha: str = ""
    deployment_id: str = ""
    schema_report: LoadReport | None = None
    migrations_report: LoadReport | None = None
    timings: Timings = field(default_factory=Timings)
    processes: dict[str, AppProcess] = field(default_factory=dict)
    double: PostgrestDouble | None = None
    fakes: SaasFakes | None = None
    booted_at: datetime | None = None
    _tmp: tempfile.TemporaryDirectory[str] | None = None
    _roles: list[str] = field(default_factory=list)
    _dbname: str = ""
    _railway: LocalRailway | None = None

    # lifecycle

    def __enter__(self) -> RealApp:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="jc-real-app-")
        tmp = Path(self._tmp.name)
        python = pyenv_python()
        source = copy_source(self.checkout, tmp)
        installed = install(self.checkout, source, python)
        self.timings.install_s, self.timings.install_cached = installed.seconds, installed.cached

        t0 = time.monotonic()
        self._create_database()
        self.timings.database_s = time.monotonic() - t0

        self.redis_url = _with_db(self.stack.redis_url, REDIS_DB, redis_db=True)
        client = redis.Redis.from_url(self.redis_url)
        try:
            if client.dbsize():
                raise RealAppError(f"Redis database {REDIS_DB} of the stack is not empty: refusing to share it")
        finally:
            client.close()

        # Supabase's API: the service key's role, and its default "Max rows" of 1000
        self.double = PostgrestDouble(self.database_url, role="service_role", max_rows=SUPABASE_MAX_ROWS).start()
        self.fakes = SaasFakes().start()
        self._railway = LocalRailway(lambda: int(self._alive("scheduler")), service_name=APP_SERVICES["scheduler"])
        self.railway_api_url = self._railway.start()

        port = free_port()
        self.api_url = f"http://127.0.0.1:{port}"
        self.git_sha = self.checkout.head() or "0" * 40
        self.deployment_id = f"selftest-{self.run_id}"
        env = {**self._env(installed.venv, port), **self.env_overrides}
        t0 = time.monotonic()
        self.booted_at = datetime.now(UTC)
        # One at a time, so each one's first traffic is its own: the api answers /health, the
        # worker's first poll of the queue is the only one before the scheduler starts, and
        # the scheduler records its first jobs.
        self._spawn("api", env, source, tmp)
        self._await("api", self._api_healthy)
        self._spawn("worker", env, source, tmp)
        self._await("worker", lambda: self._double_saw("GET", "/rest/v1/fila_mensagens"))
        self._spawn("scheduler", env, source, tmp)
        self._await("scheduler", lambda: self._double_saw("POST", "/rest/v1/job_executions"))
        self.timings.boot_s = time.monotonic() - t0
        # Let the jobs fired at boot finish (bounded; a job still running is the suite's to judge).
        t0 = time.monotonic()
        while time.monotonic() - t0 < self.ready_timeout_s and not self._jobs_settled():
            time.sleep(0.25)
        self.timings.settle_s = time.monotonic() - t0

    def stop(self) -> None:
        """Every step runs whatever the others did; the first failure is raised at the end."""
        failures: list[BaseException] = []

        def attempt(step: Callable[[], object]) -> None:
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - teardown goes on
                failures.append(exc)

        for proc in reversed(list(self.processes.values())):
            attempt(proc.stop)
        for server in (self.double, self.fakes, self._railway):
            if server is not None:
                attempt(server.stop)
        self.double = self.fakes = self._railway = None
        if self.redis_url:
            attempt(self._flush_redis)
        if self._dbname:
            attempt(self._drop_database)
        if self._roles:
            attempt(lambda: drop_roles(self.stack.admin_url, self._roles))
            self._roles = []
        if self._tmp is not None:
            attempt(self._tmp.cleanup)
            self._tmp = None
        if failures:
            raise RealAppError(f"tearing the real app down: {type(failures[0]).__name__}: {failures[0]}")

    def _flush_redis(self) -> None:
        """The app's keys: the whole database number it was given (checked empty at start)."""
        client = redis.Redis.from_url(self.redis_url)
        try:
            client.flushdb()
        finally:
            client.close()

    def _drop_database(self) -> None:
        with psycopg.connect(self.stack.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self._dbname)))
        self._dbname = ""

    # the database

    def _create_database(self) -> None:
        self._dbname = f"jc_real_app_{self.run_id}"
        with psycopg.connect(self.stack.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self._dbname)))
        self.database_url = _with_db(self.stack.database_url, self._dbname)
        self._roles = create_platform_roles(self.stack.admin_url)
        self.schema_report = load_dump_file(self.database_url, self.checkout.schema_dump)
        migrations = self.checkout.root / "migrations"
        self.migrations_report = apply_sql_files(self.database_url, [migrations / m for m in MIGRATIONS],
                                                 root=self.checkout.root)
        constants = self.checkout.health_constants()
        now = datetime.now(UTC)
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(JOB_EXECUTIONS_DDL)
            for key, value in (("environment", self.environment), ("supabase_project_ref", self.project_ref),
                               ("schema_version", constants.expected_schema_version),
                               ("schema_applied_at", now.isoformat())):
                conn.execute("INSERT INTO public.app_settings (key, value) VALUES (%s, %s)"
                             " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
                             (key, value))
            for contract in constants.prompts:
                conn.execute("INSERT INTO public.prompts (nome, versao, tipo, conteudo, ativo, descricao)"
                             " VALUES (%s, %s, %s, %s, true, %s)",
                             (contract.name, "selftest-1", "system", prompt_text(contract),
                              "julia-conformance self-test prompt"))
        runtime = contract_runtime.load(dialect="deployment")
        # History up to the minute before this one: the real scheduler fires the current
        # minute's jobs as soon as it starts (whats-agents app/workers/scheduler.py), and a
        # seeded run in that slot too would read as a second scheduler (rule 4).
        before = now.replace(second=0, microsecond=0) - timedelta(microseconds=1)
        fill_job_history(self.database_url, runtime, before, since=before - timedelta(hours=26))
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute("ANALYZE")

    # processes

    def _env(self, venv: Path, port: int) -> dict[str, str]:
        assert self.double is not None and self.fakes is not None
        return {
            "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(Path.home()),
            "LANG": "C.UTF-8",
            "TZ": "UTC",
            "PYTHONUNBUFFERED": "1",
            "PORT": str(port),
            "APP_ENV": self.environment,
            "SUPABASE_URL": self.double.url,
            "SUPABASE_SERVICE_KEY": SERVICE_KEY,
            "SUPABASE_PROJECT_REF": self.project_ref,
            "REDIS_URL": self.redis_url,
            "EVOLUTION_API_URL": self.fakes.url + "/evolution",
            "EVOLUTION_API_KEY": "selftest-evolution-key",
            "EVOLUTION_INSTANCE": "selftest",
            "ANTHROPIC_API_KEY": "selftest-anthropic-key",
            "ANTHROPIC_BASE_URL": self.fakes.url + "/anthropic",
            "SLACK_WEBHOOK_URL": self.fakes.url + "/slack/webhook",
            # non-production: the dev guardrail wants an allowlist (health/deep.py dev_guardrails)
            "OUTBOUND_ALLOWLIST": "5500000000000",
            "JULIA_API_URL": self.api_url,
            "GIT_SHA": self.git_sha,
            "RAILWAY_DEPLOYMENT_ID": self.deployment_id,
            "RAILWAY_ENVIRONMENT": self.environment,
            # not read by the app: marks its processes, so a test can prove none outlives the run
            RUN_MARKER_ENV: self.run_id,
        }

    def _spawn(self, run_mode: str, env: dict[str, str], source: Path, tmp: Path) -> None:
        log = tmp / f"{run_mode}.log"
        with open(log, "ab") as out:
            popen = subprocess.Popen(["bash", "scripts/entrypoint.sh"], cwd=source, env={**env, "RUN_MODE": run_mode},
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True, preexec_fn=_die_with_parent)
        self.processes[run_mode] = AppProcess(run_mode, popen, log)

    def _alive(self, run_mode: str) -> bool:
        proc = self.processes.get(run_mode)
        return proc is not None and proc.alive()

    def _await(self, run_mode: str, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        proc = self.processes[run_mode]
        while time.monotonic() < deadline:
            if not proc.alive():
                raise RealAppError(f"the real app's {run_mode} exited (code {proc.popen.returncode}) before it was "
                                   f"ready; its last lines:\n{proc.tail()}")
            if ready():
                return
            time.sleep(0.25)
        raise RealAppError(f"the real app's {run_mode} was not ready within {self.ready_timeout_s:.0f} s; its last "
                           f"lines:\n{proc.tail()}")

    def leftover_processes(self) -> list[int]:
        """Live processes carrying this run's marker (after stop(): none)."""
        found = []
        marker = f"{RUN_MARKER_ENV}={self.run_id}".encode()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if marker in (entry / "environ").read_bytes().split(b"\0"):
                        found.append(int(entry.name))
                except OSError:
                    continue
        return found

    def _api_healthy(self) -> bool:
        try:
            return httpx.get(self.api_url + "/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def _double_saw(self, method: str, path: str) -> bool:
        assert self.double is not None
        return any(m == method and p.split("?")[0] == path for m, p, _, _ in list(self.double.log))

    def _jobs_settled(self) -> bool:
        assert self.booted_at is not None
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            running = conn.execute("SELECT count(*) FROM public.job_executions WHERE status = 'running'"
                                   " AND started_at >= %s", (self.booted_at,)).fetchone()
        return running is not None and running[0] == 0

    # what the run showed

    def log_errors(self, limit: int = 8) -> dict[str, list[str]]:
        """Each process's distinct error lines (ERROR / Traceback / exceptions), the newest last."""
        found: dict[str, list[str]] = {}
        for mode, proc in self.processes.items():
            try:
                lines = proc.log.read_text(errors="replace").splitlines()
            except OSError:
                continue
            plain = (re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in lines)
            hits = list(dict.fromkeys(line[:240] for line in plain
                                      if any(w in line for w in ("ERROR", "Traceback", "Error:", "CRITICAL"))))
            found[mode] = hits[-limit:]
        return found

    def jobs_since_boot(self) -> list[tuple[str, str, int | None, str | None]]:
        assert self.booted_at is not None
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            return [tuple(r) for r in conn.execute(  # type: ignore[misc]
                "SELECT job_name, status, response_code, left(error, 200) FROM public.job_executions"
                " WHERE started_at >= %s ORDER BY started_at", (self.booted_at,))]

    def targets_toml(self, path: Path, *, database_env: str, redis_env: str, railway_env: str) -> Path:
        """A profile of this deployment as an operator would write it: not local (the suite
        only reads), the deployment dialect, the platform stand-in for Railway's API."""
        path.write_text(
            "[targets.realapp]\n"
            "local = false\n"
            f'api_url = "{self.api_url}"\n'
            f'environment = "{self.environment}"\n'
            f'project_ref = "{self.project_ref}"\n'
            f'database_url_env = "{database_env}"\n'
            f'redis_url_env = "{redis_env}"\n'
            'dialect = "deployment"\n'
            "judge_secret_rotation = false\n"
            f'railway_token_env = "{railway_env}"\n'
            'railway_token_kind = "project"\n'
            f'railway_api_url = "{self.railway_api_url}"\n'
            'railway_environment_id = "selftest"\n'
            f'railway_scheduler_service_id = "{APP_SERVICES["scheduler"]}"\n', encoding="utf-8")
        return path

    def suite_env(self, *, database_env: str, redis_env: str, railway_env: str) -> dict[str, str]:
        return {database_env: self.database_url, redis_env: self.redis_url, railway_env: LOCAL_TOKEN}
