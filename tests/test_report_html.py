"""The offline HTML report (Allure 3), opened in a real browser: the certificate's verdict
and the target's identity are on its first page. A screenshot stays in the run's folder.

This is the one self-test that builds the HTML (the others run with --no-html): it needs
Node, the npm package `allure` and Chromium, all installed by scripts/bootstrap.
"""

from __future__ import annotations

import re
from pathlib import Path

from fixtures.stack.backends.native import NativeStack
from tests.browser import closed_port, geometry, rendered_text, screenshot
from tests.conftest import run_suite
from tests.test_report_first_view import SEEN_FIRST, WINDOW

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
    assert external_references(html) == []
    text = rendered_text(index)  # (Chromium without network: tests/browser.py)
    sha = run.certificate["app"]["git_sha"][:12]
    headline = f"NOT CERTIFIED · local (local · localjuliaref0000000) · app {sha}"
    assert headline in text, text[:2000]
    for blocker in run.certificate["blockers"]:
        assert blocker in text
    assert "JC-GUARD-01 · app_settings.environment equals the target's APP_ENV" in text
    png = screenshot(index, run.run_dir / "report-screenshot.png")
    assert png.stat().st_size > 10_000
    # issue 17: at 1400×1000 the first screen holds the headline and the real blockers, unscrolled
    seen = geometry(index, {"title": SEEN_FIRST["title"], "blockers": SEEN_FIRST["blockers"]}, WINDOW)
    assert seen["scrollY"] == 0 and seen["maxScrollTop"] == 0, seen
    assert seen["elements"]["title"]["text"].startswith(headline), seen
    assert seen["elements"]["blockers"]["text"] == "Blockers" + "\n".join(run.certificate["blockers"]), seen
    assert all(0 <= box["top"] and box["bottom"] <= seen["innerHeight"] for box in seen["elements"].values()), seen


_EXTERNAL = re.compile(r"""(?:\b(?:src|href|action|poster|data)\s*=\s*["']?|url\(\s*["']?|@import\s+["'])(?:https?:)?//""",
                       re.IGNORECASE)


def external_references(html: str) -> list[str]:
    """Every attribute or CSS reference of the page that would fetch from the network
    (scripts and styles are inlined as data: URIs, which are not)."""
    return [html[m.start():m.end() + 60] for m in _EXTERNAL.finditer(html)]


def test_html_is_built_without_network(tmp_path: Path) -> None:
    """The report is built with every proxy pointing at a closed port (a build that fetched
    anything would fail or hang) and references nothing outside its own file. A synthetic run:
    no stack needed."""
    dead = f"http://127.0.0.1:{closed_port()}"
    env = {name: dead for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                                   "all_proxy", "npm_config_proxy", "npm_config_https_proxy")}
    env.update(NO_PROXY="", no_proxy="", NODE_USE_ENV_PROXY="1", npm_config_offline="true")
    run = run_suite("--build-html", "-k", "test_passes and not retry", paths=("tests/synthetic_checks/check_report.py",),
                    reports=tmp_path / "reports", env=env)
    assert run.exitcode == 0 and run.run_dir is not None, run.output[-3000:]
    index = run.run_dir / "html" / "index.html"
    assert index.is_file(), run.output[-2000:]
    html = index.read_text(encoding="utf-8")
    assert len(html) > 100_000 and 'src="data:text/javascript;base64,' in html  # the app itself is inline
    assert external_references(html) == []
    assert external_references('<img src="https://x.example/a.png"><a href=//cdn.example>') != []  # (the check can fail)
