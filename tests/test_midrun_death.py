"""A target that dies mid-run (issue 9): PostgreSQL or Redis stopped while the checks run,
after the suite's clients had already used them. The remaining checks must end cleanly —
each with its cause in one line, no traceback, nothing retried forever — and the run is
not certified."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixtures.stack.backends.native import NativeStack
from tests.conftest import ROOT

# Checks that use the database and Redis first, then the gate, then every other check.
BEFORE = ("checks/test_guards.py", "checks/test_health.py")


@pytest.mark.parametrize(("service", "cause", "at_least"), [
    ("postgres", ("database error: ", "database unreachable: "), 10),
    ("redis", ("redis unreachable: ",), 2),  # the checks that read Redis themselves
])
def test_service_dies_mid_run(healthy: NativeStack, stack_json: Path, tmp_path: Path, service: str,
                              cause: tuple[str, ...], at_least: int) -> None:
    ready, gate = tmp_path / "ready", tmp_path / "open"
    reports = tmp_path / "reports"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", *BEFORE, "tests/synthetic_checks/check_gate.py", "checks", "-q",
         "-p", "no:cacheprovider", "--no-html", "--attach-stack", str(stack_json), "--reports-dir", str(reports)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "JC_GATE_READY": str(ready), "JC_GATE_OPEN": str(gate)},
    )
    try:
        deadline = time.monotonic() + 180
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ready.exists(), "the run never reached the gate"
        healthy.stop_service(service)
        gate.write_text("go\n")
        # a hang guard, not a speed budget: a run that retried forever would never end
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, out[-3000:]
    assert "Traceback" not in out and "INTERNALERROR" not in out, out[-3000:]
    cert = json.loads((reports / "latest" / "certificate.json").read_text())
    assert cert["verdict"] == "not-certified"
    rows = cert["invariants"]
    # every check that did not pass says why in one line
    for row in rows:
        if row["outcome"] != "passed":
            assert row["message"] and "\n" not in row["message"], row
            assert "Traceback" not in row["message"], row
    # the checks that needed the dead service after the gate name it as the cause
    named = [r["id"] for r in rows if r["outcome"] == "error" and r["message"].startswith(cause)]
    assert len(named) >= at_least, [(r["id"], r["outcome"], r["message"][:120]) for r in rows if r["outcome"] != "passed"]
