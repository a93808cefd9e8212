"""Issue 19's pure parts, without a stack: waiting for a build (matching, backoff, the deadline,
reading the build in both dialects over loopback), the run history (failing since, recovery,
flaky, the bound), the Slack summary that leads with what changed, and metrics.prom (parsed by
prometheus_client's own parsers, pushed to a real loopback receiver)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_prometheus

from plugins import metrics
from plugins.build_wait import (
    Observation,
    WaitRecord,
    delays,
    matches,
    not_judged_markdown,
    observe_build,
    stale_message,
    timeline_markdown,
    wait_for_build,
)
from plugins.certificate_doc import render_markdown
from plugins.contract.redaction import Redactor
from plugins.contract.runbook import load_runbook
from plugins.html_report import report_config
from plugins.notify import summary_text
from plugins.run_history import (
    HistoryStore,
    annotate,
    entry_of,
    flips,
    history_markdown,
    previous_certificate,
    since_text,
)
from tests.loopback import Canned, LoopbackApi
from tests.test_report_units import _cert, _row

ROOT = Path(__file__).resolve().parents[1]
A = "a" * 40
B = "b1" * 20


# --- waiting for the build -----------------------------------------------------------------


def test_a_build_matches_by_sha_prefix_or_deployment_id() -> None:
    seen = Observation(at="t", git_sha=B, deployment_id="7d2c-dep")
    assert matches(B, seen) and matches(B[:7], seen) and matches(B.upper(), seen)
    assert matches("7d2c-dep", seen)
    assert not matches(B[:6], seen)  # too short to be a sha prefix
    assert not matches(A, seen) and not matches("7d2c", seen)
    assert matches(B, Observation(at="t", git_sha=B[:12]))  # the app reports a short sha
    assert not matches(B, Observation(at="t", problem="connection refused"))


def test_pauses_grow_then_stay_at_the_cap() -> None:
    it = delays()
    assert [next(it) for _ in range(7)] == [1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0]


class FakeTime:
    """A clock that advances only when the wait sleeps (or a poll costs time)."""

    def __init__(self, poll_cost: float = 0.0) -> None:
        self.now = 0.0
        self.pauses: list[float] = []
        self.poll_cost = poll_cost

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


def test_the_gate_waits_for_the_new_build() -> None:
    t = FakeTime()
    answers = iter([Observation("1", git_sha=A), Observation("2", problem="API unreachable: connection refused"),
                    Observation("3", problem="API unreachable: connection refused"), Observation("4", git_sha=B)])
    heard: list[str] = []
    rec = wait_for_build(B, 300, lambda: next(answers), sleep=t.sleep, clock=t.clock,
                         on_answer=lambda r, o: heard.append(o.describe()))
    assert rec.outcome == "live" and rec.polls == 4 and rec.message is None
    assert [o.at for o in rec.seen] == ["1", "2", "4"]  # the first answer and every change
    assert heard == [A, "no build (API unreachable: connection refused)", B]
    assert t.pauses == [1.0, 2.0, 4.0] and rec.waited_s == 7.0


def test_the_old_build_at_the_deadline_is_one_line() -> None:
    t = FakeTime()
    rec = wait_for_build(B, 30, lambda: Observation("t", git_sha="abc123"), sleep=t.sleep, clock=t.clock)
    assert rec.outcome == "timed-out"
    assert rec.message == f"deployment still reports abc123 after 30 s; expected {B}"
    # pauses are cut to the time left; the last poll is at the deadline itself
    assert t.pauses == [1.0, 2.0, 4.0, 8.0, 15.0] and sum(t.pauses) == 30 and rec.polls == 6
    assert len(rec.seen) == 1
    # never answered at all
    silent = Observation("t", problem="deep: API unreachable: GET http://x/health/deep: connection refused")
    assert stale_message("def456", 300, silent) == (
        "deployment did not report its build within 300 s (last: deep: API unreachable: GET "
        "http://x/health/deep: connection refused); expected def456")
    # the record survives the trip to an xdist worker
    assert WaitRecord.from_json(rec.to_json()).certificate() == rec.certificate()


def test_a_wait_that_is_interrupted_says_so() -> None:
    def interrupt() -> Observation:
        raise KeyboardInterrupt

    rec = WaitRecord(expected=B, timeout_s=10, started_at="t")
    with pytest.raises(KeyboardInterrupt):
        wait_for_build(B, 10, interrupt, record=rec)
    assert rec.outcome == "interrupted" and rec.finished_at


@pytest.mark.parametrize("dialect, path, body", [
    # the deployment: version.git_sha / version.deployment_id of /health/deep, also when unhealthy
    ("deployment", "/health/deep", {"status": "unhealthy", "deploy_safe": False,
                                    "version": {"git_sha": B, "deployment_id": "dep-9", "run_mode": "api"}}),
    # the runbook's words (the reference app): git_sha / deployment_id of /health
    ("runbook", "/health", {"status": "healthy", "git_sha": B, "deployment_id": "dep-9"}),
])
def test_the_build_is_read_where_the_dialect_says(dialect: str, path: str, body: dict[str, Any]) -> None:
    runbook = load_runbook(ROOT / "runbook.toml", dialect)
    with LoopbackApi(routes={path: Canned(503 if dialect == "deployment" else 200, body)}) as api:
        seen = observe_build(api.url, runbook, Redactor())
    assert (seen.git_sha, seen.deployment_id, seen.problem) == (B, "dep-9", None)
    # "unknown" (the deployment's word for an unset GIT_SHA) is no build
    unknown = {"status": "healthy", "version": {"git_sha": "unknown", "deployment_id": "unknown"}}
    with LoopbackApi(routes={"/health/deep": Canned(200, unknown)}) as api:
        seen = observe_build(api.url, load_runbook(ROOT / "runbook.toml", "deployment"), Redactor())
    assert seen.build is None and "not set in its environment" in (seen.problem or "")


def test_nothing_listening_is_a_problem_not_a_build() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    seen = observe_build(f"http://127.0.0.1:{port}", load_runbook(ROOT / "runbook.toml"), Redactor())
    assert seen.build is None and "connection refused" in (seen.problem or "")


def test_the_wait_in_certificate_md() -> None:
    wait = WaitRecord(expected=B, timeout_s=300, started_at="2026-12-01T03:00:00Z",
                      finished_at="2026-12-01T03:05:00Z", outcome="timed-out", waited_s=300.0, polls=24,
                      seen=[Observation("2026-12-01T03:00:01Z", git_sha="abc123")],
                      message=f"deployment still reports abc123 after 300 s; expected {B}")
    cert = _cert(build_wait=wait.certificate())
    md = render_markdown(cert)
    assert f"**Not judged**: deployment still reports abc123 after 300 s; expected {B} (exit 6" in md
    assert md.index("**Not judged**") < md.index("## Blockers")
    assert "## Timeline" in md and "- 2026-12-01T03:00:01Z deployment reports abc123" in md
    assert "deadline after 300.0 s (24 polls): nothing judged" in md
    assert not_judged_markdown(_cert()) == [] and timeline_markdown(_cert()) == []


# --- history --------------------------------------------------------------------------------


def _entry(run_id: str, at: str, **outcomes: str) -> dict[str, Any]:
    return {"run_id": run_id, "target": "prod", "finished_at": at, "verdict": "x",
            "outcomes": {k.replace("_", "-"): v for k, v in outcomes.items()}}


def test_failing_since_recovery_and_flaky() -> None:
    entries = [
        _entry("r1", "2026-11-28T03:00:00Z", JC_A_01="passed", JC_B_01="failed", JC_C_01="passed"),
        _entry("r2", "2026-11-29T03:00:00Z", JC_A_01="failed", JC_B_01="failed", JC_C_01="failed"),
        _entry("r3", "2026-11-30T03:00:00Z", JC_A_01="error", JC_C_01="passed"),  # JC-B-01 not selected
        _entry("r4", "2026-12-01T03:00:00Z", JC_A_01="skipped", JC_B_01="failed", JC_C_01="failed"),
    ]
    rows = [_row("JC-A-01", "failed"), _row("JC-B-01", "passed"), _row("JC-C-01", "passed"), _row("JC-D-01", "error")]
    kinds = annotate(rows, entries, run_id="r5", finished_at="2026-12-02T03:00:00Z", limit=30)
    a, b, c, d = rows
    assert a["failing_since"] == {"at": "2026-11-29T03:00:00Z", "run_id": "r2", "runs": 4, "at_least": False}
    assert since_text(a["failing_since"]) == "failing since 2026-11-29T03:00:00Z, 4 runs"
    # failed in every run that selected it, then recovered
    assert b["recovered"] == {"after_runs": 3, "failing_since": "2026-11-28T03:00:00Z", "at_least": False}
    assert "failing_since" not in b
    # passed, failed, passed, failed, passed: four flips — flaky (and a recovery)
    assert c["flaky"] == {"flips": 4, "runs": 5, "outcomes": ["passed", "failed", "passed", "failed", "passed"]}
    assert d["failing_since"]["runs"] == 1 and d["failing_since"]["run_id"] == "r5"  # new: since now
    assert kinds == {"failing": ["JC-A-01", "JC-D-01"], "recovered": ["JC-B-01", "JC-C-01"], "flaky": ["JC-C-01"]}
    # one outage and its recovery are two flips: not flaky
    assert flips(["passed", "failed", "passed"]) == 2
    # a streak that reaches the oldest run of a full history may be longer: "at least"
    full = annotate([_row("JC-B-01", "failed")], entries[:2], run_id="r5", finished_at="t", limit=2)
    assert full == {"failing": ["JC-B-01"], "recovered": [], "flaky": []}


def test_history_is_bounded_and_survives_a_bad_line(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path, "prod", limit=3)
    for i in range(5):
        assert store.append(_entry(f"r{i}", f"2026-12-0{i + 1}T03:00:00Z", JC_A_01="passed")) is None
    entries, problem = store.read()
    assert [e["run_id"] for e in entries] == ["r2", "r3", "r4"] and problem is None
    assert store.runs_path == tmp_path / "history" / "prod" / "runs.jsonl"
    with store.runs_path.open("a") as f:
        f.write("{half a line\n" + json.dumps(_entry("x", "t", JC_A_01="passed") | {"target": "staging"}) + "\n")
    entries, problem = store.read()
    assert [e["run_id"] for e in entries] == ["r2", "r3", "r4"]
    assert problem is not None and "2 unreadable line(s) skipped" in problem
    prev = previous_certificate(entries)
    assert prev == {"run_id": "r4", "verdict": "x", "finished_at": "2026-12-05T03:00:00Z",
                    "invariants": [{"id": "JC-A-01", "outcome": "passed"}]}
    assert entry_of(_cert())["outcomes"] == {"JC-DEEP-01": "passed", "JC-GUARD-01": "failed"}


def test_history_in_certificate_md() -> None:
    rows = [_row("JC-DEEP-01", "passed"), _row("JC-GUARD-01", "failed")]
    rows[0]["recovered"] = {"after_runs": 2, "failing_since": "2026-11-29T03:00:00Z", "at_least": False}
    rows[1]["failing_since"] = {"at": "2026-12-01T03:00:00Z", "run_id": "r3", "runs": 4, "at_least": True}
    rows[1]["flaky"] = {"flips": 3, "runs": 6, "outcomes": ["failed", "passed", "failed", "passed", "failed", "failed"]}
    cert = _cert(invariants=rows, history={"limit": 30, "runs_before": 5, "recorded": True})
    md = render_markdown(cert)
    assert "## History of `prod` (5 earlier run(s) kept, at most 30)" in md
    assert "- **JC-GUARD-01** FAILED: failing since 2026-12-01T03:00:00Z, at least 4 runs" in md
    assert "- **JC-DEEP-01** recovered: passes again after 2 failing runs (failing since 2026-11-29T03:00:00Z)" in md
    assert "- **JC-GUARD-01** FLAKY: flipped 3 times in its last 6 runs" in md and "not retried" in md
    assert md.index("## Blockers") < md.index("## History of") < md.index("## All invariants")
    assert history_markdown(_cert()) == []


def test_allure_keeps_the_history_beside_the_reports(tmp_path: Path) -> None:
    config = report_config(_cert(), [], tmp_path / "html", (tmp_path / "history" / "allure-history.jsonl", 30))
    assert config["historyPath"] == str(tmp_path / "history" / "allure-history.jsonl")
    assert config["historyLimit"] == 30
    assert "historyPath" not in report_config(_cert(), [], tmp_path / "html")


# --- Slack: what changed first --------------------------------------------------------------


def _changed_cert() -> dict[str, Any]:
    rows = [_row("JC-DEEP-01", "passed"), _row("JC-GUARD-01", "failed"), _row("JC-MAINT-03", "failed", "normal"),
            _row("JC-QUEUE-01", "passed", "critical")]
    rows[1]["message"] = "app_settings.environment is 'production', expected 'local'"
    rows[1]["failing_since"] = {"at": "2026-12-02T03:00:00Z", "run_id": "r9", "runs": 1, "at_least": False}
    rows[2]["failing_since"] = {"at": "2026-11-28T03:00:00Z", "run_id": "r5", "runs": 4, "at_least": False}
    rows[3]["flaky"] = {"flips": 3, "runs": 4, "outcomes": ["failed", "passed", "failed", "passed"]}
    comparison = {"previous_run_id": "r8", "previous_verdict": "not-certified",
                  "previous_finished_at": "2026-12-01T03:00:00Z", "newly_failing": ["JC-GUARD-01"],
                  "newly_passing": ["JC-DEEP-01", "JC-QUEUE-01"], "still_failing": ["JC-MAINT-03"],
                  "only_now": [], "only_before": []}
    return _cert(invariants=rows, comparison=comparison, blockers=["JC-GUARD-01", "JC-MAINT-03"])


def test_slack_leads_with_what_changed() -> None:
    text = summary_text(_changed_cert(), "https://ci.example/r/index.html")
    lines = text.splitlines()
    assert lines[0].startswith(":rotating_light: *NOT CERTIFIED · prod")
    assert lines[2] == "*Since run `r8`* (not-certified, 2026-12-01T03:00:00Z):"
    assert lines[3] == "*:new: New failures (1):*"
    assert lines[4] == ("• `JC-GUARD-01` [blocker] app_settings.environment is 'production', expected 'local'")
    assert "*:white_check_mark: Recovered (2):*\n• `JC-DEEP-01` [blocker]\n• `JC-QUEUE-01` [critical]" in text
    assert "• `JC-MAINT-03` [normal] failing since 2026-11-28T03:00:00Z, 4 runs" in text
    assert "• `JC-QUEUE-01` 3 flips in its last 4 runs" in text
    assert "found failed" not in text  # the still-failing invariant's message is in the report, not here
    assert lines[-1] == "Report: https://ci.example/r/index.html"
    # nothing changed: said in one line
    same = _changed_cert()
    same["comparison"].update(newly_failing=[], newly_passing=[])
    assert "No change." in summary_text(same, None)
    # a run that judged nothing says so, and lists nothing
    stale = summary_text(_cert(build_wait={"outcome": "timed-out", "message": "deployment still reports a1 after 3 s; "
                                                                             "expected b2"}), None)
    assert stale.splitlines()[2] == ":hourglass: *Not judged*: deployment still reports a1 after 3 s; expected b2"
    assert "JC-GUARD-01" not in stale
    # a first run lists what does not pass
    first = summary_text(_cert(), None)
    assert "*Not passing (1):*\n• `JC-GUARD-01` [blocker] found failed" in first and "Since run" not in first


# --- metrics --------------------------------------------------------------------------------


def _samples(text: str, parser: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for fam in parser(text) for s in fam.samples}


def test_metrics_parse_with_both_parsers_and_match_the_certificate() -> None:
    cert = _changed_cert()
    cert["retries"] = 2
    cert["build_wait"] = {"outcome": "live", "waited_s": 42.0}
    text = metrics.openmetrics_text(cert)
    assert text.endswith("# EOF\n")
    om = _samples(text, parse_openmetrics)
    assert om == _samples(text, parse_prometheus)  # node_exporter's textfile collector reads the same
    run = (("target", "prod"), ("tier", "postdeploy"))
    assert om[("jc_certified", run)] == 0
    assert om[("jc_run_duration_seconds", run)] == 60
    assert om[("jc_run_retries", run)] == 2 and om[("jc_build_wait_seconds", run)] == 42
    assert om[("jc_build_wait_timed_out", run)] == 0
    guard = (("id", "JC-GUARD-01"), ("severity", "blocker"), *run)
    assert om[("jc_invariant_ok", guard)] == 0 and om[("jc_invariant_failing_runs", guard)] == 1
    assert om[("jc_invariant_outcome", tuple(sorted((*guard, ("outcome", "failed")))))] == 1
    assert om[("jc_invariant_flaky", (("id", "JC-QUEUE-01"), ("severity", "critical"), *run))] == 1
    assert om[("jc_invariants", tuple(sorted((*run, ("outcome", "failed")))))] == 2
    assert om[("jc_run_finished_timestamp_seconds", run)] == 1770724800  # 2026-02-10T12:00:00Z


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        self.server.requests.append((self.command, self.path, self.headers.get("Content-Type"), body))  # type: ignore[attr-defined]
        status = self.server.status  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Length", "0")
        if status == 307:
            self.send_header("Location", "http://127.0.0.1:9/elsewhere")
        self.end_headers()

    do_PUT = do_POST  # noqa: N815 - (recorded too, so a wrong verb shows)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[HTTPServer]:
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    server.requests = []  # type: ignore[attr-defined]
    server.status = 200  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def test_metrics_push_to_a_loopback_gateway(receiver: HTTPServer) -> None:
    url = f"http://127.0.0.1:{receiver.server_address[1]}"
    cert = _changed_cert()
    assert metrics.push(url, cert, 5) is None
    [(verb, path, ctype, body)] = receiver.requests  # type: ignore[attr-defined]
    assert verb == "POST" and path == "/metrics/job/julia-conformance/target/prod/tier/postdeploy"
    assert ctype and ctype.startswith("text/plain")
    pushed = _samples(body, parse_prometheus)
    assert pushed == _samples(metrics.openmetrics_text(cert), parse_openmetrics)
    # failures: one line naming the cause, never the URL; never raises
    receiver.status = 500  # type: ignore[attr-defined]
    assert metrics.push(f"http://user:s3cret@127.0.0.1:{receiver.server_address[1]}", cert, 5) == "OSError: HTTP 500"
    receiver.status = 307  # type: ignore[attr-defined]  # a redirect is not followed
    assert metrics.push(url, cert, 5) == "OSError: HTTP 307"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    problem = metrics.push(f"http://127.0.0.1:{closed}/pg", cert, 5)
    assert problem is not None and problem.startswith("ConnectError") and str(closed) not in problem


def test_the_push_url_is_checked() -> None:
    assert metrics.url_problem("http://pushgateway:9091", "https://app.example") is None
    assert metrics.url_problem("https://app.example/metrics", "https://app.example") == (
        "is the target's own API: the suite never sends anything but GET to the target")
    assert metrics.url_problem("pushgateway:9091", None) == "is not an http:// or https:// URL with a host"
    assert metrics.url_problem(" ", None) == "is empty"
