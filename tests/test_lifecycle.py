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


def _stack_processes(exclude: str | set[str] | None = None) -> dict[int, str]:
    """Live processes that carry a stack marker, except those of the excluded runs (the
    session's own stack, and stacks of other test sessions already running on the machine)."""
    excluded = {exclude} if isinstance(exclude, str) else set(exclude or ())
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
                if run not in excluded:
                    found[int(entry.name)] = run
    return found


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def _descends_from(pid: int, root: int) -> bool:
    """Whether ``pid`` was started (directly or not) by ``root``: other test sessions on the
    same machine run stacks too, and those are none of this test's business."""
    seen = set()
    while pid and pid not in seen:
        if pid == root:
            return True
        seen.add(pid)
        pid = _parent(pid) or 0
    return False


def _stack_dirs(run_ids: set[str]) -> list[Path]:
    import tempfile

    return [p for p in Path(tempfile.gettempdir()).glob("jc-stack-*") if any(r in p.name for r in run_ids)]


def test_parallel_run_shares_one_stack_and_leaves_nothing(stack, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = run_suite("--target", "local", "-n", "2", reports=tmp_path / "reports")
    assert run.exitcode == 0, run.output[-3000:]
    assert run.certificate is not None and run.certificate["verdict"] == "certified"
    assert run.output.count("stack: native") == 1  # one stack, started by the controller
    run_id = run.certificate["run_id"]
    assert {p: r for p, r in _stack_processes(exclude=stack.run_id).items() if r == run_id} == {}
    assert _stack_dirs({run_id}) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_run_leaves_nothing(stack, tmp_path: Path, sig: int) -> None:  # type: ignore[no-untyped-def]
    own = {stack.run_id, *_stack_processes().values()}
    started = tmp_path / "slow-started"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "checks", "tests/probes/probe_slow.py", "-q",
         "-p", "no:cacheprovider", "--reports-dir", str(tmp_path / "reports")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "JC_SLOW_STARTED": str(started)},
    )
    deadline = time.monotonic() + 120
    seen: dict[int, str] = {}
    while time.monotonic() < deadline and proc.poll() is None and not started.exists():
        seen.update({p: r for p, r in _stack_processes(exclude=own).items() if _descends_from(p, proc.pid)})
        time.sleep(0.2)
    seen.update({p: r for p, r in _stack_processes(exclude=own).items() if _descends_from(p, proc.pid)})
    assert started.exists(), "the run never reached its slow test"
    assert any("fixtures.stack.refapp" in _cmdline(pid) for pid in seen), "the run never started its stack"
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 2, out[-3000:]
    runs = set(seen.values())
    assert {p: r for p, r in _stack_processes(exclude=own).items() if r in runs} == {}, out[-2000:]
    assert _stack_dirs(set(seen.values())) == []
    cert = (tmp_path / "reports" / "latest" / "certificate.json")
    assert cert.exists() and '"verdict": "not-certified"' in cert.read_text()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
