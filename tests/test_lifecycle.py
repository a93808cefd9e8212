"""The stack lives exactly as long as its run: started once (also under -n 2), and gone
afterwards — passed, failed, interrupted with Ctrl-C, or terminated. The same healthy run,
the same interruptions, under both backends: processes (native) and containers."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixtures.stack.launcher import processes_of_run
from tests.conftest import ROOT, SuiteRun, run_suite, skip_without_containers

BACKENDS = ("native", "containers")


def _stack_processes(only: str) -> dict[int, str]:
    """Live processes that carry this run's stack marker (other runs may share the machine)."""
    return {pid: only for pid in processes_of_run(only)}


def _stack_dirs(run_ids: set[str]) -> list[Path]:
    import tempfile

    return [p for p in Path(tempfile.gettempdir()).glob("jc-stack-*") if any(r in p.name for r in run_ids)]


def _stack_containers(run_id: str) -> tuple[list[str], list[str]]:
    """The containers and networks of a run on the local Docker engine (containers backend)."""
    from fixtures.stack import container_runs as cs
    from fixtures.stack.images import build as images

    client = images.docker_client()
    try:
        containers, networks = cs.run_resources(client, run_id)
        return sorted(c.name for c in containers), sorted(n.name for n in networks)
    finally:
        client.close()


def _leftovers(backend: str, run_id: str) -> dict[str, object]:
    """What of a run is still there: processes, temp dirs and (containers) containers, networks."""
    left: dict[str, object] = {"processes": _stack_processes(run_id), "dirs": _stack_dirs({run_id})}
    if backend == "containers":
        left["containers"], left["networks"] = _stack_containers(run_id)
    return {k: v for k, v in left.items() if v}


def _run_id(stem: str, backend: str) -> str:
    # '.' and '_' are fine in a run id but not in a host name: the containers' names are slugs.
    return f"{stem}.{backend}_{os.getpid()}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_parallel_run_shares_one_stack_and_leaves_nothing(tmp_path: Path, backend: str) -> None:
    """The healthy stack, every check (`checks`): certified, on either backend. On native the
    run is the README's `scripts/conformance` as shipped (its own stack, the HTML report built)."""
    if backend == "containers":
        skip_without_containers()
    run_id = _run_id("lifecycle-xdist", backend)
    html = ("--build-html",) if backend == "native" else ()
    run = run_suite("--target", "local", "--stack", backend, "-n", "2", *html, reports=tmp_path / "reports",
                    env={"JC_RUN_ID": run_id})
    assert run.exitcode == 0, run.output[-3000:]
    assert run.certificate is not None and run.certificate["verdict"] == "certified"
    if html:
        assert run.run_dir is not None and (run.run_dir / "html" / "index.html").is_file(), run.output[-3000:]
    assert run.not_passed() == set(), run.output[-3000:]
    assert run.output.count(f"stack: {backend}") == 1  # one stack, started by the controller
    assert_header(run, backend)
    assert run.certificate["run_id"] == run_id
    assert _leftovers(backend, run_id) == {}


_SERVICE = re.compile(r"(?P<name>postgres|redis|api) (?P<version>[^,;]*?)\s*on (?P<host>[\w.:-]+):(?P<port>\d+)")


def assert_header(run: SuiteRun, backend: str) -> dict[str, tuple[str, str, int]]:
    """The run's header says which backend started what, on which ports: PostgreSQL 15 or
    newer, Redis, and the API on the port the certificate's api_url names."""
    lines = [ln for ln in run.output.splitlines() if ln.startswith(f"stack: {backend} — ")]
    assert len(lines) == 1, run.output[-3000:]
    found = {m["name"]: (m["version"], m["host"], int(m["port"])) for m in _SERVICE.finditer(lines[0])}
    assert set(found) == {"postgres", "redis", "api"}, lines[0]
    pg_version = re.search(r"\d+", found["postgres"][0])
    assert pg_version is not None and int(pg_version.group(0)) >= 15, lines[0]
    if backend == "native":
        assert all(host == "127.0.0.1" for _, host, _ in found.values()), lines[0]
        assert re.match(r"\d+\.\d+", found["redis"][0]), lines[0]
    assert len({port for _, _, port in found.values()}) == 3, lines[0]
    assert run.certificate is not None
    assert run.certificate["api_url"].rstrip("/").endswith(f":{found['api'][2]}"), (run.certificate["api_url"], lines[0])
    assert "worker julia-worker-1" in lines[0] and "scheduler julia-scheduler-1" in lines[0], lines[0]
    return found


def test_failed_run_leaves_nothing(tmp_path: Path) -> None:
    """A run that started its own stack and failed (one invariant violated, the health checks
    passed): exit 1, not certified, and nothing of the stack is left.

    The stack runs the operator's own app (the local profile's ``app_command``; here a
    wrapper that notes its RUN_MODE and execs the reference app): the suite starts that
    command for the API, the worker and the scheduler, and judges and stops it alike."""
    run_id = _run_id("lifecycle-failed", "native")
    modes = tmp_path / "modes"
    app = tmp_path / "my-app"
    app.write_text(f'#!/bin/sh\necho "$RUN_MODE" >> "{modes}"\nexec "{sys.executable}" -m fixtures.stack.refapp\n')
    app.chmod(0o755)
    targets = (ROOT / "targets.toml").read_text().replace('stack = "native"\n', f'stack = "native"\napp_command = ["{app}"]\n', 1)
    targets = re.sub(r'(?m)^(migrations_dir|schema_baseline) = "(.*)"$', lambda m: f'{m[1]} = "{ROOT / m[2]}"', targets)
    (tmp_path / "targets.toml").write_text(targets)
    run = run_suite("--stack", "native", "--target-file", str(tmp_path / "targets.toml"), reports=tmp_path / "reports",
                    paths=("checks/test_health.py", "tests/synthetic_checks/check_verdict.py"),
                    env={"JC_RUN_ID": run_id, "JC_VERDICT_FAIL": "1"})
    assert run.exitcode == 1, run.output[-3000:]
    assert run.certificate is not None and run.certificate["verdict"] == "not-certified"
    assert run.not_passed() == {"JC-VERDICT-02"}, run.output[-3000:]
    assert run.outcomes()["JC-VERDICT-02"] == "failed"
    assert_header(run, "native")
    assert sorted(modes.read_text().split()) == ["api", "scheduler", "worker"]
    assert _leftovers("native", run_id) == {}


def _as_from_a_terminal() -> None:
    """The child starts with Ctrl-C's default disposition, as under a terminal: a shell
    without job control (`cmd &` in a script, nohup) starts background jobs with SIGINT
    ignored, Python keeps it ignored, and the run under test would never see the Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _stack_up(backend: str, run_id: str) -> bool:
    if backend == "containers":
        return any(name.endswith("-api") for name in _stack_containers(run_id)[0])
    return any("fixtures.stack.refapp" in _cmdline(pid) for pid in _stack_processes(run_id))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_interrupted_run_leaves_nothing(tmp_path: Path, backend: str, sig: int) -> None:
    if backend == "containers":
        skip_without_containers()
    run_id = _run_id(f"lifecycle-{sig}", backend)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "checks", "tests/synthetic_checks/check_slow.py", "-q",
         "-p", "no:cacheprovider", "--stack", backend, "--reports-dir", str(tmp_path / "reports")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=_as_from_a_terminal,
        env={**os.environ, "JC_RUN_ID": run_id, "JC_SLOW_STARTED": str(tmp_path / "slow-started")},
    )
    deadline = time.monotonic() + 180  # generous: a loaded machine starts the stack slowly
    up = False
    while time.monotonic() < deadline and proc.poll() is None and not up:
        up = _stack_up(backend, run_id)
        time.sleep(0.2)
    assert up, "the run never started its stack"
    started = tmp_path / "slow-started"
    while time.monotonic() < deadline and proc.poll() is None and not started.exists():
        time.sleep(0.1)  # wait until a test is executing: interrupt mid-run, not mid-start
    assert started.exists(), "the run never reached its slow test"
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 2, out[-3000:]
    assert _leftovers(backend, run_id) == {}, out[-2000:]
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
        [sys.executable, "-m", "pytest", "tests/synthetic_checks/check_interrupt_noline.py", "-q",
         "-p", "no:cacheprovider", "--reports-dir", str(tmp_path / "reports")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-3000:]
    assert "TypeError" not in out, out[-3000:]
    assert "KeyboardInterrupt" in out


def test_ctrl_c_in_a_terminal_under_xdist_leaves_nothing(tmp_path: Path) -> None:
    """`scripts/conformance -n 2` interrupted from a terminal: Ctrl-C reaches the whole
    foreground process group (controller, workers, and whatever of the stack shares it)."""
    run_id = _run_id("lifecycle-xdist-ctrl-c", "native")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "checks", "tests/synthetic_checks/check_slow.py", "-q", "-n", "2",
         "-p", "no:cacheprovider", "--stack", "native", "--reports-dir", str(tmp_path / "reports")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        preexec_fn=_as_from_a_terminal,
        env={**os.environ, "JC_RUN_ID": run_id, "JC_SLOW_STARTED": str(tmp_path / "slow-started")},
    )
    deadline = time.monotonic() + 180
    started = tmp_path / "slow-started"
    while time.monotonic() < deadline and proc.poll() is None and not started.exists():
        time.sleep(0.1)  # a worker is executing the slow test: interrupt mid-run
    assert started.exists(), "the run never reached its slow test"
    assert _stack_up("native", run_id)
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 2, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    assert _leftovers("native", run_id) == {}, out[-2000:]
    cert = tmp_path / "reports" / "latest" / "certificate.json"
    assert cert.exists() and '"verdict": "not-certified"' in cert.read_text(), out[-3000:]
