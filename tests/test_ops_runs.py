"""Issue 19 on real runs: the gate waits for the build under test (the reference API restarted
with a new build id, as `railway up` replaces a deployment) and judges it once; a build that
never comes is one line and exit 6; three nightly runs remember each other (failing since,
then the recovery, in certificate.md, the Slack post and the HTML report's history);
metrics.prom matches the certificate and reaches a loopback Pushgateway; a check that flips
between runs is named flaky."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import HTTPServer
from pathlib import Path
from typing import Any

import pytest
from mirakuru import HTTPExecutor
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics

from fixtures.stack.app_services import api_executor
from fixtures.stack.backends.native import NativeStack
from fixtures.stack.info import StackInfo
from fixtures.stack.services import free_port
from tests.conftest import LOCAL_ENV, LOCAL_REF, ROOT, SuiteRun, run_suite
from tests.test_ops_units import _Receiver
from tests.test_report_run import HEALTH_AND_GUARDS, Recorder, local_targets

A = "a0" * 20  # the build deployed before
B = "b1" * 20  # the build under test (github.sha)
FLAKY_CHECK = ("tests/synthetic_checks/check_flaky.py",)


@contextmanager
def deployed(stack: NativeStack, logdir: Path, port: int, sha: str) -> Iterator[HTTPExecutor]:
    """The reference API of build ``sha`` on ``port``, against the session stack's database
    and Redis: what Railway runs after `railway up` of that commit."""
    assert stack.info is not None
    api = api_executor(port=port, database_url=stack.info.database_url, redis_url=stack.info.redis_url,
                       environment=LOCAL_ENV, project_ref=LOCAL_REF, run_id=stack.info.run_id, logdir=logdir,
                       extra_env={"RAILWAY_GIT_COMMIT_SHA": sha, "RAILWAY_DEPLOYMENT_ID": f"dep-{sha[:6]}"})
    api.start()
    try:
        yield api
    finally:
        api.stop()


def stack_file(stack_json: Path, tmp_path: Path, port: int) -> Path:
    """The session stack, its API answered by the deployment under test."""
    info = StackInfo.from_json(stack_json.read_text())
    info.api_url = f"http://127.0.0.1:{port}"
    path = tmp_path / "deployment-stack.json"
    path.write_text(info.to_json())
    return path


def suite_command(*args: str, reports: Path, paths: tuple[str, ...] = ("checks",)) -> list[str]:
    return [sys.executable, "-m", "pytest", *paths, "-q", "-p", "no:cacheprovider", "--reports-dir", str(reports),
            "--no-html", *args]


def finished_run(proc: subprocess.Popen[str], output: str, reports: Path) -> SuiteRun:
    cert_path = reports / "latest" / "certificate.json"
    cert = json.loads(cert_path.read_text()) if cert_path.exists() else None
    return SuiteRun(proc.returncode, output, cert, cert_path.parent.resolve() if cert else None)


def test_the_gate_waits_for_build_b_and_certifies_b(healthy: NativeStack, stack_json: Path,
                                                     tmp_path: Path) -> None:
    port = free_port()
    reports = tmp_path / "reports"
    lines: queue.Queue[str | None] = queue.Queue()
    seen: list[str] = []
    with deployed(healthy, tmp_path, port, A) as build_a:
        proc = subprocess.Popen(
            suite_command("--attach-stack", str(stack_file(stack_json, tmp_path, port)), "-m", "postdeploy",
                          "--expect-build", B, "--wait-timeout", "120", reports=reports),
            cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        reader = threading.Thread(target=lambda: [lines.put(ln) for ln in proc.stdout] + [lines.put(None)],  # type: ignore[union-attr]
                                  daemon=True)
        reader.start()
        try:
            # the gate has seen build A and waits…
            while (line := lines.get(timeout=120)) is not None:
                seen.append(line)
                if f"deployment reports {A} (deployment dep-a0a0a0) (poll 1); waiting for {B}" in line:
                    break
            assert line is not None, "".join(seen)[-3000:]
            build_a.stop()  # …Railway replaces the deployment…
            with deployed(healthy, tmp_path, port, B):  # …and build B answers on the same address
                proc.wait(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        reader.join(timeout=30)
    while (line := lines.get_nowait() if not lines.empty() else None) is not None:
        seen.append(line)
    output = "".join(seen)
    run = finished_run(proc, output, reports)
    assert run.exitcode == 0 and run.certificate is not None, output[-4000:]
    cert = run.certificate
    assert cert["verdict"] == "certified" and cert["app"]["git_sha"] == B  # judged: build B
    wait = cert["build_wait"]
    assert (wait["expected"], wait["outcome"]) == (B, "live")
    assert wait["seen"][0]["git_sha"] == A and wait["seen"][-1]["git_sha"] == B and wait["polls"] >= 2
    assert wait["observed"] == {"git_sha": B, "deployment_id": f"dep-{B[:6]}", "problem": None}
    assert cert["started_at"] <= wait["started_at"] <= wait["finished_at"] <= cert["finished_at"]
    assert f"build {B} is live after" in output and "judging it" in output
    print(f"waited {wait['waited_s']} s for build B, {wait['polls']} polls, {len(wait['seen'])} answers")  # a figure
    assert run.run_dir is not None
    md = (run.run_dir / "certificate.md").read_text()
    timeline = md.split("## Timeline", 1)[1].split("\n## ", 1)[0]
    assert timeline.index(f"deployment reports {A} (deployment dep-a0a0a0)") < timeline.index(
        f"deployment reports {B} (deployment dep-b1b1b1) (the expected build)") < timeline.index("checks run once")
    _documented(cert)
    metrics = _metrics(run)
    assert metrics[("jc_build_wait_seconds", ())] == pytest.approx(wait["waited_s"], abs=0.1)
    assert metrics[("jc_certified", ())] == 1


def test_a_slow_build_times_out_with_one_line(healthy: NativeStack, stack_json: Path, tmp_path: Path) -> None:
    port = free_port()
    with deployed(healthy, tmp_path, port, A):
        run = run_suite("--attach-stack", str(stack_file(stack_json, tmp_path, port)), "-m", "postdeploy",
                        "--expect-build", B, "--wait-timeout", "3", reports=tmp_path / "reports")
    line = f"deployment still reports {A} after 3 s; expected {B}"
    assert run.exitcode == 6, run.output[-3000:]
    cert = run.certificate
    assert cert is not None and cert["verdict"] == "not-certified"
    assert run.output.count(f"julia-conformance: not judged (exit 6): {line}") == 1
    # the certificate records both builds and the wait; nothing was judged
    assert cert["build_wait"]["expected"] == B and cert["build_wait"]["observed"]["git_sha"] == A
    assert cert["build_wait"]["outcome"] == "timed-out" and cert["build_wait"]["message"] == line
    assert cert["app"]["git_sha"] == A
    assert {r["outcome"] for r in cert["invariants"]} == {"error"}
    assert {r["message"] for r in cert["invariants"]} == {f"not judged: {line}"}
    assert cert["history"]["recorded"] is False and cert["comparison"] is None
    assert not (tmp_path / "reports" / "history" / "local" / "runs.jsonl").exists()
    assert run.run_dir is not None
    assert f"**Not judged**: {line}" in (run.run_dir / "certificate.md").read_text()
    assert _metrics(run)[("jc_build_wait_timed_out", ())] == 1
    _documented(cert)


def _documented(cert: dict[str, Any]) -> None:
    """reports/README.md names every field issue 19 added, nested ones included."""
    import re

    documented = set(re.findall(r"`([a-z_0-9]+)`", (ROOT / "reports" / "README.md").read_text()))
    keys = set(cert) | {k for r in cert["invariants"] for k in r}
    for nested in (cert.get("build_wait"), cert.get("history"), cert.get("comparison"),
                   *(r.get(k) for r in cert["invariants"] for k in ("failing_since", "recovered", "flaky"))):
        keys |= set(nested or {})
    keys |= {k for seen in (cert.get("build_wait") or {}).get("seen", []) for k in seen}
    assert keys - documented == set()


def _metrics(run: SuiteRun) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """metrics.prom of the run, parsed by prometheus_client's OpenMetrics parser; labels
    other than id/outcome dropped (target and tier are the run's)."""
    assert run.run_dir is not None
    text = (run.run_dir / "metrics.prom").read_text()
    out = {}
    for family in parse_openmetrics(text):
        for s in family.samples:
            assert s.labels.get("target") == "local" and s.labels.get("tier") == run.certificate["tier"]  # type: ignore[index]
            labels = tuple(sorted((k, v) for k, v in s.labels.items() if k in ("id", "outcome")))
            out[(s.name, labels)] = s.value
    return out


def _matches_certificate(run: SuiteRun) -> None:
    cert = run.certificate
    assert cert is not None
    m = _metrics(run)
    assert m[("jc_certified", ())] == (cert["verdict"] == "certified")
    assert m[("jc_run_retries", ())] == cert["retries"]
    for outcome in ("passed", "waived", "skipped", "failed", "error"):
        assert m[("jc_invariants", (("outcome", outcome),))] == cert["counts"].get(outcome, 0)
    for row in cert["invariants"]:
        key = (("id", row["id"]),)
        assert m[("jc_invariant_ok", key)] == (row["outcome"] in ("passed", "waived"))
        assert m[("jc_invariant_outcome", (("id", row["id"]), ("outcome", row["outcome"])))] == 1
        assert m[("jc_invariant_failing_runs", key)] == (row.get("failing_since") or {}).get("runs", 0)


@pytest.fixture
def slack() -> Iterator[HTTPServer]:
    server = HTTPServer(("127.0.0.1", 0), Recorder)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def test_three_nightly_runs_remember_each_other(healthy: NativeStack, suite, sql, slack: HTTPServer,  # type: ignore[no-untyped-def]
                                                tmp_path: Path) -> None:
    hook = f"http://127.0.0.1:{slack.server_address[1]}/services/T/B/slack-token-0ff1ce"
    targets = local_targets(tmp_path, 'slack_webhook_env = "JC_LOCAL_SLACK"\n')
    broken = {"JC-DEEP-01", "JC-DEEP-07", "JC-GUARD-01"}
    runs = []
    for night in range(3):
        if night == 1:  # a fault arrives before the second night…
            sql("UPDATE app_settings SET value = 'production' WHERE key = 'environment'")
        if night == 2:  # …and is fixed before the third
            sql("UPDATE app_settings SET value = 'local' WHERE key = 'environment'")
        run = suite("--target-file", str(targets), "-m", "nightly", "--notify-slack", "--build-html",
                    paths=HEALTH_AND_GUARDS, env={"JC_LOCAL_SLACK": hook})
        assert run.certificate is not None and run.run_dir is not None, run.output[-3000:]
        assert run.exitcode == (1 if night == 1 else 0), run.output[-3000:]
        _matches_certificate(run)
        runs.append(run)
    first, second, third = (r.certificate for r in runs)
    assert first is not None and second is not None and third is not None
    assert set(second["blockers"]) == broken

    # certificate.json: the default comparison is the previous run of the target
    assert first["comparison"] is None and first["history"]["runs_before"] == 0
    assert second["comparison"]["basis"] == "history" and second["comparison"]["previous_run_id"] == first["run_id"]
    assert set(second["comparison"]["newly_failing"]) == broken
    guard2 = next(r for r in second["invariants"] if r["id"] == "JC-GUARD-01")
    assert guard2["failing_since"] == {"at": second["finished_at"], "run_id": second["run_id"], "runs": 1,
                                       "at_least": False}
    assert set(third["comparison"]["newly_passing"]) == broken and third["history"]["recovered"] == sorted(broken)
    guard3 = next(r for r in third["invariants"] if r["id"] == "JC-GUARD-01")
    assert guard3["recovered"] == {"after_runs": 1, "failing_since": second["finished_at"], "at_least": False}
    assert not any(r.get("flaky") for c in (first, second, third) for r in c["invariants"])  # one outage ≠ flaky
    for cert in (second, third):
        _documented(cert)

    # certificate.md: failing since, then the recovery
    md2 = (runs[1].run_dir / "certificate.md").read_text()  # type: ignore[operator]
    md3 = (runs[2].run_dir / "certificate.md").read_text()  # type: ignore[operator]
    assert f"- **JC-GUARD-01** FAILED: failing since {second['finished_at']}, 1 run" in md2
    assert (f"- **JC-GUARD-01** recovered: passes again after 1 failing run (failing since "
            f"{second['finished_at']})") in md3

    # Slack: what changed leads
    posts = [json.loads(r["body"])["text"] for r in slack.requests]  # type: ignore[attr-defined]
    assert len(posts) == 3
    assert posts[1].splitlines()[2] == f"*Since run `{first['run_id']}`* (certified, {first['finished_at']}):"
    assert posts[1].splitlines()[3] == "*:new: New failures (3):*"
    assert "• `JC-GUARD-01` [blocker] " in posts[1]
    assert posts[2].splitlines()[3] == "*:white_check_mark: Recovered (3):*"
    assert "slack-token-0ff1ce" not in "".join(r.output for r in runs)

    # the HTML report's history (Allure 3 historyPath, beside the reports): the three nights
    history = tmp_path / "reports" / "history" / "local"
    assert sorted(p.name for p in history.iterdir() if not p.name.startswith(".")) == [
        "allure-history.jsonl", "runs.jsonl"]
    nights = [json.loads(line) for line in (history / "allure-history.jsonl").read_text().splitlines()]
    assert len(nights) == 3
    statuses = [[t["status"] for t in n["testResults"].values() if "JC-GUARD-01" in json.dumps(t.get("labels"))]
                for n in nights]
    assert statuses == [["passed"], ["failed"], ["passed"]]
    assert [json.loads(ln)["run_id"] for ln in (history / "runs.jsonl").read_text().splitlines()] == [
        c["run_id"] for c in (first, second, third)]
    html = (runs[2].run_dir / "html" / "index.html").read_text()  # type: ignore[operator]
    # the third report carries the two nights before it: JC-GUARD-01 passed, then failed
    embedded = sorted(_embedded(html, "data/history/"), key=lambda point: point["timestamp"])
    assert [[t["status"] for t in p["testResults"].values() if t["name"].startswith("JC-GUARD-01 ")]
            for p in embedded] == [["passed"], ["failed"]]


def _embedded(html: str, prefix: str) -> list[Any]:
    """The data files the single-file Allure 3 report inlines (base64) under ``prefix``:
    ``data/history/<uuid>.json`` is one earlier run each."""
    import base64
    import re

    return [json.loads(base64.b64decode(m.group(2)))
            for m in re.finditer(r'd\("(data/[^"]+)","([A-Za-z0-9+/=]+)"\)', html) if m.group(1).startswith(prefix)]


def test_a_check_that_flips_is_named_flaky_and_metrics_are_pushed(tmp_path: Path) -> None:
    """Four runs of a check that passes, fails, passes, fails (history bounded to 3): the fourth
    names it flaky — in the certificate, certificate.md and metrics — and never retries it;
    every run pushes its metrics to a loopback Pushgateway, and a failing push changes nothing."""
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    server.requests = []  # type: ignore[attr-defined]
    server.status = 200  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    gateway = f"http://127.0.0.1:{server.server_address[1]}"
    reports = tmp_path / "reports"
    try:
        runs = []
        for i in range(4):
            server.status = 500 if i == 3 else 200  # type: ignore[attr-defined]
            runs.append(run_suite("--history-runs", "3", "--push-metrics", gateway, paths=FLAKY_CHECK,
                                  reports=reports, env={"JC_FLAKY_FAIL": "1"} if i % 2 else {}))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    assert [r.exitcode for r in runs] == [0, 1, 0, 1], runs[-1].output[-3000:]
    last = runs[-1].certificate
    assert last is not None
    row = last["invariants"][0]
    assert row["flaky"] == {"flips": 3, "runs": 4, "outcomes": ["passed", "failed", "passed", "failed"]}
    assert last["history"]["flaky"] == ["JC-FLAKY-01"] and "retries" not in row and last["retries"] == 0
    assert "FLAKY: flipped 3 times in its last 4 runs" in (runs[-1].run_dir / "certificate.md").read_text()  # type: ignore[operator]
    assert _metrics(runs[-1])[("jc_invariant_flaky", (("id", "JC-FLAKY-01"),))] == 1
    _documented(last)
    # the history keeps 3 runs
    lines = (reports / "history" / "local" / "runs.jsonl").read_text().splitlines()
    assert [json.loads(ln)["run_id"] for ln in lines] == [r.certificate["run_id"] for r in runs[1:]]  # type: ignore[index]
    # pushed: a POST per run, the run's own metrics
    pushes: list[Any] = server.requests  # type: ignore[attr-defined]
    assert [(verb, path) for verb, path, _, _ in pushes] == [
        ("POST", "/metrics/job/julia-conformance/target/local/tier/all")] * 4
    assert "metrics pushed to the Pushgateway" in runs[0].output
    assert "julia-conformance: metrics push failed: OSError: HTTP 500" in runs[3].output
    assert runs[3].exitcode == 1 and last["verdict"] == "not-certified"  # as without the push


@pytest.mark.parametrize("args, expect", [
    (("--wait-timeout", "5"), "--wait-timeout: only with --expect-build"),
    (("--expect-build", "abc 123"), "--expect-build: must be a git sha or deployment id"),
    (("--expect-build", "abc123", "--wait-timeout", "inf"), "--wait-timeout: must be a number of seconds"),
    (("--expect-build", "abc123", "--wait-timeout", "0"), "--wait-timeout: must be a number of seconds"),
    (("--expect-build", "abc123"), "--expect-build: target local has no API URL to ask"),
    (("--push-metrics", "pushgateway:9091"), "--push-metrics: the URL is not an http:// or https:// URL"),
    (("--history-runs", "0"), "--history-runs: must be a whole number of runs from 1 to 1000, got '0'"),
])
def test_bad_ops_options_exit_4(tmp_path: Path, args: tuple[str, ...], expect: str) -> None:
    run = run_suite(*args, paths=FLAKY_CHECK, reports=tmp_path / "reports")
    assert run.exitcode == 4, run.output[-2000:]
    assert expect in run.output and "Traceback" not in run.output, run.output[-2000:]
    assert run.certificate is None


# --- the wait against a remote profile (a loopback API; no stack) ------------------------------

_REMOTE = """[targets.remote]
local = false
api_url = "{url}"
environment = "staging"
project_ref = "remoteref000"
database_url_env = "JC_REMOTE_DATABASE_URL"
"""
_NO_DATABASE = {"JC_REMOTE_DATABASE_URL": "postgresql://reader@127.0.0.1:9/none"}  # (the synthetic check reads none)


def _remote(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "targets.toml"
    path.write_text(_REMOTE.format(url=url))
    return path


def test_the_wait_under_xdist(tmp_path: Path) -> None:
    """With -n 2 the controller waits before the workers start, and the workers know the outcome:
    a stale build makes every check an error with the one line (exit 6); the expected one runs."""
    from tests.loopback import Canned, LoopbackApi

    with LoopbackApi(routes={"/health": Canned(200, {"status": "healthy", "git_sha": A})}) as api:
        targets = _remote(tmp_path, api.url)
        stale = run_suite("--target-file", str(targets), "--target", "remote", "-n", "2", "--expect-build", B,
                          "--wait-timeout", "1", paths=FLAKY_CHECK, reports=tmp_path / "stale", env=_NO_DATABASE)
        live = run_suite("--target-file", str(targets), "--target", "remote", "-n", "2", "--expect-build", A[:12],
                         paths=FLAKY_CHECK, reports=tmp_path / "live", env=_NO_DATABASE)
    assert stale.exitcode == 6 and stale.outcomes() == {"JC-FLAKY-01": "error"}, stale.output[-3000:]
    assert stale.message("JC-FLAKY-01") == f"not judged: deployment still reports {A} after 1 s; expected {B}"
    assert live.exitcode == 0 and live.outcomes() == {"JC-FLAKY-01": "passed"}, live.output[-3000:]
    assert live.certificate["build_wait"]["outcome"] == "live" and live.certificate["build_wait"]["polls"] == 1  # type: ignore[index]


def test_ctrl_c_while_waiting_still_writes_the_certificate(tmp_path: Path) -> None:
    """Interrupted during the wait: exit 2, the certificate says interrupted, nothing judged,
    and no history is written."""
    import signal

    from tests.loopback import Canned, LoopbackApi
    from tests.test_lifecycle import _as_from_a_terminal

    reports = tmp_path / "reports"
    with LoopbackApi(routes={"/health": Canned(200, {"status": "healthy", "git_sha": A})}) as api:
        proc = subprocess.Popen(
            suite_command("--target-file", str(_remote(tmp_path, api.url)), "--target", "remote", "--expect-build", B,
                          "--wait-timeout", "120", reports=reports, paths=FLAKY_CHECK),
            cwd=ROOT, env={**os.environ, **_NO_DATABASE, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, preexec_fn=_as_from_a_terminal)
        assert proc.stdout is not None
        output = ""
        try:
            for line in proc.stdout:
                output += line
                if f"waiting for {B}" in line:
                    break
            proc.send_signal(signal.SIGINT)
            output += proc.communicate(timeout=60)[0]
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    run = finished_run(proc, output, reports)
    assert run.exitcode == 2 and run.certificate is not None, output[-3000:]
    assert run.certificate["interrupted"] is True and run.certificate["build_wait"]["outcome"] == "interrupted"
    assert run.outcomes() == {"JC-FLAKY-01": "error"} and run.certificate["history"]["recorded"] is False
    assert "Traceback" not in output
