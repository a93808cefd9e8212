"""Issue 17 item 7: a run ends honestly however it is stopped or starved.

SIGTERM (CI cancelling a job, `timeout`) ends a run against a non-local target like Ctrl-C
does: exit 2 and a `not-certified` certificate that says it was interrupted. A full disk
under --reports-dir ends the run with one line naming the directory and exit 3, and leaves
no half-written certificate behind — proven on a real, tiny tmpfs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixtures.stack.launcher import NativeStack
from tests.conftest import LOCAL_REF, ROOT
from tests.test_lifecycle import _as_from_a_terminal

_STAGING = """[targets.staging]
description = "a staging-like profile: a deployment the suite only reads (here the local stack)"
local = false
api_url = "{api}"
environment = "local"
project_ref = "{ref}"
database_url_env = "JC_STAGING_DATABASE_URL"
redis_url_env = "JC_STAGING_REDIS_URL"
"""


def _staging(tmp_path: Path, stack: NativeStack) -> tuple[Path, dict[str, str]]:
    info = stack.info
    assert info is not None
    path = tmp_path / "targets.toml"
    path.write_text(_STAGING.format(api=info.api_url, ref=LOCAL_REF))
    return path, {"JC_STAGING_DATABASE_URL": info.database_url, "JC_STAGING_REDIS_URL": info.redis_url}


def test_sigterm_on_a_non_local_run_writes_an_interrupted_certificate(stack: NativeStack, tmp_path: Path) -> None:
    """The health checks judge the staging-like target (read-only), then a slow test is
    running when SIGTERM comes: exit 2, the certificate is not-certified and interrupted,
    the checks that ran keep their outcome, and there is no traceback."""
    targets, env = _staging(tmp_path, stack)
    reports = tmp_path / "reports"
    started = tmp_path / "slow-started"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "checks/test_health.py", "tests/probes/probe_slow.py", "-q",
         "-p", "no:cacheprovider", "--no-html", "--target-file", str(targets), "--target", "staging",
         "--reports-dir", str(reports)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=_as_from_a_terminal,
        env={**os.environ, **env, "JC_SLOW_STARTED": str(started)},
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None and not started.exists():
            time.sleep(0.1)  # the health checks are done, the slow test runs: terminate mid-run
        assert started.exists(), "the run never reached its slow test"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 2, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    cert = json.loads((reports / "latest" / "certificate.json").read_text())
    assert cert["target"] == "staging" and cert["verdict"] == "not-certified" and cert["interrupted"] is True
    outcomes = {r["id"]: r["outcome"] for r in cert["invariants"]}
    assert outcomes and set(outcomes.values()) <= {"passed", "error"}, outcomes
    assert "passed" in outcomes.values(), outcomes  # what ran before the signal kept its outcome
    assert "not-certified (interrupted)" in out, out[-2000:]
    assert "**The run was interrupted**" in (reports / "latest" / "certificate.md").read_text()
