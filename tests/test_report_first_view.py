"""Issue 17 item 8: what a person sees first.

The HTML report's first screen (headless Chromium, a 1400×1000 window) shows the verdict, the
target, the build and the real blockers, without scrolling; certificate.md lists checks
skipped only because an option was not given after the real failures, each with the option
that decides it; and certificate.md is covered by the signature, so an edited page fails
`julia-conformance-verify`.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fixtures.stack.backends.native import NativeStack
from plugins import html_first_screen, verify
from plugins.certificate_doc import blockers, render_markdown
from plugins.html_report import report_config
from tests.browser import geometry, screenshot
from tests.conftest import LOCAL_REF, ROOT, SuiteRun, run_suite, targets_text

FIRST_VIEW = ("tests/synthetic_checks/check_first_view.py",)
WINDOW = (1400, 1000)


def _item(key: str) -> dict[str, str]:
    """A report variable (Allure 3's metadata item) by its name."""
    return {"selector": '[data-testid="metadata-item-key"]', "text": key, "up": '[data-testid="metadata-item"]'}


SEEN_FIRST = {
    "title": {"selector": '[data-testid="report-title"]'},  # the report's name: the certificate's headline
    "verdict": _item("Verdict"),
    "blockers": _item("Blockers"),
    "target": _item("Target"),
    "build": _item("App git sha"),
    "deployment": _item("Deployment"),
    "needs option": _item("Needs option"),
}


@pytest.fixture(scope="module")
def first_view(tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    """A run with a real failure, a skip for the target's reason, a check waiting for an
    option and checks that hold; its HTML report built (a synthetic run: no stack)."""
    run = run_suite("--build-html", paths=FIRST_VIEW, reports=tmp_path_factory.mktemp("first-view") / "reports")
    assert run.exitcode == 1 and run.run_dir is not None, run.output[-3000:]
    assert (run.run_dir / "html" / "index.html").is_file(), run.output[-3000:]
    return run


def test_first_screen_shows_verdict_target_build_and_blockers(first_view: SuiteRun) -> None:
    """At 1400×1000 the page opens at its top — neither the window nor the report's own
    scroll container (Allure 3's base layout scrolls an element, not the window: scrollY alone
    would stay 0 on the broken page) has moved — and the verdict, target, build and blockers
    are all inside the first view. The screenshot stays in the run's folder."""
    assert first_view.run_dir is not None
    index = first_view.run_dir / "html" / "index.html"
    seen = geometry(index, SEEN_FIRST, WINDOW)
    assert seen["scrollY"] == 0 and seen["maxScrollTop"] == 0, seen
    height = seen["innerHeight"]
    assert 0 < height <= WINDOW[1], seen
    for name, box in seen["elements"].items():
        assert box is not None, f"{name} is not on the page: {seen}"
        assert 0 <= box["top"] and box["bottom"] <= height, f"{name} is not in the first view: {seen}"
    title = seen["elements"]["title"]["text"]
    assert title.startswith("NOT CERTIFIED · local (local · localjuliaref0000000)"), title
    assert "NOT CERTIFIED" in seen["elements"]["verdict"]["text"]
    # the real blockers, one a line, and apart from them the check waiting for an option
    assert seen["elements"]["blockers"]["text"] == "BlockersJC-VIEW-02\nJC-VIEW-03", seen
    assert seen["elements"]["needs option"]["text"] == "Needs optionJC-VIEW-01: needs --app-repo PATH", seen
    png = screenshot(index, first_view.run_dir / "first-screen.png", window=WINDOW)
    assert png.stat().st_size > 10_000


def test_without_the_fix_the_report_opens_scrolled(first_view: SuiteRun, tmp_path: Path) -> None:
    """The cause, shown: the same page without plugins.html_first_screen's script opens with
    Allure's tree cursor (the first test) scrolled into view and the headline above the top."""
    assert first_view.run_dir is not None
    html = (first_view.run_dir / "html" / "index.html").read_text(encoding="utf-8")
    bare = re.sub(r'<script id="jc-first-screen">.*?</script>', "", html, count=1, flags=re.DOTALL)
    assert bare != html
    page = tmp_path / "index.html"
    page.write_text(bare, encoding="utf-8")
    seen = geometry(page, {"title": SEEN_FIRST["title"]}, WINDOW)
    assert seen["maxScrollTop"] > 0 and seen["elements"]["title"]["bottom"] < 0, seen


def test_certificate_md_puts_checks_waiting_for_an_option_after_real_failures(first_view: SuiteRun) -> None:
    cert = first_view.certificate
    assert cert is not None and first_view.run_dir is not None
    assert cert["blockers"] == ["JC-VIEW-02", "JC-VIEW-03", "JC-VIEW-01"]
    rows = {r["id"]: r for r in cert["invariants"]}
    assert rows["JC-VIEW-01"]["outcome"] == "skipped" and rows["JC-VIEW-01"]["needs_option"] == "--app-repo PATH"
    assert rows["JC-VIEW-01"]["message"] == "no --app-repo given: the application's code was not scanned"
    assert "needs_option" not in rows["JC-VIEW-03"]  # skipped for a reason of the target's: a real blocker
    md = (first_view.run_dir / "certificate.md").read_text()
    assert md.index("**JC-VIEW-02**") < md.index("**JC-VIEW-03**") < md.index(
        "### Not judged: an option was not given (1)") < md.index("**JC-VIEW-01**") < md.index("## All invariants")
    assert "- **JC-VIEW-01** [blocker] SKIPPED — a check that waits for an option\n  - decided by: --app-repo PATH" in md
    assert "julia-conformance: blockers: JC-VIEW-02, JC-VIEW-03\n" in first_view.output
    assert "julia-conformance: not judged, an option was not given: JC-VIEW-01 (needs --app-repo PATH)" in first_view.output


_STAGING = """[targets.staging]
local = false
api_url = "{api}"
environment = "local"
project_ref = "{ref}"
database_url_env = "JC_STAGING_DATABASE_URL"
redis_url_env = "JC_STAGING_REDIS_URL"
"""


def test_real_checks_name_the_option_that_decides_them(healthy: NativeStack, sql: Any, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A staging-like profile (read-only, the local stack behind it) given neither a Railway
    token, nor --app-repo, nor --migrations-dir, and whose app_settings break a hard guard: the
    guard's failure comes first, then JC-SCHED-04, JC-SEC-05 and the migration check, each
    with the option that would decide it."""
    info = healthy.info
    assert info is not None
    sql("UPDATE app_settings SET value = 'production' WHERE key = 'environment'")
    targets = tmp_path / "targets.toml"
    targets.write_text(_STAGING.format(api=info.api_url, ref=LOCAL_REF))
    run = run_suite(
        "--target-file", str(targets), "--target", "staging",
        paths=("checks/test_guards.py::test_environment_matches_app_settings",
               "checks/test_scheduler.py::test_scheduler_scale",
               "checks/test_security.py::test_no_secret_in_app_repository",
               "checks/test_schema.py::test_migration_files_applied"),
        reports=tmp_path / "reports",
        env={"JC_STAGING_DATABASE_URL": info.database_url, "JC_STAGING_REDIS_URL": info.redis_url},
    )
    assert run.exitcode == 1 and run.certificate is not None, run.output[-3000:]
    options = {r["id"]: r.get("needs_option") for r in run.certificate["invariants"]}
    assert options == {
        "JC-GUARD-01": None,
        "JC-SCHED-04": "targets.staging.railway_token_env (a Railway API token)",
        "JC-SEC-05": "--app-repo PATH",
        "JC-MIG-01": "--migrations-dir PATH",
    }, run.certificate["invariants"]
    assert run.outcomes()["JC-GUARD-01"] == "failed"
    assert run.certificate["blockers"][0] == "JC-GUARD-01"
    assert run.run_dir is not None
    md = (run.run_dir / "certificate.md").read_text()
    waiting = md.index("### Not judged: an option was not given (3)")
    assert md.index("**JC-GUARD-01**") < waiting
    for inv, option in options.items():
        if option is not None:
            assert md.index(f"**{inv}**") > waiting and f"  - decided by: {option}" in md, md


# --- certificate.md under the signature -------------------------------------------------------


def _local_targets(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "targets.toml"
    line = 'redis_url_env = "JC_LOCAL_REDIS_URL"\n'
    path.write_text(targets_text().replace(line, line + extra, 1))
    return path


def _verify(path: Path, public: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plugins.verify", str(path), "--public-key", str(public)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_an_edited_certificate_md_fails_verification(tmp_path: Path) -> None:
    private, public = verify.generate_keypair(str(tmp_path / "signer"))
    targets = _local_targets(tmp_path, 'signing_key_env = "JC_LOCAL_SIGNING_KEY"\n')
    run = run_suite("--target-file", str(targets), paths=FIRST_VIEW, reports=tmp_path / "reports",
                    env={"JC_LOCAL_SIGNING_KEY": private.read_text()})
    assert run.certificate is not None and run.run_dir is not None, run.output[-3000:]
    page = run.run_dir / "certificate.md"
    text = page.read_text(encoding="utf-8")
    assert run.certificate["documents"] == {
        "certificate.md": {"sha256": hashlib.sha256(page.read_bytes()).hexdigest(), "bytes": page.stat().st_size}}
    # the page says what the signed certificate says of its signature
    assert render_markdown(run.certificate) == text
    good = _verify(run.run_dir, public)
    assert good.returncode == 0 and "certificate.md unchanged" in good.stdout, good.stdout + good.stderr

    page.write_text(text.replace("# NOT CERTIFIED", "# CERTIFIED", 1), encoding="utf-8")
    bad = _verify(run.run_dir, public)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "certificate.md: changed after signing" in bad.stdout, bad.stdout

    page.unlink()  # a certificate copied without its page still verifies, and says so
    alone = _verify(run.run_dir / "certificate.json", public)
    assert alone.returncode == 0 and "certificate.md not found beside the certificate: not checked" in alone.stdout

    forged = dict(run.certificate)
    forged["documents"] = {"certificate.md": {"sha256": "0" * 64, "bytes": 1}}
    (tmp_path / "forged").mkdir()
    (tmp_path / "forged" / "certificate.json").write_text(json.dumps(forged))
    (tmp_path / "forged" / "certificate.md").write_text(text, encoding="utf-8")
    forged_run = _verify(tmp_path / "forged", public)
    assert forged_run.returncode == 1 and "documents: changed after signing" in forged_run.stdout, forged_run.stdout


# --- units ------------------------------------------------------------------------------------


def _row(inv: str, outcome: str, severity: str = "critical", **extra: Any) -> dict[str, Any]:
    return {"id": inv, "title": inv.lower(), "severity": severity, "section": "S", "outcome": outcome,
            "message": "m", "remedy": "r", **extra}


def test_blockers_put_checks_waiting_for_an_option_last() -> None:
    rows = [_row("JC-A-01", "skipped", "blocker", needs_option="--app-repo PATH"), _row("JC-B-01", "failed", "normal"),
            _row("JC-C-01", "error", "critical"), _row("JC-D-01", "passed"), _row("JC-E-01", "skipped", "minor")]
    assert [r["id"] for r in blockers(rows)] == ["JC-C-01", "JC-B-01", "JC-E-01", "JC-A-01"]
    config = report_config({"verdict": "not-certified", "invariants": rows}, [], Path("/tmp/html"))
    names = list(config["variables"])
    assert names[:6] == ["Verdict", "Blockers", "Target", "App git sha", "Deployment", "Needs option"]
    assert config["variables"]["Blockers"] == "JC-C-01\nJC-B-01\nJC-E-01"
    assert config["variables"]["Needs option"] == "JC-A-01: needs --app-repo PATH"


def test_first_screen_script_is_added_once() -> None:
    page = "<html><head><title>t</title></head><body></body></html>"
    once = html_first_screen.first_screen(page)
    assert once.index('<script id="jc-first-screen">') < once.index("<title>")
    assert html_first_screen.first_screen(once) == once


def test_documents_of_a_certificate(tmp_path: Path) -> None:
    (tmp_path / "certificate.md").write_text("# page\n", encoding="utf-8")
    digest = hashlib.sha256(b"# page\n").hexdigest()
    assert verify.documents({"documents": {"certificate.md": {"sha256": digest}}}, tmp_path) == ([], [], ["certificate.md"])
    problems, _, _ = verify.documents({"documents": {"certificate.md": {"sha256": "f" * 64}}}, tmp_path)
    assert problems and problems[0].startswith("certificate.md: changed after signing")
    assert verify.documents({"documents": {"../x.md": {"sha256": digest}}}, tmp_path)[0] == [
        "documents.../x.md: not a file name with its sha256"]
    assert verify.documents({}, tmp_path)[1] == ["no page is covered by the signature (a certificate written before issue 17)"]
