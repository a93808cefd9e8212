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
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.stack.backends.native import NativeStack
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
        [sys.executable, "-m", "pytest", "checks/test_health.py", "tests/synthetic_checks/check_slow.py", "-q",
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


# --- a full disk under --reports-dir: a real, tiny tmpfs ------------------------------------------

FLAKY = "tests/synthetic_checks/check_flaky.py"  # one invariant that holds
FILL = "tests/synthetic_checks/check_fill_disk.py"  # fills the disk mid-run, as another process would


@pytest.fixture
def small_disk(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A tmpfs of ``size`` (default 256k) mounted for the test, unmounted after it."""
    size = getattr(request, "param", "256k")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True, check=True)


def _run(reports: Path, *paths: str, args: tuple[str, ...] = (), fill: Path | None = None) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *paths, "-q", "-p", "no:cacheprovider", "--reports-dir", str(reports), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, **({"JC_FILL_DIR": str(fill)} if fill else {})},
    )
    return proc.returncode, proc.stdout + proc.stderr


def _one_line_naming(out: str, reports: Path, writing: str) -> None:
    lines = [ln for ln in out.splitlines() if "no space left on device" in ln]
    assert len(lines) == 1, out[-3000:]
    assert f"julia-conformance: no space left on device under --reports-dir {reports}{writing}" in lines[0], lines
    assert "Traceback" not in out and "INTERNALERROR" not in out and "Errno" not in out, out[-3000:]


def _left(disk: Path) -> list[str]:
    return sorted(str(p.relative_to(disk)) for p in disk.rglob("*") if p.name != "filler")


def _fill(disk: Path) -> None:
    subprocess.run(["dd", "if=/dev/zero", f"of={disk / 'filler'}", "bs=4k"], capture_output=True)


def test_a_full_disk_before_the_run_is_one_line_and_exit_3(small_disk: Path) -> None:
    """Nothing is run (nor any stack started) when the reports directory has no room."""
    reports = small_disk / "reports"
    reports.mkdir()
    _fill(small_disk)
    code, out = _run(reports, FLAKY)
    assert code == 3, out[-3000:]
    _one_line_naming(out, reports, ": nothing was run")
    assert "passed" not in out and _left(small_disk) == ["reports"], out[-3000:]


def test_a_disk_that_fills_mid_run_stops_it_with_one_line_and_exit_3(small_disk: Path) -> None:
    """Allure's result of the test that filled the disk cannot be written: the run stops
    there (the next test never runs), writes no certificate, removes its folder, and
    `latest` still names the run before, whose certificate is intact."""
    reports = small_disk / "reports"
    code, out = _run(reports, FLAKY)
    assert code == 0, out[-3000:]
    before = (reports / "latest").resolve()
    kept = (before / "certificate.json").read_bytes()

    code, out = _run(reports, FLAKY, FILL, fill=small_disk)
    assert code == 3, out[-3000:]
    _one_line_naming(out, reports, " (writing an Allure result): not certified, no certificate written")
    assert "test_after_the_disk_is_full" not in out and "2 passed" in out, out[-3000:]
    assert (reports / "latest").resolve() == before and (before / "certificate.json").read_bytes() == kept
    runs = [p for p in reports.iterdir() if p.name not in ("latest", "history")]
    assert runs == [before], _left(small_disk)
    assert not [p for p in small_disk.rglob("*") if p.name.endswith(".tmp")], _left(small_disk)


def test_a_disk_that_fills_mid_run_under_xdist(small_disk: Path) -> None:
    """A worker that cannot write its Allure result tells the controller, which stops the run:
    the same one line and exit 3, no traceback, no run folder left."""
    reports = small_disk / "reports"
    code, out = _run(reports, FLAKY, FILL, args=("-n", "2"), fill=small_disk)
    assert code == 3, out[-3000:]
    _one_line_naming(out, reports, " (writing an Allure result): not certified, no certificate written")
    assert _left(small_disk) == ["reports"], _left(small_disk)


def test_a_disk_full_under_the_certificate_leaves_no_half_written_certificate(small_disk: Path) -> None:
    """Allure off, so the first write after the disk filled is the certificate's: exit 3,
    one line, and neither certificate.json nor certificate.md nor a temporary file of theirs
    — the run's folder is gone, `latest` was never made."""
    reports = small_disk / "reports"
    code, out = _run(reports, FLAKY, FILL, "-k", "not after", args=("-p", "no:allure_pytest"), fill=small_disk)
    assert code == 3, out[-3000:]
    _one_line_naming(out, reports, " (writing certificate.md): not certified, no certificate written")
    assert _left(small_disk) == ["reports"], _left(small_disk)


@pytest.mark.parametrize("small_disk", ["1m"], indirect=True)
def test_a_report_too_big_for_the_disk_keeps_the_certificate(small_disk: Path) -> None:
    """The certificate fits, the HTML report (Allure 3's single file, ~3.7 MB) does not: the
    verdict stands (exit 0, signed or not as configured), the note names the directory in
    one line, and no half-built report stays."""
    reports = small_disk / "reports"
    code, out = _run(reports, FLAKY, args=("--build-html",))
    assert code == 0, out[-3000:]
    assert (reports / "latest" / "certificate.json").is_file()
    note = [ln for ln in out.splitlines() if "HTML report" in ln]
    assert note == [f"julia-conformance: HTML report not built: no space left on device under --reports-dir "
                    f"{reports} (the certificate is written, the HTML report is not)"], out[-3000:]
    assert not (reports / "latest" / "html").exists()
