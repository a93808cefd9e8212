"""The report of real runs against the local stack: certificate, Allure results, waivers,
comparison, signature and Slack — each proven on a fault injected the way an incident has it."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest

from fixtures.stack.backends.native import NativeStack
from plugins import verify
from tests.conftest import LOCAL_REF, targets_text, ROOT, SuiteRun, run_suite

HEALTH_AND_GUARDS = ("checks/test_health.py", "checks/test_guards.py")
RUNBOOK = (ROOT / "runbook.toml").read_text()
TARGETS = targets_text()
GITHUB_RUNBOOK = "https://github.com/rafa77-tech/whats-agents/blob/main/docs/operacao/runbook.md"
_LOCAL_REDIS_LINE = 'redis_url_env = "JC_LOCAL_REDIS_URL"\n'


def _git_head() -> str:
    return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


def allure_results(run: SuiteRun) -> dict[str, dict[str, Any]]:
    """The run's Allure test results, by invariant id."""
    assert run.run_dir is not None, run.output[-3000:]
    out = {}
    for path in (run.run_dir / "allure-results").glob("*-result.json"):
        result = json.loads(path.read_text())
        ids = [label["value"] for label in result["labels"] if label["name"] == "invariant"]
        if ids:
            out[ids[0]] = result
    return out


def labels(result: dict[str, Any], name: str) -> list[str]:
    return [label["value"] for label in result["labels"] if label["name"] == name]


def attachment(run: SuiteRun, result: dict[str, Any], name: str) -> str:
    assert run.run_dir is not None
    sources = [a["source"] for a in result.get("attachments", []) if a["name"] == name]
    assert len(sources) == 1, result.get("attachments")
    return (run.run_dir / "allure-results" / sources[0]).read_text()


def local_targets(tmp_path: Path, extra: str) -> Path:
    """targets.toml whose local profile has the extra keys (signing key, Slack, …)."""
    path = tmp_path / "targets.toml"
    path.write_text(TARGETS.replace(_LOCAL_REDIS_LINE, _LOCAL_REDIS_LINE + extra, 1))
    return path


def test_attachments_land_in_every_phase(tmp_path: Path) -> None:
    """allure-pytest attaches to the last open executable item: evidence and remedy written
    from pytest_runtest_makereport must land on the test's result for a failure in the call,
    an undecidable fixture (setup phase) and a waived finding alike. (No stack needed.)"""
    runbook = tmp_path / "runbook.toml"
    # (and the runbook's own copy of the document: links follow contract.runbook_url)
    moved = RUNBOOK.replace(f'runbook_url = "{GITHUB_RUNBOOK}"', 'runbook_url = "https://runbooks.example/julia.md"', 1)
    assert moved != RUNBOOK
    runbook.write_text(moved + (
        '"JC-REPORT-03" = { reason = "pause is planned maintenance", expires = 2099-12-31 }\n'
        '"JC-REPORT-04" = { reason = "an old exception", expires = 2020-01-01 }\n'))
    run = run_suite("--runbook", str(runbook), paths=("tests/synthetic_checks/check_report.py",), reports=tmp_path / "reports")
    assert run.exitcode == 1, run.output[-3000:]
    assert run.outcomes() == {"JC-REPORT-01": "failed", "JC-REPORT-02": "error", "JC-REPORT-03": "waived",
                              "JC-REPORT-04": "failed", "JC-REPORT-05": "passed", "JC-REPORT-06": "passed"}
    results = allure_results(run)
    expect = {"JC-REPORT-01": ["evidence", "remedy"], "JC-REPORT-02": ["evidence", "remedy"],
              "JC-REPORT-03": ["waiver", "evidence", "remedy"], "JC-REPORT-04": ["remedy"], "JC-REPORT-05": [],
              "JC-REPORT-06": ["retries"]}
    for inv, names in expect.items():
        assert [a["name"] for a in results[inv].get("attachments", [])] == names, inv
    assert json.loads(attachment(run, results["JC-REPORT-02"], "evidence")) == {"tried": ["/health/rate"]}
    assert results["JC-REPORT-02"]["status"] == "broken"
    assert results["JC-REPORT-02"]["statusDetails"]["message"] == (
        "[JC-REPORT-02] UNDECIDED: endpoint rate missing: every path answered 404")
    assert results["JC-REPORT-03"]["status"] == "skipped"
    assert run.certificate["blockers"] == ["JC-REPORT-01", "JC-REPORT-04", "JC-REPORT-02"]
    # a passing check that needed a retry is visibly not clean: certificate, page, terminal, Allure
    retried = next(r for r in run.certificate["invariants"] if r["id"] == "JC-REPORT-06")
    assert len(retried["retries"]) == 1 and retried["retries"][0].startswith("GET http://127.0.0.1:")
    assert "retried (1/1) after: " in retried["retries"][0]
    assert run.certificate["retries"] == 1
    assert "julia-conformance: retry JC-REPORT-06: GET http://127.0.0.1:" in run.output
    assert run.run_dir is not None
    assert "## Retried reads (1)" in (run.run_dir / "certificate.md").read_text()
    assert "retried" in labels(results["JC-REPORT-06"], "tag")
    assert "retried (1/1)" in attachment(run, results["JC-REPORT-06"], "retries")
    # links: the configured base, the deepest runbook heading the section names
    assert [link["url"] for link in results["JC-REPORT-01"]["links"]] == [
        "https://runbooks.example/julia.md#scenario-2-healthdeep-returns-503-critical"]
    assert results["JC-REPORT-05"]["links"][0]["url"] == "https://runbooks.example/julia.md#health-liveness-probe"


def test_failed_run_certificate_and_allure(healthy: NativeStack, suite, sql) -> None:  # type: ignore[no-untyped-def]
    base = suite("-m", "postdeploy", paths=HEALTH_AND_GUARDS)
    assert base.exitcode == 0 and base.certificate is not None, base.output[-3000:]
    sql("UPDATE app_settings SET value = 'production' WHERE key = 'environment'")
    run = suite("-m", "postdeploy", "--compare-with", str(base.run_dir), paths=HEALTH_AND_GUARDS)
    assert run.exitcode == 1, run.output[-3000:]
    cert = run.certificate
    assert cert is not None and cert["verdict"] == "not-certified"

    # what the certificate speaks for
    head = _git_head()
    assert cert["app"]["git_sha"] == head and cert["app"]["deployment_id"].startswith("local-")
    assert cert["app"]["schema_version"] and cert["app"]["reported"] is True
    assert cert["suite"]["git_sha"] == head and cert["suite"]["version"] == cert["suite_version"]
    assert cert["runbook_sha256"] == hashlib.sha256((ROOT / "runbook.toml").read_bytes()).hexdigest()
    assert cert["marker_expression"] == "postdeploy" and cert["tier"] == "postdeploy"
    # the server judged, as it announced itself to the checks' database client
    assert healthy.info is not None
    with psycopg.connect(healthy.info.database_url) as conn:
        assert cert["server_version"] == str(conn.execute("SHOW server_version").fetchone()[0]).split()[0]
    finished = dt.datetime.strptime(cert["finished_at"], "%Y-%m-%dT%H:%M:%SZ")
    assert cert["valid_until"] == (finished + dt.timedelta(hours=24)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert cert["signature"]["status"] == "unsigned" and "signing_key_env" in cert["signature"]["reason"]
    assert cert["blockers"] == ["JC-DEEP-01", "JC-DEEP-07", "JC-GUARD-01"]
    assert cert["comparison"]["newly_failing"] == ["JC-DEEP-01", "JC-DEEP-07", "JC-GUARD-01"]
    assert cert["comparison"]["previous_run_id"] == base.certificate["run_id"]
    assert "newly failing JC-DEEP-01, JC-DEEP-07, JC-GUARD-01" in run.output

    # the human page: verdict, then blockers with their remedy, then the rest
    assert run.run_dir is not None
    md = (run.run_dir / "certificate.md").read_text()
    assert md.splitlines()[0] == "# NOT CERTIFIED — local (local · localjuliaref0000000)"
    assert md.index("## Blockers (3)") < md.index("## All invariants")
    assert "**JC-GUARD-01** [blocker] FAILED" in md and "remedy: Scenario 2 · Case 3" in md

    # Allure: labels, link, incident line, evidence and remedy
    results = allure_results(run)
    deep7 = results["JC-DEEP-07"]
    assert labels(deep7, "epic") == ["Incident Response Scenarios"]
    assert labels(deep7, "feature") == ["Scenario 2 › Case 3"]
    assert labels(deep7, "story") == ["/health/deep part 'hard_guards' is ok"]
    assert labels(deep7, "severity") == ["blocker"]
    assert sorted(labels(deep7, "tag")) == ["nightly", "postdeploy"]
    assert labels(deep7, "as_id") == ["JC-DEEP-07"]
    assert deep7["name"] == "JC-DEEP-07 · /health/deep part 'hard_guards' is ok"
    assert deep7["links"][0]["url"] == f"{GITHUB_RUNBOOK}#scenario-2-healthdeep-returns-503-critical"
    assert deep7["status"] == "failed"
    assert deep7["statusDetails"]["message"].startswith("[JC-DEEP-07] VIOLATION: ")
    assert "hard_guards is 'mismatch'" in deep7["statusDetails"]["message"]
    assert "mismatch" in attachment(run, deep7, "evidence")
    assert attachment(run, deep7, "remedy").startswith("Scenario 2 · Case 3:")
    guard = results["JC-GUARD-01"]
    assert "Remedy: Scenario 2 · Case 3" in guard["description"]
    assert attachment(run, guard, "remedy").startswith("Scenario 2 · Case 3:")
    assert results["JC-HEALTH-01"]["status"] == "passed" and not results["JC-HEALTH-01"].get("attachments")

    # run metadata next to the results
    res = run.run_dir / "allure-results"
    props = dict(line.split("=", 1) for line in (res / "environment.properties").read_text().splitlines())
    assert cert["api_url"].startswith("http://127.0.0.1:") and cert["app"]["schema_version"]
    assert props == {
        "target": "local", "environment": "local", "project_ref": LOCAL_REF, "api_url": cert["api_url"],
        "server_version": cert["server_version"], "app.git_sha": head, "app.deployment_id": cert["app"]["deployment_id"],
        "schema_version": cert["app"]["schema_version"],
        "suite.version": cert["suite"]["version"], "suite.git_sha": head,
        "runbook.sha256": cert["runbook_sha256"], "dialect": "runbook", "tier": "postdeploy",
        "verdict": "not-certified",
    }
    assert props["app.deployment_id"].startswith("local-") and re.fullmatch(r"\d+\.\d+\.\d+.*", props["suite.version"])
    assert json.loads((res / "executor.json").read_text())["reportName"] == cert["run_id"]
    cats = {c["name"]: c for c in json.loads((res / "categories.json").read_text())}
    case3 = cats["Scenario 2 · Case 3: hard guard mismatch"]
    for inv in ("JC-DEEP-07", "JC-GUARD-01"):
        assert re.fullmatch(case3["messageRegex"].removeprefix("(?s)"), results[inv]["statusDetails"]["message"], re.DOTALL)

    # still failing / newly passing against the run above
    sql("UPDATE app_settings SET value = 'local' WHERE key = 'environment'")
    sql("UPDATE app_settings SET value = 'jyqgbzhqavgpxqacduoi' WHERE key = 'supabase_project_ref'")
    nxt = suite("-m", "postdeploy", "--compare-with", str(run.run_dir / "certificate.json"), paths=HEALTH_AND_GUARDS)
    comparison = nxt.certificate["comparison"]
    assert comparison["newly_failing"] == ["JC-GUARD-02"]
    assert comparison["newly_passing"] == ["JC-GUARD-01"]
    assert comparison["still_failing"] == ["JC-DEEP-01", "JC-DEEP-07"]


def test_waivers(healthy: NativeStack, suite, sql, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sql("UPDATE app_settings SET value = 'production' WHERE key = 'environment'")
    runbook = tmp_path / "runbook.toml"
    runbook.write_text(RUNBOOK + (
        '"JC-GUARD-01" = { reason = "migration of app_settings under way", expires = 2099-12-31, approved_by = "ops lead" }\n'
        '"JC-DEEP-07" = { reason = "an old exception", expires = 2020-01-01 }\n'
        '"JC-HEALTH-01" = { reason = "slow liveness, accepted", expires = 2099-12-31 }\n'
        '"JC-NOPE-01" = { reason = "a check not in this run", expires = 2099-12-31 }\n'
    ))
    run = suite("--runbook", str(runbook), "-n", "2", paths=HEALTH_AND_GUARDS)
    assert run.exitcode == 1, run.output[-3000:]
    outcomes = run.outcomes()
    assert outcomes["JC-GUARD-01"] == "waived"
    assert outcomes["JC-DEEP-07"] == "failed", "an expired waiver no longer waives"
    assert run.not_passed() == {"JC-GUARD-01", "JC-DEEP-01", "JC-DEEP-07"}
    msg = run.message("JC-GUARD-01")
    assert "waived until 2099-12-31 (migration of app_settings under way)" in msg and "'production'" in msg
    status = {w["id"]: w["status"] for w in run.certificate["waivers"]}
    assert status == {"JC-GUARD-01": "applied", "JC-DEEP-07": "expired", "JC-HEALTH-01": "unused",
                      "JC-NOPE-01": "not-selected"}
    assert "JC-GUARD-01" not in run.certificate["blockers"]
    assert "waiver(s) not needed, the invariant passes (remove from runbook.toml): JC-HEALTH-01" in run.output
    assert "expired waiver(s) no longer waive: JC-DEEP-07 (expired 2020-01-01)" in run.output

    guard = allure_results(run)["JC-GUARD-01"]
    assert guard["status"] == "skipped"
    assert "until 2099-12-31 (migration of app_settings under way)" in guard["statusDetails"]["message"]
    assert labels(guard, "waiver") == ["until 2099-12-31"]
    assert "approved by ops lead" in attachment(run, guard, "waiver")

    # every failing invariant waived: certified, exit 0
    runbook.write_text(RUNBOOK + "".join(
        f'"{i}" = {{ reason = "accepted during the migration", expires = 2099-12-31 }}\n'
        for i in ("JC-GUARD-01", "JC-DEEP-01", "JC-DEEP-07")))
    run = suite("--runbook", str(runbook), paths=HEALTH_AND_GUARDS)
    assert run.exitcode == 0, run.output[-3000:]
    assert run.certificate["verdict"] == "certified" and run.certificate["counts"]["waived"] == 3


def test_signed_certificate_verifies_and_tampered_does_not(healthy: NativeStack, suite, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    private, public = verify.generate_keypair(str(tmp_path / "signer"))
    targets = local_targets(tmp_path, 'signing_key_env = "JC_LOCAL_SIGNING_KEY"\n')
    run = suite("--target-file", str(targets), "-m", "postdeploy", paths=HEALTH_AND_GUARDS,
                env={"JC_LOCAL_SIGNING_KEY": private.read_text()})
    assert run.exitcode == 0, run.output[-3000:]
    assert run.run_dir is not None and run.certificate is not None
    sig = run.certificate["signature"]
    assert sig["status"] == "signed" and sig["algorithm"] == "Ed25519"
    assert f"signed {sig['key_id']}" in run.output
    assert f"Ed25519 by key {sig['key_id']}" in (run.run_dir / "certificate.md").read_text()

    def check(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "plugins.verify", str(path), "--public-key", str(public), *extra],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)

    good = check(run.run_dir / "certificate.json", "--require-certified")
    assert good.returncode == 0 and "OK" in good.stdout, good.stdout + good.stderr

    tampered = json.loads((run.run_dir / "certificate.json").read_text())
    tampered["invariants"][0]["outcome"] = "failed"
    tampered["valid_until"] = "2999-01-01T00:00:00Z"
    bad_path = tmp_path / "tampered.json"
    bad_path.write_text(json.dumps(tampered, indent=2))
    bad = check(bad_path)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert f"invariants[{tampered['invariants'][0]['id']}]: changed after signing" in bad.stdout
    assert "valid_until: changed after signing" in bad.stdout

    other, _ = verify.generate_keypair(str(tmp_path / "other"))
    wrong = subprocess.run([sys.executable, "-m", "plugins.verify", str(run.run_dir), "--public-key",
                            str(tmp_path / "other.pub")], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 1 and "not by the given key" in wrong.stdout

    # a key that is not an Ed25519 key ends the run before anything starts
    broken = suite("--target-file", str(targets), paths=HEALTH_AND_GUARDS, env={"JC_LOCAL_SIGNING_KEY": "not-a-key"})
    assert broken.exitcode == 4 and broken.certificate is None
    assert "targets.local.signing_key_env: JC_LOCAL_SIGNING_KEY does not hold an Ed25519 private key" in broken.output
    assert "not-a-key" not in broken.output


class Recorder(BaseHTTPRequestHandler):
    """A loopback Slack: records each request (path, content type, body) on its server's
    ``requests`` list and answers 'ok'."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length", "0"))
        self.server.requests.append({  # type: ignore[attr-defined]
            "path": self.path, "content_type": self.headers.get("Content-Type"),
            "body": self.rfile.read(length).decode("utf-8"),
        })
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def slack_server() -> Iterator[HTTPServer]:
    server = HTTPServer(("127.0.0.1", 0), Recorder)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def test_slack_summary_reaches_the_loopback_server(healthy: NativeStack, suite, slack_server: HTTPServer,
                                                    tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port = slack_server.server_address[1]
    hook = f"http://127.0.0.1:{port}/services/T000/B000/slack-token-f00d"
    targets = local_targets(tmp_path, 'slack_webhook_env = "JC_LOCAL_SLACK"\nreport_base_url = "https://reports.example/jc"\n')
    healthy.stop_service("redis")
    run = suite("--target-file", str(targets), "--notify-slack", paths=HEALTH_AND_GUARDS, env={"JC_LOCAL_SLACK": hook})
    assert run.exitcode == 1, run.output[-3000:]
    assert "Slack: summary posted" in run.output
    assert "slack-token-f00d" not in run.output
    requests = slack_server.requests  # type: ignore[attr-defined]
    assert len(requests) == 1
    req = requests[0]
    assert req["path"] == "/services/T000/B000/slack-token-f00d" and req["content_type"] == "application/json"
    text = json.loads(req["body"])["text"]
    cert = run.certificate
    assert text.splitlines()[0].startswith(":rotating_light: *NOT CERTIFIED · local (local · localjuliaref0000000)")
    for inv in cert["blockers"]:
        assert f"`{inv}`" in text
    assert "JC-DEEP-02" in cert["blockers"]
    assert f"Report: https://reports.example/jc/{cert['run_id']}/html/index.html" in text

    # asked to notify without a webhook: a usage error before anything starts
    missing = suite("--target-file", str(targets), "--notify-slack", paths=HEALTH_AND_GUARDS, env={"JC_LOCAL_SLACK": ""})
    assert missing.exitcode == 4
    assert "targets.local.slack_webhook_env: environment variable JC_LOCAL_SLACK is not set" in missing.output


def test_bad_report_options_exit_4(tmp_path: Path) -> None:
    """A wrong report option or contract costs one line and exit code 4, before any stack."""
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"target": "prod", "invariants": []}))
    bad_url = local_targets(tmp_path, 'report_base_url = "ci.example/reports"\n')
    bad_runbook = tmp_path / "runbook.toml"
    bad_runbook.write_text(RUNBOOK.replace('git_sha = { endpoint = "health"', 'git_sha = { endpoint = "version"'))
    cases = [
        (("--compare-with", str(tmp_path / "nope.json")), "nope.json: --compare-with: no such certificate"),
        (("--compare-with", str(other)), "--compare-with: certificate of target 'prod', this run judges 'local'"),
        (("--target-file", str(bad_url)), "targets.local.report_base_url: must start with http:// or https://"),
        (("--runbook", str(bad_runbook)), "report.identity.git_sha.endpoint: unknown endpoint 'version'"),
    ]
    for args, expect in cases:
        run = run_suite(*args, reports=tmp_path / "reports")
        assert run.exitcode == 4, (args, run.output[-2000:])
        assert expect in run.output, (args, run.output[-2000:])
        assert not (tmp_path / "reports").exists()


# --- Slack failures: a synthetic run (no stack), each way the post can fail ------------------

_SYNTHETIC_PASSES = ("tests/synthetic_checks/check_report.py",)
_ONLY_PASSING = ("-k", "test_passes and not retry")  # JC-REPORT-05 alone: a certified run


class _Answers500(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.requests.append(self.path)  # type: ignore[attr-defined]
        body = b"internal_error"
        self.send_response(500)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _serve(handler: type[BaseHTTPRequestHandler]) -> tuple[HTTPServer, threading.Thread]:
    server = HTTPServer(("127.0.0.1", 0), handler)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


def _slack_run(tmp_path: Path, hook: str, name: str, timeout: str = "2") -> SuiteRun:
    targets = local_targets(tmp_path, f'slack_webhook_env = "JC_LOCAL_SLACK"\nslack_timeout_s = {timeout}\n')
    return run_suite("--target-file", str(targets), "--notify-slack", *_ONLY_PASSING, paths=_SYNTHETIC_PASSES,
                     reports=tmp_path / f"reports-{name}", env={"JC_LOCAL_SLACK": hook})


def test_slack_failures_never_change_the_verdict(tmp_path: Path) -> None:
    """A post that fails — no answer, nobody listening, a 500 — costs one line naming the
    failure, never the URL, and the run ends as it would without --notify-slack."""
    import socket

    token = "slack-token-beef"
    plain = run_suite("-k", _ONLY_PASSING[1], paths=_SYNTHETIC_PASSES, reports=tmp_path / "reports-plain")
    assert plain.exitcode == 0 and plain.certificate is not None, plain.output[-3000:]

    # accepts the connection (the kernel's backlog) and never answers
    silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    failing, thread = _serve(_Answers500)
    try:
        cases = {
            "silent": (f"http://127.0.0.1:{silent.getsockname()[1]}/services/T/B/{token}", "timeout"),
            "closed": (f"http://127.0.0.1:{closed_port}/services/T/B/{token}", "ConnectError"),
            "500": (f"http://127.0.0.1:{failing.server_address[1]}/services/T/B/{token}", "HTTP 500: internal_error"),
        }
        for name, (hook, expect) in cases.items():
            run = _slack_run(tmp_path, hook, name)
            assert run.exitcode == plain.exitcode, (name, run.output[-3000:])
            assert run.certificate is not None and run.certificate["verdict"] == "certified", name
            line = next((ln for ln in run.output.splitlines() if "Slack: post failed: " in ln), "")
            print(name, "->", line)
            assert expect.lower() in line.lower(), (name, run.output[-3000:])
            assert token not in run.output and "Traceback" not in run.output, (name, run.output[-3000:])
        assert failing.requests == ["/services/T/B/" + token]  # type: ignore[attr-defined]
    finally:
        silent.close()
        failing.shutdown()
        failing.server_close()
        thread.join(timeout=10)


def test_slack_webhook_value_is_checked_before_the_run(tmp_path: Path, slack_server: HTTPServer) -> None:
    """A secret pasted with its trailing newline still posts; a value that is no URL ends the
    run before anything starts: exit 4, one line naming the variable, never its value."""
    port = slack_server.server_address[1]
    good = _slack_run(tmp_path, f"http://127.0.0.1:{port}/services/T/B/slack-token-cafe\n", "newline")
    assert good.exitcode == 0 and "Slack: summary posted" in good.output, good.output[-3000:]
    assert [r["path"] for r in slack_server.requests] == ["/services/T/B/slack-token-cafe"]  # type: ignore[attr-defined]
    for name, value, why in [
        ("space", "https://hooks.example/services/T/B/slack token-cafe", "contains whitespace"),
        ("ipv6", "http://[::1/services/T/B/slack-token-cafe", "is not a URL httpx can parse (InvalidURL)"),
        ("scheme", "hooks.example/services/T/B/slack-token-cafe", "is not an http:// or https:// URL"),
    ]:
        run = _slack_run(tmp_path, value, name)
        assert run.exitcode == 4 and run.certificate is None, (name, run.output[-3000:])
        assert f"targets.local.slack_webhook_env: JC_LOCAL_SLACK {why}" in run.output, (name, run.output[-3000:])
        assert "slack-token-cafe" not in run.output and "Traceback" not in run.output, (name, run.output[-3000:])


@pytest.mark.parametrize("timeout", ["inf", "nan", "0", "600"])
def test_slack_deadline_must_be_finite_and_short(tmp_path: Path, timeout: str) -> None:
    """TOML spells inf and nan: a deadline that would never end (or delay the exit by
    minutes) is a config error before anything starts, not a crash at the end of the run."""
    run = _slack_run(tmp_path, "http://127.0.0.1:9/services/T/B/slack-token-cafe", f"deadline-{timeout}", timeout)
    assert run.exitcode == 4 and run.certificate is None, run.output[-3000:]
    assert "targets.local.slack_timeout_s: must be a number of seconds greater than 0 and at most 120" in run.output
    assert "Traceback" not in run.output and "slack-token-cafe" not in run.output
