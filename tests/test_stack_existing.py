"""`--stack existing`: the operator's own PostgreSQL and Redis, named by the local profile's
env vars. The suite creates its own `jc_<run-id>` database (and template) there, runs the
reference app against it, and afterwards leaves the servers as it found them: no database,
no key of its own, no process, no temp dir.

The servers are the session stack's (no extra stack to start): its PostgreSQL through the
admin URL, its Redis on database 1, which the session's own app processes do not use.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import psycopg
import pytest
import redis

from fixtures.stack.backends.native import NativeStack
from plugins.contract.targets import load_targets
from tests.conftest import ROOT, SuiteRun, run_suite
from tests.test_lifecycle import _leftovers

pytestmark = pytest.mark.backends("native")

LOCAL = load_targets(ROOT / "targets.toml")["local"]


def _databases(admin_url: str, like: str) -> set[str]:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (like,))}


def _servers(stack: NativeStack, stem: str) -> tuple[str, str, str, str]:
    """The session stack's servers as the operator's (its Redis on database 1), a run id and
    the database name the run will own."""
    assert stack.info is not None
    run_id = f"{stem}.{os.getpid()}"
    return (stack.info.admin_url, stack.info.redis_url.rsplit("/", 1)[0] + "/1", run_id,
            "jc_" + re.sub(r"[^a-z0-9]", "_", run_id.lower()))


def _run_existing(tmp_path: Path, run_id: str, admin_url: str, redis_url: str) -> SuiteRun:
    return run_suite("--stack", "existing", reports=tmp_path / "reports", env={
        "JC_RUN_ID": run_id,
        LOCAL["database_url_env"]: admin_url,
        LOCAL["redis_url_env"]: redis_url,
    })


def test_existing_servers_certified_and_left_as_found(stack: NativeStack, tmp_path: Path) -> None:
    admin_url, redis_url, run_id, dbname = _servers(stack, "existing")
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    # The operator's key, outside the app's namespaces: it must survive the run.
    client.set("operator:keep", "1")

    seen: set[str] = set()
    run_keys: set[bytes] = set()
    done = threading.Event()

    def watch() -> None:
        watcher_client = redis.Redis.from_url(redis_url)
        while not done.is_set():
            try:
                seen.update(_databases(admin_url, f"{dbname}%"))
                run_keys.update(watcher_client.keys("*"))
            except (psycopg.Error, redis.RedisError):
                pass
            done.wait(0.5)
        watcher_client.close()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        run = _run_existing(tmp_path, run_id, admin_url, redis_url)
    finally:
        done.set()
        watcher.join()
    try:
        assert run.exitcode == 0, run.output[-3000:]
        assert run.certificate is not None and run.certificate["verdict"] == "certified"
        assert run.not_passed() == set(), run.output[-3000:]
        header = next(ln for ln in run.output.splitlines() if ln.startswith("stack: existing"))
        pg_port = stack.info.services["postgres"].port
        redis_port = stack.info.services["redis"].port
        assert f"postgres {stack.info.services['postgres'].version.split('.')[0]}" in header, header
        assert f"on 127.0.0.1:{pg_port}" in header and f"redis on 127.0.0.1:{redis_port}" in header, header
        # During the run: its own database (from a template it also made), on the operator's server.
        assert dbname in seen, seen
        # ... and its app's keys in the operator's Redis (the worker's, the scheduler's).
        assert run_keys - {b"operator:keep"}, "the run's app wrote no key"
        # Afterwards: nothing of the run is left on the servers or on the machine.
        assert _databases(admin_url, f"{dbname}%") == set()
        assert client.keys("*") == [b"operator:keep"]
        assert _leftovers("native", run_id) == {}
    finally:
        client.flushdb()
        client.close()


def test_existing_redis_used_by_another_arq_app_is_refused(stack: NativeStack, tmp_path: Path) -> None:
    """A Redis database already holding keys of the app's namespaces (another ARQ app) is
    refused before anything is created: the reference worker would take that app's jobs."""
    admin_url, redis_url, run_id, dbname = _servers(stack, "existing-busy")
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.rpush("arq:queue", "another-apps-job")
    try:
        run = _run_existing(tmp_path, run_id, admin_url, redis_url)
        assert run.exitcode == 3, run.output[-3000:]
        assert "database 1 already holds 1 key(s) in the app's namespaces (arq:*, julia:*)" in run.output
        assert "Traceback" not in run.output
        assert client.lrange("arq:queue", 0, -1) == [b"another-apps-job"]
        assert client.dbsize() == 1
        assert _databases(admin_url, f"{dbname}%") == set()
        assert _leftovers("native", run_id) == {}
    finally:
        client.flushdb()
        client.close()


def test_a_stack_that_cannot_start_exits_3_and_leaves_nothing(stack: NativeStack, tmp_path: Path) -> None:
    """The database server named by the profile refuses connections: the run stops before
    any test with exit 3 and one line naming the cause — never the DSN's password — and
    leaves no temp dir, process or report behind."""
    import socket

    _, redis_url, run_id, _ = _servers(stack, "existing-down")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    password = "pw-never-printed-4242"  # pragma: allowlist secret
    run = _run_existing(tmp_path, run_id, f"postgresql://postgres:{password}@127.0.0.1:{closed_port}/postgres",
                        redis_url)
    assert run.exitcode == 3, run.output[-3000:]
    assert "local stack: existing database server: OperationalError" in run.output, run.output[-3000:]
    assert password not in run.output and "Traceback" not in run.output, run.output[-3000:]
    assert _leftovers("native", run_id) == {}
