"""Units of the report: signatures, the verify command, the [report]/[waivers] contract,
the certificate's human page and comparison, Allure metadata, redaction of Allure output."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugins import signing, verify
from plugins.allure_labels import categories, ci_executor, environment_properties, epic_and_feature
from plugins.certificate_doc import blockers, compare, headline, render_markdown, valid_until
from plugins.contract.redaction import Redactor
from plugins.contract.report import parse_report, parse_waivers
from plugins.contract.runbook import load_runbook
from plugins.contract.toml_schema import ConfigError
from plugins.contract.verdict import Invariant
from plugins.html_report import report_config, strip_analytics
from plugins.notify import summary_text
from plugins.scrub import AllureRedactor, scrub_file, scrub_tree

ROOT = Path(__file__).resolve().parents[1]
RUNBOOK = ROOT / "runbook.toml"
NOW = dt.datetime(2026, 2, 10, 12, 0, tzinfo=dt.timezone.utc)


def _row(inv_id: str, outcome: str, severity: str = "blocker", section: str = "Health Checks › /health",
         remedy: str = "do it") -> dict[str, Any]:
    return {"id": inv_id, "title": f"title of {inv_id}", "severity": severity, "section": section,
            "outcome": outcome, "message": f"found {outcome}" if outcome != "passed" else "", "remedy": remedy}


def _cert(**over: Any) -> dict[str, Any]:
    cert = {
        "format": 2, "run_id": "20260210T120000Z-prod-ab12", "target": "prod", "environment": "production",
        "project_ref": "jyqgbzhqavgpxqacduoi", "api_url": "https://x.example", "tier": "postdeploy",
        "marker_expression": "postdeploy", "started_at": "2026-02-10T11:59:00Z", "finished_at": "2026-02-10T12:00:00Z",
        "valid_for_hours": 24, "valid_until": "2026-02-11T12:00:00Z", "verdict": "not-certified",
        "interrupted": False, "runbook_sha256": "ab" * 32,
        "app": {"git_sha": "1a2b3c4d5e6f7a8b", "deployment_id": "dep-42", "schema_version": "20260202", "reported": True},
        "suite": {"name": "julia-conformance", "version": "0.1.0", "git_sha": "f" * 40, "git_dirty": False},
        "counts": {"passed": 1, "failed": 1}, "blockers": ["JC-GUARD-01"], "waivers": [], "comparison": None,
        "invariants": [_row("JC-DEEP-01", "passed"), _row("JC-GUARD-01", "failed", remedy="fix the guard")],
    }
    cert.update(over)
    return cert


# --- signatures ---------------------------------------------------------------------------

KEY = signing.Ed25519PrivateKey.generate()
PUBLIC = KEY.public_key()


def test_signed_certificate_verifies() -> None:
    signed = signing.sign(_cert(), KEY)
    assert signed["signature"]["status"] == "signed"
    assert signing.verify(signed, PUBLIC).ok
    # JSON round trip (what a pipeline reads back) keeps it valid
    assert signing.verify(json.loads(json.dumps(signed, indent=2, ensure_ascii=False)), PUBLIC).ok


@pytest.mark.parametrize(
    ("tamper", "named"),
    [
        (lambda c: c.__setitem__("verdict", "certified"), "verdict: changed after signing"),
        (lambda c: c["invariants"][1].__setitem__("outcome", "passed"), "invariants[JC-GUARD-01]: changed after signing"),
        (lambda c: c["app"].__setitem__("git_sha", "deadbeef"), "app: changed after signing"),
        (lambda c: c.__setitem__("valid_until", "2099-01-01T00:00:00Z"), "valid_until: changed after signing"),
        (lambda c: c.__setitem__("extra", 1), "extra: added after signing"),
        (lambda c: c.pop("blockers"), "blockers: removed after signing"),
        (lambda c: c["invariants"].pop(1), "invariants[JC-GUARD-01]: removed after signing"),
    ],
    ids=["verdict", "row", "nested", "validity", "added", "removed", "row-removed"],
)
def test_tampered_field_is_named(tamper, named: str) -> None:  # type: ignore[no-untyped-def]
    signed = signing.sign(_cert(), KEY)
    tamper(signed)
    result = signing.verify(signed, PUBLIC)
    assert not result.ok
    assert named in result.problems


def test_tampered_digests_still_fail() -> None:
    signed = signing.sign(_cert(), KEY)
    signed["verdict"] = "certified"
    body = {k: v for k, v in signed.items() if k != "signature"}
    signed["signature"]["field_digests"] = signing.field_digests(body)
    result = signing.verify(signed, PUBLIC)
    assert not result.ok and "altered" in str(result)


def test_other_key_and_unsigned_fail() -> None:
    signed = signing.sign(_cert(), KEY)
    other = signing.Ed25519PrivateKey.generate().public_key()
    result = signing.verify(signed, other)
    assert not result.ok and "not by the given key" in str(result)
    unsigned = signing.unsigned(_cert(), "no signing key configured (targets.prod.signing_key_env)")
    result = signing.verify(unsigned, PUBLIC)
    assert not result.ok and "unsigned" in str(result) and "signing_key_env" in str(result)


def test_floats_have_no_canonical_form() -> None:
    with pytest.raises(ValueError, match="floats"):
        signing.canonical({"a": [1, {"b": 0.5}]})


def test_key_formats() -> None:
    seed = KEY.private_bytes_raw()
    for text in (signing.private_pem(KEY), base64.b64encode(seed).decode(), seed.hex(),
                 base64.urlsafe_b64encode(seed).decode()):
        assert signing.raw_public(signing.load_private_key(text).public_key()) == signing.raw_public(PUBLIC)
    raw_pub = signing.raw_public(PUBLIC)
    for text in (signing.public_pem(PUBLIC), base64.b64encode(raw_pub).decode(), raw_pub.hex()):
        assert signing.key_id(signing.load_public_key(text)) == signing.key_id(PUBLIC)
    for bad in ("", "not a key", base64.b64encode(b"short").decode(), "-----BEGIN PRIVATE KEY-----\nxx\n"):
        with pytest.raises(signing.SigningKeyError):
            signing.load_private_key(bad)


_json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.text(max_size=20))
_json = st.recursive(_json_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=20)


@settings(max_examples=60, deadline=None)
@given(body=st.dictionaries(st.text(min_size=1, max_size=10).filter(lambda k: k != "signature"), _json, min_size=1, max_size=6),
       data=st.data())
def test_any_change_to_a_signed_field_is_named(body: dict[str, Any], data: st.DataObject) -> None:
    """Property: for any certificate-shaped JSON, signing verifies, and replacing any one
    top-level field's value by a different one fails naming exactly that field."""
    signed = signing.sign(body, KEY)
    assert signing.verify(signed, PUBLIC).ok
    field = data.draw(st.sampled_from(sorted(body)))
    new = data.draw(_json.filter(lambda v: signing.canonical(v) != signing.canonical(body[field])))
    tampered = copy.deepcopy(signed)
    tampered[field] = new
    result = signing.verify(tampered, PUBLIC)
    assert not result.ok
    assert f"{field}: changed after signing" in result.problems


# --- the verify command -------------------------------------------------------------------


def _write(tmp_path: Path, cert: dict[str, Any]) -> Path:
    path = tmp_path / "certificate.json"
    path.write_text(json.dumps(cert, indent=2, ensure_ascii=False))
    return path


def test_verify_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    private, public = verify.generate_keypair(str(tmp_path / "jc"))
    assert oct(private.stat().st_mode & 0o777) == "0o600"
    key = signing.load_private_key(private.read_text())
    cert = signing.sign(_cert(valid_until="2999-01-01T00:00:00Z"), key)
    path = _write(tmp_path, cert)
    assert verify.main([str(path), "--public-key", str(public)]) == 0
    assert "OK" in capsys.readouterr().out
    assert verify.main([str(tmp_path), "--public-key", str(public)]) == 0  # a run folder
    assert verify.main([str(path), "--public-key", str(public), "--require-certified"]) == 1
    assert "verdict: 'not-certified'" in capsys.readouterr().out
    cert["invariants"][1]["outcome"] = "passed"
    _write(tmp_path, cert)
    assert verify.main([str(path), "--public-key", str(public)]) == 1
    assert "invariants[JC-GUARD-01]: changed after signing" in capsys.readouterr().out


def test_verify_expiry_and_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cert = signing.sign(_cert(valid_until="2020-01-01T00:00:00Z"), KEY)
    path = _write(tmp_path, cert)
    pub = base64.b64encode(signing.raw_public(PUBLIC)).decode()
    assert verify.main([str(path), "--public-key", pub]) == 1
    assert "expired at 2020-01-01T00:00:00Z" in capsys.readouterr().out
    assert verify.main([str(path), "--public-key", pub, "--allow-expired"]) == 0
    assert verify.main([str(tmp_path / "nope.json"), "--public-key", pub]) == 4
    assert verify.main([str(path), "--public-key", "garbage"]) == 4
    assert verify.main([str(path)]) == 4
    assert verify.main(["--bogus"]) == 4
    with pytest.raises(verify.UsageProblem, match="refusing to overwrite"):
        verify.generate_keypair(str(tmp_path / "k"))
        verify.generate_keypair(str(tmp_path / "k"))


def test_console_script_is_declared() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, func = scripts["julia-conformance-verify"].partition(":")
    assert module == "plugins.verify" and callable(getattr(verify, func))


# --- runbook.toml [report] and [waivers] --------------------------------------------------


def test_shipped_report_contract() -> None:
    rb = load_runbook(RUNBOOK)
    report = rb.section("report")
    assert report.validity_hours("postdeploy") == 24
    assert report.validity_hours("") == report.valid_for_hours["all"]
    assert report.validity_hours("postdeploy and not slow") == report.valid_for_hours["default"]
    assert set(report.identity) == {"git_sha", "deployment_id", "schema_version", "railway_environment", "run_mode"}
    assert report.identity_unset == ()
    assert rb.section("waivers").items == {}


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("Scenario 2 · Case 3: APP_ENV must equal…", "Scenario 2 · Case 3"),
        ("Incident Response Scenarios › Scenario 2 › Case 5", "Scenario 2 · Case 5"),
        ("follow its Scenario 2 case", "Scenario 2"),
        ("Scenario 3: resume", "Scenario 3"),
        ("Rule 3: ROLLBACK NOW", None),
    ],
)
def test_scenario_of(text: str, key: str | None) -> None:
    assert load_runbook(RUNBOOK).section("report").scenario_of(text) == key


def test_scenario_title_falls_back() -> None:
    report = load_runbook(RUNBOOK).section("report")
    assert report.scenario_title("Scenario 2 · Case 3") == "Scenario 2 · Case 3: hard guard mismatch"
    assert report.scenario_title("Scenario 2 · Case 9") == "Scenario 2 · Case 9 (/health/deep returns 503 CRITICAL)"
    assert report.scenario_title("Scenario 9") == "Scenario 9"


_GOOD_REPORT = tomllib.loads(RUNBOOK.read_text())["report"]


@pytest.mark.parametrize(
    ("edit", "expect"),
    [
        (lambda t: t.update(extra={}), "report.extra: unknown key"),
        (lambda t: t["identity"].update(commit={"endpoint": "health", "paths": ["x"]}), "report.identity.commit: unknown key"),
        (lambda t: t["identity"]["git_sha"].update(paths=[]), "report.identity.git_sha.paths: must be a non-empty list"),
        (lambda t: t["valid_for_hours"].update(nightly=0), "report.valid_for_hours.nightly: must be greater than 0"),
        (lambda t: t["valid_for_hours"].update(nightly="26"), "report.valid_for_hours.nightly: must be an integer"),
        (lambda t: t["valid_for_hours"].pop("default"), "report.valid_for_hours.default: missing required key"),
        (lambda t: t["scenarios"].update({"Scenario two": "x"}), "report.scenarios.Scenario two: key must look like"),
    ],
)
def test_bad_report_section(edit, expect: str) -> None:  # type: ignore[no-untyped-def]
    table = copy.deepcopy(_GOOD_REPORT)
    edit(table)
    with pytest.raises(ConfigError, match=expect.replace("(", r"\(")):
        parse_report(Path("runbook.toml"), table)


@pytest.mark.parametrize(
    ("table", "expect"),
    [
        ({"GUARD-01": {"reason": "x", "expires": dt.date(2030, 1, 1)}}, "waivers.GUARD-01: must be an invariant id"),
        ({"JC-GUARD-01": {"reason": "x", "expires": "2030-01-01"}}, "waivers.JC-GUARD-01.expires: must be a TOML date"),
        ({"JC-GUARD-01": {"reason": "x", "expires": dt.datetime(2030, 1, 1)}}, "waivers.JC-GUARD-01.expires: must be a TOML date"),
        ({"JC-GUARD-01": {"expires": dt.date(2030, 1, 1)}}, "waivers.JC-GUARD-01.reason: missing required key"),
        ({"JC-GUARD-01": {"reason": " ", "expires": dt.date(2030, 1, 1)}}, "waivers.JC-GUARD-01.reason: must be a non-empty string"),
        ({"JC-GUARD-01": {"reason": "x", "expires": dt.date(2030, 1, 1), "until": 1}}, "waivers.JC-GUARD-01.until: unknown key"),
        ({"JC-GUARD-01": "forever"}, "waivers.JC-GUARD-01: must be a table"),
    ],
)
def test_bad_waivers(table: dict[str, Any], expect: str) -> None:
    with pytest.raises(ConfigError, match=expect):
        parse_waivers(Path("runbook.toml"), table)


def test_waiver_holds_through_its_expiry_day() -> None:
    waivers = parse_waivers(Path("r.toml"), {"JC-GUARD-01": {"reason": "known", "expires": dt.date(2026, 3, 31)}})
    w = waivers.items["JC-GUARD-01"]
    assert w.active(dt.date(2026, 3, 31)) and not w.active(dt.date(2026, 4, 1))
    assert set(waivers.expired(dt.date(2026, 4, 1))) == {"JC-GUARD-01"}


def test_runbook_waivers_in_toml(tmp_path: Path) -> None:
    path = tmp_path / "runbook.toml"
    path.write_text(RUNBOOK.read_text() + '"JC-RATE-01" = { reason = "ships in 42", expires = 2026-03-31 }\n')
    w = load_runbook(path).section("waivers").items["JC-RATE-01"]
    assert w.expires == dt.date(2026, 3, 31) and w.reason == "ships in 42"


# --- the certificate's pages --------------------------------------------------------------


def test_blockers_most_severe_first() -> None:
    rows = [_row("JC-A-01", "failed", "minor"), _row("JC-B-01", "error", "blocker"), _row("JC-C-01", "waived"),
            _row("JC-D-01", "skipped", "critical"), _row("JC-E-01", "passed")]
    assert [r["id"] for r in blockers(rows)] == ["JC-B-01", "JC-D-01", "JC-A-01"]


def test_compare() -> None:
    previous = {"run_id": "old", "verdict": "not-certified", "invariants": [
        _row("JC-A-01", "passed"), _row("JC-B-01", "failed"), _row("JC-C-01", "error"), _row("JC-D-01", "passed"),
        _row("JC-F-01", "skipped")]}
    now = [_row("JC-A-01", "failed"), _row("JC-B-01", "passed"), _row("JC-C-01", "failed"), _row("JC-D-01", "passed"),
           _row("JC-E-01", "failed"), _row("JC-F-01", "waived")]
    result = compare(previous, now)
    assert result["newly_failing"] == ["JC-A-01"]
    assert result["newly_passing"] == ["JC-B-01", "JC-F-01"]
    assert result["still_failing"] == ["JC-C-01"]
    assert result["only_now"] == ["JC-E-01"] and result["previous_run_id"] == "old"


def test_markdown_puts_verdict_then_blockers_then_the_rest() -> None:
    cert = _cert(comparison={"previous_run_id": "old", "previous_verdict": "certified", "newly_failing": ["JC-GUARD-01"],
                             "newly_passing": [], "still_failing": []},
                 signature={"status": "unsigned", "reason": "no signing key configured"})
    md = render_markdown(cert)
    lines = md.splitlines()
    assert lines[0] == "# NOT CERTIFIED — prod (production · jyqgbzhqavgpxqacduoi)"
    assert md.index("## Blockers (1)") < md.index("## Since run") < md.index("## All invariants") < md.index("## Identity")
    assert "remedy: fix the guard" in md and "**unsigned**" in md
    assert "git sha 1a2b3c4d5e6f7a8b" in md


def test_headline_and_slack_text() -> None:
    cert = _cert()
    assert headline(cert) == "NOT CERTIFIED · prod (production · jyqgbzhqavgpxqacduoi) · app 1a2b3c4d5e6f · deployment dep-42"
    text = summary_text(cert, "https://ci.example/r/index.html")
    assert text.splitlines()[0].endswith(f"*{headline(cert)}*")
    assert "`JC-GUARD-01`" in text and "Report: https://ci.example/r/index.html" in text
    assert valid_until("2026-02-10T12:00:00Z", 26) == "2026-02-11T14:00:00Z"


# --- Allure metadata ----------------------------------------------------------------------


def test_epic_and_feature_from_section() -> None:
    inv = Invariant("JC-DEEP-07", "t", "blocker", "Incident Response Scenarios › Scenario 2 › Case 3", "r", "DEEP")
    assert epic_and_feature(inv) == ("Incident Response Scenarios", "Scenario 2 › Case 3")
    inv = Invariant("JC-X-01", "t", "minor", "Health Checks", "r", "X")
    assert epic_and_feature(inv) == ("Health Checks", "Health Checks")


def test_environment_properties_list_only_what_the_app_reported() -> None:
    props = environment_properties(_cert())
    assert props["app.git_sha"] == "1a2b3c4d5e6f7a8b" and props["app.deployment_id"] == "dep-42"
    assert props["schema_version"] == "20260202" and props["suite.git_sha"] == "f" * 40
    props = environment_properties(_cert(app={"git_sha": None, "deployment_id": None, "reported": False}))
    assert "app.git_sha" not in props and "app.deployment_id" not in props


@pytest.mark.parametrize(
    ("env", "name", "url"),
    [
        ({"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "o/r",
          "GITHUB_RUN_ID": "77", "GITHUB_RUN_NUMBER": "5", "GITHUB_WORKFLOW": "nightly"},
         "GitHub Actions", "https://github.com/o/r/actions/runs/77"),
        ({"GITLAB_CI": "true", "CI_JOB_URL": "https://gl/j/1", "CI_PIPELINE_ID": "9"}, "GitLab CI", "https://gl/j/1"),
        ({"JENKINS_URL": "https://j/", "BUILD_URL": "https://j/job/x/3/", "BUILD_NUMBER": "3"}, "Jenkins", "https://j/job/x/3/"),
        ({"CI": "true"}, "CI", None),
        ({}, "local", None),
    ],
)
def test_executor_from_ci_variables(env: dict[str, str], name: str, url: str | None) -> None:
    ex = ci_executor(env, "run-1", "https://r/1/html/index.html")
    assert ex["name"] == name and ex.get("buildUrl") == url
    assert ex["reportUrl"] == "https://r/1/html/index.html" and ex["reportName"] == "run-1"


def test_categories_follow_the_runbook_scenarios() -> None:
    report = load_runbook(RUNBOOK).section("report")
    rows = [
        _row("JC-DEEP-07", "failed", section="Incident Response Scenarios › Scenario 2 › Case 3"),
        _row("JC-GUARD-01", "failed", section="Hard Guards › APP_ENV", remedy="Scenario 2 · Case 3: run SELECT…"),
        _row("JC-HEALTH-01", "failed", remedy="Scenario 1: check railway status"),
        _row("JC-DEEP-01", "failed", remedy="Rule 3: ROLLBACK NOW"),
    ]
    allure2, allure3 = categories(rows, report)
    names = [c["name"] for c in allure2]
    assert names[:2] == ["Scenario 1: App not responding (HTTP timeout)", "Scenario 2 · Case 3: hard guard mismatch"]
    import re

    case3 = allure2[1]["messageRegex"]
    assert re.fullmatch(case3, "[JC-GUARD-01] VIOLATION: app_settings.environment is 'x'")
    assert re.fullmatch(case3, "[JC-DEEP-07] VIOLATION: multi\nline")
    assert not re.fullmatch(case3, "[JC-DEEP-01] VIOLATION: x")
    assert allure3[1]["matchers"]["labels"]["invariant"] == r"^(JC\-DEEP\-07|JC\-GUARD\-01)$"
    assert [c["name"] for c in allure3] == names


def test_report_config_and_analytics_removed(tmp_path: Path) -> None:
    cert = _cert()
    config = report_config(cert, [], tmp_path / "html")
    assert config["name"] == headline(cert) == config["plugins"]["awesome"]["options"]["reportName"]
    assert config["plugins"]["awesome"]["options"]["singleFile"] is True
    assert config["variables"]["Verdict"] == "NOT CERTIFIED" and config["variables"]["Blockers"] == "JC-GUARD-01"
    html = ('<body><div id="app"></div>\n    <script async src="https://www.googletagmanager.com/gtag/js?id=G-X"></script>\n'
            "    <script>\n        window.dataLayer = window.dataLayer || [];\n        function gtag(){dataLayer.push(arguments);}\n"
            "        gtag('config', 'G-X', {});\n    </script>\n    <script>d('a','b')</script></body>")
    out = strip_analytics(html)
    assert "googletagmanager" not in out and "gtag" not in out and "<script>d('a','b')</script>" in out


# --- redaction of what Allure writes ------------------------------------------------------


def test_allure_results_are_scrubbed_before_writing(tmp_path: Path) -> None:
    from allure_commons.model2 import Attachment, StatusDetails, TestResult, TestStepResult

    red = Redactor()
    red.register('pa"ss\\word-1')
    result = TestResult(name="t", statusDetails=StatusDetails(message='dsn postgresql://u:pa"ss\\word-1@h/db', trace="Bearer abcdefghijkl"),
                        steps=[TestStepResult(name='step pa"ss\\word-1')], attachments=[Attachment(name="a", source="s")])
    AllureRedactor(red, tmp_path).report_result(result)
    assert 'pa"ss\\word-1' not in json.dumps([result.statusDetails.message, result.steps[0].name])
    assert "abcdefghijkl" not in result.statusDetails.trace
    attach = tmp_path / "x-attachment.txt"
    attach.write_text('log line pa"ss\\word-1')
    AllureRedactor(red, tmp_path).report_attached_data(body="", file_name=attach.name)
    assert "word-1" not in attach.read_text()
    data = tmp_path / "y-result.json"
    data.write_text(json.dumps({"m": 'x pa"ss\\word-1 y'}))
    assert scrub_file(data, red) and 'pa\\"ss' not in data.read_text()
    assert scrub_tree(tmp_path, red) == 0  # idempotent: nothing left to scrub


def test_slack_post_has_one_total_deadline() -> None:
    """A server that answers a byte at a time never trips a per-phase timeout; the post's
    total deadline ends it anyway, and the problem names the timeout, not the URL."""
    import socket
    import threading
    import time

    from plugins.notify import post_slack
    from plugins.contract.redaction import Redactor

    stop = threading.Event()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)

    def trickle() -> None:
        conn, _ = sock.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            while not stop.wait(0.3):
                try:
                    conn.sendall(b"o")
                except OSError:
                    return

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/services/T/B/trickle-secret"
    try:
        started = time.monotonic()
        problem = post_slack(url, "hello", Redactor(), total_timeout_s=1.5)
        print(f"post gave up after {time.monotonic() - started:.1f} s: {problem}")
    finally:
        stop.set()
        sock.close()
        thread.join(timeout=5)
    assert problem == "timeout: no complete answer within the total deadline of 1.5 s"


def test_webhook_problems_never_quote_the_value() -> None:
    from plugins.notify import clean_webhook, webhook_problem

    assert webhook_problem(clean_webhook(" https://hooks.slack.com/services/T/B/x\n")) is None
    cases = {
        "": "is empty",
        "https://hooks.example/a b": "contains whitespace or a control character inside the URL",
        "https://hooks.example/a\x00b": "contains whitespace or a control character inside the URL",
        "http://[::1/x": "is not a URL httpx can parse (InvalidURL)",
        "ftp://hooks.example/x": "is not an http:// or https:// URL",
        "http:///x": "has no host",
        "http://127.0.0.1:99999/x": "has a port out of range",
    }
    for value, why in cases.items():
        assert webhook_problem(value) == why, value


# --- the catalogue: runbook links and severities -------------------------------------------


def _catalogue() -> dict[str, Invariant]:
    """Every invariant the suite declares (importing each check module registers its own)."""
    import importlib
    import pkgutil

    import checks
    from plugins.contract.verdict import registry

    for module in pkgutil.iter_modules(checks.__path__):
        importlib.import_module(f"checks.{module.name}")
    found = registry()
    return {k: v for k, v in found.items() if not k.startswith(("JC-REPORT-", "JC-LEAK-"))}  # (probes)


def test_github_slugs() -> None:
    """GitHub's anchors for headings of the runbook (as github.com renders them)."""
    from plugins.contract.runbook_links import github_slug, slugs

    assert github_slug("CRITICAL RULES - READ FIRST") == "critical-rules---read-first"
    assert github_slug("/health/deep (Comprehensive Health Check)") == "healthdeep-comprehensive-health-check"
    assert github_slug("Runbook - Operações de Produção") == "runbook---operações-de-produção"
    assert github_slug('What "Apply Migration Manually" Means') == "what-apply-migration-manually-means"
    assert github_slug("Monthly Maintenance (First Monday of month, 2 AM UTC)") == (
        "monthly-maintenance-first-monday-of-month-2-am-utc")
    assert slugs(["## Notes", "### Notes", "## Other", "# Notes"]) == ["notes", "notes-1", "other", "notes-2"]


def test_links_point_at_the_deepest_heading_named() -> None:
    from plugins.contract.runbook_links import anchor

    outline = ["# Doc", "## Incident Response Scenarios", "### Scenario 1: A", "### Scenario 2: B (503)",
               "## Other", "### Scenario 2: elsewhere"]
    assert anchor("Incident Response Scenarios › Scenario 2 › Case 3", outline) == "scenario-2-b-503"
    assert anchor("Incident Response Scenarios › Scenario 12", outline) == "incident-response-scenarios"
    assert anchor("Other › Scenario 2", outline) == "scenario-2-elsewhere"
    assert anchor("Nowhere › Scenario 1", outline) == "nowhere"  # nothing named: the first segment
    assert anchor("Health Checks › /health", []) == "health-checks"  # no outline configured


def test_runbook_headings_are_checked(tmp_path: Path) -> None:
    text = RUNBOOK.read_text()
    bad = tmp_path / "runbook.toml"
    bad.write_text(text.replace('runbook_headings = [\n', 'runbook_headings = [\n    "Not a heading",\n', 1))
    with pytest.raises(ConfigError, match=r"contract\.runbook_headings\[0\]: must look like '## Heading text', "
                                          r"got 'Not a heading'"):
        load_runbook(bad)
    base = tmp_path / "base.toml"
    base.write_text(text.replace("https://github.com/rafa77-tech/whats-agents/blob/main/docs/operacao/runbook.md",
                                 "https://runbooks.example/julia.md", 1))
    assert load_runbook(base).runbook_link("CRITICAL RULES › Rule 4") == (
        "https://runbooks.example/julia.md#critical-rules---read-first")


def test_outline_in_runbook_toml_is_the_runbook_s(shared_runbook: Path) -> None:
    from fixtures.runbook_doc import outline_of

    real = outline_of(shared_runbook.read_text(encoding="utf-8"))
    assert list(load_runbook(RUNBOOK).runbook_headings) == real, "\n".join(real)


def test_every_invariant_links_to_a_real_heading(shared_runbook: Path) -> None:
    """Each invariant's link anchor is the GitHub slug of a heading of the real runbook — the
    deepest one its section names."""
    from plugins.contract.runbook_links import deepest_heading, slugs
    from fixtures.runbook_doc import outline_of

    runbook = load_runbook(RUNBOOK)
    real = outline_of(shared_runbook.read_text(encoding="utf-8"))
    real_slugs = slugs(real)
    catalogue = _catalogue()
    assert len(catalogue) > 40
    wrong = {}
    for inv in catalogue.values():
        url = runbook.runbook_link(inv.section)
        base, _, fragment = url.partition("#")
        found = deepest_heading(inv.section, real)
        if base != runbook.runbook_url or found is None or fragment != real_slugs[found]:
            wrong[inv.id] = (inv.section, fragment, None if found is None else real[found])
    assert wrong == {}
    link = {i: runbook.runbook_link(inv.section).partition("#")[2] for i, inv in catalogue.items()}
    assert link["JC-SCHED-02"] == "critical-rules---read-first"
    assert link["JC-DEEP-07"] == "scenario-2-healthdeep-returns-503-critical"  # Case 3 is bold, not a heading
    assert link["JC-PAUSE-01"] == "scenario-3-julia-paused-or-not-responding"
    assert link["JC-MAINT-03"] == "weekly-maintenance-every-monday-2-am-utc"


def test_rollback_triggers_are_blockers() -> None:
    """Severity blocker for every invariant the runbook makes a rollback trigger: each part of
    /health/deep (rule 3), the hard guards (rule 2), and any remedy that says ROLLBACK."""
    import re

    catalogue = _catalogue()
    parts = load_runbook(RUNBOOK).deep.parts
    deep_parts = {inv.id for inv in catalogue.values()
                  if re.match(r"/health/deep part '([^']+)'", inv.title)}
    titled = {re.match(r"/health/deep part '([^']+)'", catalogue[i].title).group(1) for i in deep_parts}  # type: ignore[union-attr]
    assert titled == set(parts), "every part of the deep report has its invariant"
    triggers = {
        inv.id: why for inv in catalogue.values()
        for why in [
            "a /health/deep part" if inv.id in deep_parts else
            "the /health/deep gate" if "/health/deep" in inv.section or inv.id.startswith("JC-DEEP-") else
            "a hard guard" if inv.id.startswith("JC-GUARD-") or "Hard Guards" in inv.section
            or "Scenario 2 · Case 3" in inv.remedy else
            "its remedy says ROLLBACK" if "ROLLBACK" in inv.remedy else None
        ] if why is not None
    }
    assert {"JC-DEEP-01", "JC-DEEP-07", "JC-DEEP-08", "JC-GUARD-01", "JC-GUARD-04", "JC-SCHEMA-01",
            "JC-MIG-04"} <= set(triggers)
    not_blockers = {i: (why, catalogue[i].severity) for i, why in triggers.items() if catalogue[i].severity != "blocker"}
    assert not_blockers == {}


def test_a_pause_failure_is_filed_under_scenario_3() -> None:
    """JC-PAUSE-01 and JC-QUEUE-01 as declared, failing with the message the suite writes,
    land in "Scenario 3: Júlia paused or not responding" — Allure 2 and Allure 3 rules alike."""
    import re

    catalogue = _catalogue()
    report = load_runbook(RUNBOOK).section("report")
    rows = [_row(i, "failed", severity=catalogue[i].severity, section=catalogue[i].section,
                 remedy=catalogue[i].remedy) for i in ("JC-PAUSE-01", "JC-QUEUE-01", "JC-DEEP-07", "JC-JOBS-02")]
    allure2, allure3 = categories(rows, report)
    names = [c["name"] for c in allure2]
    scenario3 = "Scenario 3: Júlia paused or not responding"
    assert scenario3 in names
    rule = allure2[names.index(scenario3)]
    message = "[JC-PAUSE-01] VIOLATION: julia_status is 'pausado' (since 2026-02-10 03:12, motivo 'manual')"
    assert rule["matchedStatuses"] == ["failed", "broken"]
    assert re.fullmatch(rule["messageRegex"], message)
    assert re.fullmatch(rule["messageRegex"], "[JC-QUEUE-01] UNDECIDED: fila_mensagens unreadable")
    others = [c for c in allure2 if c["name"] != scenario3 and "messageRegex" in c and c["name"].startswith("Scenario")]
    assert not any(re.fullmatch(c["messageRegex"], message) for c in others)
    assert not re.fullmatch(rule["messageRegex"], "[JC-JOBS-02] VIOLATION: x")
    rule3 = allure3[names.index(scenario3)]
    assert re.fullmatch(rule3["matchers"]["labels"]["invariant"], "JC-PAUSE-01")
