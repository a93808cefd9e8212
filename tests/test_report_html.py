"""The offline HTML report (Allure 3), opened in a real browser: the certificate's verdict
and the target's identity are on its first page. A screenshot stays in the run's folder.

This is the one self-test that builds the HTML (the others run with --no-html): it needs
Node, the npm package `allure` and Chromium, all installed by scripts/bootstrap.
"""

from __future__ import annotations

from fixtures.stack.launcher import NativeStack
from tests.browser import rendered_text, screenshot

HEALTH_AND_GUARDS = ("checks/test_health.py", "checks/test_guards.py")


def test_report_shows_the_verdict_in_a_browser(healthy: NativeStack, suite, sql) -> None:  # type: ignore[no-untyped-def]
    sql("UPDATE app_settings SET value = 'production' WHERE key = 'environment'")
    run = suite("--build-html", paths=HEALTH_AND_GUARDS)
    assert run.exitcode == 1, run.output[-3000:]
    assert run.run_dir is not None and run.certificate is not None
    index = run.run_dir / "html" / "index.html"
    assert index.is_file(), run.output[-2000:]
    assert "julia-conformance: HTML report" in run.output

    html = index.read_text()
    assert "googletagmanager" not in html and "gtag(" not in html  # offline: no analytics beacon
    text = rendered_text(index)
    sha = run.certificate["app"]["git_sha"][:12]
    headline = f"NOT CERTIFIED · local (local · localjuliaref0000000) · app {sha}"
    assert headline in text, text[:2000]
    for blocker in run.certificate["blockers"]:
        assert blocker in text
    assert "JC-GUARD-01 · app_settings.environment equals the target's APP_ENV" in text
    png = screenshot(index, run.run_dir / "report-screenshot.png")
    assert png.stat().st_size > 10_000
