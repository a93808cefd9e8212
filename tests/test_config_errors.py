"""Bad contract files: one line naming file and key, exit code 4, nothing started."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from fixtures.stack.launcher import processes_of_run
from plugins.contract.runbook import load_runbook
from plugins.contract.targets import load_targets, resolve_target
from plugins.contract.toml_schema import ConfigError

ROOT = Path(__file__).resolve().parents[1]
TARGETS = (ROOT / "targets.toml").read_text()
RUNBOOK = (ROOT / "runbook.toml").read_text()
# Whatever a run starts carries its run id (the stack's processes, its temp dir): a config
# error run is given one, so that "nothing started" can be looked for.
CONFIG_RUN_ID = f"config-error-{os.getpid()}"
LOCAL_ENV_VARS = ("JC_LOCAL_DATABASE_URL", "JC_LOCAL_REDIS_URL")


def _pytest(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "checks", "-q", "-p", "no:cacheprovider",
         "--reports-dir", str(tmp_path / "reports"), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**{k: v for k, v in os.environ.items() if not k.startswith(("JC_PROD", "JC_LOCAL"))},
             "JC_RUN_ID": CONFIG_RUN_ID, **(env or {})},
    )


def _assert_nothing_started(tmp_path: Path) -> None:
    """No report folder, no stack temp dir, no process of the run."""
    assert not (tmp_path / "reports").exists(), "a config error must leave nothing behind"
    assert list(Path(tempfile.gettempdir()).glob(f"jc-stack-{CONFIG_RUN_ID}-*")) == []
    assert processes_of_run(CONFIG_RUN_ID) == []


def _error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("ERROR:")]
    assert len(lines) == 1, proc.stderr + proc.stdout
    return lines[0]


@pytest.mark.parametrize(
    ("targets", "args", "expect"),
    [
        (TARGETS, ("--target", "nowhere"), "targets.nowhere: unknown target"),
        (TARGETS, ("--target", "prod"), "targets.prod.database_url_env: environment variable JC_PROD_DATABASE_URL is not set"),
        (TARGETS + "\n[targets.broken\n", (), "malformed TOML"),
        (TARGETS.replace('local = true\n# native', 'local = "yes"\n# native'), (), "targets.local.local: must be a boolean"),
        (TARGETS.replace('environment = "local"', 'environment = "local"\nenviroment = "typo"'), (), "targets.local.enviroment: unknown key"),
        (TARGETS.replace('stack = "native"', 'stack = "kubernetes"'), (), "targets.local.stack: must be one of"),
        (TARGETS.replace('stack = "native"', 'stack = "native"\napp_command = ["./app", ""]'), (),
         "targets.local.app_command: must be a non-empty list of non-empty strings"),
        (TARGETS.replace('stack = "native"', 'stack = "native"\napp_command = []'), (),
         "targets.local.app_command: must be a non-empty list of non-empty strings"),
        (TARGETS.replace('stack = "native"', 'stack = "native"\napp_command = ["./app"]'), ("--stack", "containers"),
         "targets.local.app_command: the containers stack runs app_image"),
    ],
    ids=["unknown-target", "missing-env-var", "malformed-toml", "wrong-type", "unknown-key", "bad-stack",
         "app-command-empty-arg", "app-command-empty", "app-command-with-containers"],
)
def test_bad_targets_file_exits_4(tmp_path: Path, targets: str, args: tuple[str, ...], expect: str) -> None:
    path = tmp_path / "targets.toml"
    path.write_text(targets)
    proc = _pytest(tmp_path, "--target-file", str(path), *args)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    line = _error_line(proc)
    assert str(path) in line and expect in line
    _assert_nothing_started(tmp_path)


@pytest.mark.parametrize(
    ("targets", "env", "expect"),
    [
        (TARGETS, {}, "targets.local.database_url_env: environment variable JC_LOCAL_DATABASE_URL is not set"),
        (TARGETS, {"JC_LOCAL_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/postgres"},
         "targets.local.redis_url_env: environment variable JC_LOCAL_REDIS_URL is not set"),
        (TARGETS.replace('redis_url_env = "JC_LOCAL_REDIS_URL"\n', ""),
         {"JC_LOCAL_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/postgres"},
         "targets.local.redis_url_env: required for stack = existing"),
    ],
    ids=["database-env-unset", "redis-env-unset", "no-redis-key"],
)
def test_stack_existing_without_its_servers_exits_4(tmp_path: Path, targets: str, env: dict[str, str],
                                                    expect: str) -> None:
    """`--stack existing` reads both servers from the profile's env vars: without them, a
    config error naming targets.toml and the key, before anything starts."""
    path = tmp_path / "targets.toml"
    path.write_text(targets)
    proc = _pytest(tmp_path, "--target-file", str(path), "--stack", "existing", env=env)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    line = _error_line(proc)
    assert str(path) in line and expect in line, line
    assert "Traceback" not in proc.stdout + proc.stderr
    _assert_nothing_started(tmp_path)


@pytest.mark.parametrize(
    ("edit", "expect"),
    [
        (lambda s: s.replace("critical_views =", "critical_viewz ="), "database.critical_viewz: unknown key"),
        (lambda s: s.replace("read_timeout_s = 5.0", 'read_timeout_s = "5"'), "http.read_timeout_s: must be a number"),
        (lambda s: s.replace('health = ["/health"]', 'health = ["health"]'), "endpoints.health[0]: path must start with '/'"),
        (lambda s: s.replace('hard_guards = "hard_guards"\n', ""), "deep.parts.hard_guards: missing required key"),
        (lambda s: s.replace("statement_timeout_ms = 5000", "statement_timeout_ms = 0"), "database_session.statement_timeout_ms: must be greater than 0"),
        (lambda s: s.replace("\nretries = 1\n", "\nretries = 9\n", 1), "http.retries: must be between 0 and 3"),
        (lambda s: s + "\n[database\n", "malformed TOML"),
    ],
    ids=["unknown-key", "wrong-type", "bad-path", "missing-key", "non-positive", "unbounded-retries", "malformed-toml"],
)
def test_bad_runbook_file_exits_4(tmp_path: Path, edit, expect: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "runbook.toml"
    path.write_text(edit(RUNBOOK))
    proc = _pytest(tmp_path, "--runbook", str(path))
    assert proc.returncode == 4, proc.stdout + proc.stderr
    line = _error_line(proc)
    assert str(path) in line and expect in line
    _assert_nothing_started(tmp_path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_targets(tmp_path / "nope.toml")


def test_secrets_resolved_from_environment_only() -> None:
    profiles = load_targets(ROOT / "targets.toml")
    t = resolve_target(ROOT / "targets.toml", profiles, "prod",
                       environ={"JC_PROD_DATABASE_URL": "postgresql://u:s3cr3t@db/x"})
    assert t.database_url == "postgresql://u:s3cr3t@db/x"
    assert "s3cr3t" not in repr(t)
    assert not t.local and t.redis_url is None


def test_shipped_files_are_valid() -> None:
    rb = load_runbook(ROOT / "runbook.toml")
    assert "job_executions" in rb.critical_tables
    assert set(load_targets(ROOT / "targets.toml")) == {"local", "staging", "prod"}


def test_stack_backend_defaults_to_the_local_profile() -> None:
    """No --stack: the local profile's `stack` key (shipped as native); --stack overrides it."""
    path = ROOT / "targets.toml"
    profiles = load_targets(path)
    assert profiles["local"]["stack"] == "native"
    assert resolve_target(path, profiles, "local", stack_override=None, environ={}).stack == "native"
    profiles["local"]["stack"] = "containers"
    assert resolve_target(path, profiles, "local", stack_override=None, environ={}).stack == "containers"
    assert resolve_target(path, profiles, "local", stack_override="native", environ={}).stack == "native"
    env = {"JC_LOCAL_DATABASE_URL": "postgresql://u@h/db", "JC_LOCAL_REDIS_URL": "redis://h/0"}
    t = resolve_target(path, profiles, "local", stack_override="existing", environ=env)
    assert (t.stack, t.database_url, t.redis_url) == ("existing", env["JC_LOCAL_DATABASE_URL"], env["JC_LOCAL_REDIS_URL"])
    del profiles["local"]["stack"]
    assert resolve_target(path, profiles, "local", stack_override=None, environ={}).stack == "native"
    # the non-local profiles start no stack, and refuse --stack
    assert resolve_target(path, profiles, "prod", environ={"JC_PROD_DATABASE_URL": "postgresql://u@h/db"}).stack is None
    with pytest.raises(ConfigError, match=r"targets\.staging: --stack applies only to a local target"):
        resolve_target(path, profiles, "staging", stack_override="native",
                       environ={"JC_STAGING_DATABASE_URL": "postgresql://u@h/db"})


def test_make_stack_existing_without_urls_is_a_stack_error() -> None:
    """The launcher's own guard (the plugin turns a StackError into exit 4), not an assert."""
    from fixtures.stack.info import StackError
    from fixtures.stack.launcher import make_stack

    for db, rd in ((None, "redis://h/0"), ("postgresql://u@h/db", None)):
        with pytest.raises(StackError, match="database_url_env and redis_url_env"):
            make_stack("existing", run_id="x", environment="local", project_ref="r", database_url=db, redis_url=rd)
