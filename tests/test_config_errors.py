"""Bad contract files: one line naming file and key, exit code 4, nothing started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from plugins.config import ConfigError, load_runbook, load_targets, resolve_target

ROOT = Path(__file__).resolve().parents[1]
TARGETS = (ROOT / "targets.toml").read_text()
RUNBOOK = (ROOT / "runbook.toml").read_text()


def _pytest(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "checks", "-q", "-p", "no:cacheprovider",
         "--reports-dir", str(tmp_path / "reports"), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, **(env or {})},
    )


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
    ],
    ids=["unknown-target", "missing-env-var", "malformed-toml", "wrong-type", "unknown-key", "bad-stack"],
)
def test_bad_targets_file_exits_4(tmp_path: Path, targets: str, args: tuple[str, ...], expect: str) -> None:
    path = tmp_path / "targets.toml"
    path.write_text(targets)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JC_PROD")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "checks", "-q", "-p", "no:cacheprovider",
         "--reports-dir", str(tmp_path / "reports"), "--target-file", str(path), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env=env,
    )
    assert proc.returncode == 4, proc.stdout + proc.stderr
    line = _error_line(proc)
    assert str(path) in line and expect in line
    assert not (tmp_path / "reports").exists(), "a config error must leave nothing behind"


@pytest.mark.parametrize(
    ("edit", "expect"),
    [
        (lambda s: s.replace("critical_views =", "critical_viewz ="), "database.critical_viewz: unknown key"),
        (lambda s: s.replace("read_timeout_s = 5.0", 'read_timeout_s = "5"'), "http.read_timeout_s: must be a number"),
        (lambda s: s.replace('health = ["/health"]', 'health = ["health"]'), "endpoints.health[0]: path must start with '/'"),
        (lambda s: s.replace('hard_guards = "hard_guards"\n', ""), "deep.parts.hard_guards: missing required key"),
        (lambda s: s.replace("statement_timeout_ms = 5000", "statement_timeout_ms = 0"), "database_session.statement_timeout_ms: must be greater than 0"),
        (lambda s: s.replace("\nretries = 1\n", "\nretries = 9\n", 1), "http.retries: must be between 0 and 3"),
    ],
    ids=["unknown-key", "wrong-type", "bad-path", "missing-key", "non-positive", "unbounded-retries"],
)
def test_bad_runbook_file_exits_4(tmp_path: Path, edit, expect: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "runbook.toml"
    path.write_text(edit(RUNBOOK))
    proc = _pytest(tmp_path, "--runbook", str(path))
    assert proc.returncode == 4, proc.stdout + proc.stderr
    line = _error_line(proc)
    assert str(path) in line and expect in line


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
