"""The stack lives exactly as long as its run: started once (also under -n 2), and gone
afterwards — passed, failed, interrupted with Ctrl-C, or terminated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from fixtures.stack.launcher import RUN_MARKER_ENV
from tests.conftest import ROOT, run_suite


# Every process of a run launched here inherits this tag: stacks of other runs on the
# machine (a concurrent pipeline, the session's own stack) are not this test's to judge.
TAG_ENV = "JC_SELFTEST_TAG"


def _stack_processes(tag: str) -> dict[int, str]:
    """Live processes that carry a stack marker and this test's tag."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"{TAG_ENV}={tag}".encode() not in env:
            continue
        for var in env:
            if var.startswith(RUN_MARKER_ENV.encode() + b"="):
                found[int(entry.name)] = var.split(b"=", 1)[1].decode()
    return found


def _stack_dirs(run_ids: set[str]) -> list[Path]:
    import tempfile

    return [p for p in Path(tempfile.gettempdir()).glob("jc-stack-*") if any(r in p.name for r in run_ids)]


def test_parallel_run_shares_one_stack_and_leaves_nothing(stack, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tag = uuid.uuid4().hex
    run = run_suite("--target", "local", "-n", "2", reports=tmp_path / "reports", env={TAG_ENV: tag})
    assert run.certificate is not None, run.output[-3000:]
    # Every invariant passes on a fresh stack, except those skipped for want of optional
    # configuration (a skip is not a pass: the run is then not certified, exit code 1).
    skipped_by_design = {"JC-SCHED-04"}  # no Railway API token for the local target
    assert run.not_passed() == skipped_by_design, run.output[-3000:]
    assert {run.outcomes()[i] for i in skipped_by_design} == {"skipped"}
    assert run.exitcode == (0 if not skipped_by_design else 1)
    assert run.output.count("stack: native") == 1  # one stack, started by the controller
    assert _stack_processes(tag) == {}
    assert _stack_dirs({run.certificate["run_id"]}) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_run_leaves_nothing(stack, tmp_path: Path, sig: int) -> None:  # type: ignore[no-untyped-def]
    tag = uuid.uuid4().hex
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "checks", "tests/probes/probe_slow.py", "-q",
         "-p", "no:cacheprovider", "--reports-dir", str(tmp_path / "reports")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, TAG_ENV: tag},
    )
    deadline = time.monotonic() + 60
    seen: dict[int, str] = {}
    while time.monotonic() < deadline and proc.poll() is None:
        seen = _stack_processes(tag)
        # stack.json is written once every process of the stack is up.
        if seen and any((d / "stack.json").exists() for d in _stack_dirs(set(seen.values()))):
            break
        time.sleep(0.2)
    assert seen, "the run never started its stack"
    time.sleep(2)  # well inside the tests by now
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 2, out[-3000:]
    assert _stack_processes(tag) == {}, out[-2000:]
    assert _stack_dirs(set(seen.values())) == []
    cert = (tmp_path / "reports" / "latest" / "certificate.json")
    assert cert.exists() and '"verdict": "not-certified"' in cert.read_text()
