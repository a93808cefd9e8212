"""The stack lives exactly as long as its run: started once (also under -n 2), and gone
afterwards — passed, failed, interrupted with Ctrl-C, or terminated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixtures.stack.launcher import RUN_MARKER_ENV
from tests.conftest import ROOT, run_suite


def _stack_processes(only: str) -> dict[int, str]:
    """Live processes that carry this run's stack marker (other runs may share the machine)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for var in env:
            if var.startswith(RUN_MARKER_ENV.encode() + b"="):
                run = var.split(b"=", 1)[1].decode()
                if run == only:
                    found[int(entry.name)] = run
    return found


def _stack_dirs(run_ids: set[str]) -> list[Path]:
    import tempfile

    return [p for p in Path(tempfile.gettempdir()).glob("jc-stack-*") if any(r in p.name for r in run_ids)]


def test_parallel_run_shares_one_stack_and_leaves_nothing(tmp_path: Path) -> None:
    run_id = f"lifecycle-xdist-{os.getpid()}"
    run = run_suite("--target", "local", "-n", "2", reports=tmp_path / "reports", env={"JC_RUN_ID": run_id})
    assert run.exitcode == 0, run.output[-3000:]
    assert run.certificate is not None and run.certificate["verdict"] == "certified"
    assert run.output.count("stack: native") == 1  # one stack, started by the controller
    assert run.certificate["run_id"] == run_id
    assert _stack_processes(run_id) == {}
    assert _stack_dirs({run_id}) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_run_leaves_nothing(tmp_path: Path, sig: int) -> None:
    run_id = f"lifecycle-{sig}-{os.getpid()}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "checks", "tests/probes/probe_slow.py", "-q",
         "-p", "no:cacheprovider", "--reports-dir", str(tmp_path / "reports")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "JC_RUN_ID": run_id, "JC_SLOW_STARTED": str(tmp_path / "slow-started")},
    )
    deadline = time.monotonic() + 180  # generous: a loaded machine starts the stack slowly
    seen: dict[int, str] = {}
    while time.monotonic() < deadline and proc.poll() is None:
        seen = _stack_processes(run_id)
        if any("fixtures.stack.refapp" in _cmdline(pid) for pid in seen):
            break
        time.sleep(0.2)
    assert seen, "the run never started its stack"
    started = tmp_path / "slow-started"
    while time.monotonic() < deadline and proc.poll() is None and not started.exists():
        time.sleep(0.1)  # wait until a test is executing: interrupt mid-run, not mid-start
    assert started.exists(), "the run never reached its slow test"
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 2, out[-3000:]
    assert _stack_processes(run_id) == {}, out[-2000:]
    assert _stack_dirs({run_id}) == []
    cert = (tmp_path / "reports" / "latest" / "certificate.json")
    assert cert.exists() and '"verdict": "not-certified"' in cert.read_text()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_interrupt_on_a_line_less_instruction_still_reports_interrupted(tmp_path: Path) -> None:
    """CPython 3.11 can leave a traceback entry without a line number when a signal lands
    between lines; pytest's interrupt report used to crash on it (exit 1, a TypeError)."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/probes/probe_interrupt_noline.py", "-q",
         "-p", "no:cacheprovider", "--reports-dir", str(tmp_path / "reports")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-3000:]
    assert "TypeError" not in out, out[-3000:]
    assert "KeyboardInterrupt" in out
