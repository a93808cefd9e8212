"""Allure labels, evidence and run metadata, from each check's single ``@invariant`` declaration.

The Allure report is what someone opens in the morning: every invariant is filed under its
runbook area (epic: the runbook's top-level section), its section (feature) and its title
(story), with its severity (blocker = a rollback trigger), its tiers as tags, its id, and a
link to the runbook section it enforces. A failure reads as an incident line
(``[JC-DEEP-07] VIOLATION: …``) and carries its evidence (redacted) and the remedy as
attachments. The run's folder gets ``environment.properties`` (what was judged),
``executor.json`` (which CI job judged it) and ``categories.json`` (failures filed under the
runbook's incident scenarios).

allure-pytest overwrites a test's name and description after setup from the function itself,
so the title and description are set from the report hook instead of the setup fixture; and
attachments made from ``pytest_runtest_makereport`` land on the test's result (allure-pytest
attaches to the last open executable item, which is the test in every phase — proven in
tests/test_report_run.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from fixtures import json_bounds
from plugins.contract.report import ReportContract
from plugins.contract.verdict import Invariant, Undecidable, Violation
from plugins.invariants import invariant_of, report_retries, report_warnings
from plugins.target import redactor, run_context

TIERS = ("postdeploy", "nightly", "premerge", "mutates")

try:
    import allure

    _ALLURE = True
except ImportError:  # pragma: no cover - allure-pytest is a declared dependency
    _ALLURE = False


def _active(config: pytest.Config) -> bool:
    return _ALLURE and bool(getattr(config.option, "allure_report_dir", None))


def results_dir(config: pytest.Config) -> Path | None:
    value = getattr(config.option, "allure_report_dir", None)
    return Path(value).resolve() if _ALLURE and value else None


def epic_and_feature(inv: Invariant) -> tuple[str, str]:
    """Runbook area (top-level section) and the section below it."""
    parts = [p.strip() for p in inv.section.split("›") if p.strip()]
    if not parts:
        return inv.area, inv.area
    return parts[0], " › ".join(parts[1:]) or parts[0]


def description(inv: Invariant) -> str:
    return (f"**{inv.id}** — {inv.title}\n\nRunbook: {inv.section}\n\n"
            f"Severity: {inv.severity}\n\nRemedy: {inv.remedy}")


@pytest.fixture(autouse=True)
def _jc_allure_labels(request: pytest.FixtureRequest) -> Iterator[None]:
    inv = invariant_of(request.node)
    if inv is None or not _active(request.config):
        yield
        return
    ctx = run_context(request.config)
    epic, feature = epic_and_feature(inv)
    allure.dynamic.epic(epic)
    allure.dynamic.feature(feature)
    allure.dynamic.story(inv.title)
    allure.dynamic.severity(inv.severity)
    allure.dynamic.id(inv.id)
    allure.dynamic.label("invariant", inv.id)
    allure.dynamic.label("area", inv.area)
    allure.dynamic.label("target", ctx.target.name)
    # Tier tags: allure-pytest already turns every argument-less marker (the tiers) into a
    # tag; adding them again would list each tier twice.
    allure.dynamic.link(ctx.runbook.runbook_link(inv.section), name=f"Runbook › {inv.section}")
    yield


def _allure_test_result(config: pytest.Config) -> Any:
    """allure-pytest's open result for the current test (None when not reachable)."""
    listener = config.pluginmanager.get_plugin("allure_listener")
    logger = getattr(listener, "allure_logger", None)
    get_test = getattr(logger, "get_test", None)
    return get_test(None) if callable(get_test) else None


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report = yield
    if not _active(item.config):
        return report
    warnings = report_warnings(report) if report.when == "call" else []
    if warnings and invariant_of(item) is not None:
        # Passed, but visibly not clean: a tag to filter on and the warnings attached.
        try:
            allure.dynamic.tag("warning")
            allure.dynamic.label("warning", "; ".join(warnings))
            allure.attach(redactor(item.config).scrub("\n".join(warnings)), name="warnings",
                          attachment_type=allure.attachment_type.TEXT)
        except Exception:  # noqa: BLE001 - a reporting hiccup must never change a verdict
            pass
    retries = report_retries(report)
    if retries and invariant_of(item) is not None:
        # A read that needed a second try: shown, never hidden behind a pass.
        try:
            allure.dynamic.tag("retried")
            allure.attach(redactor(item.config).scrub("\n".join(retries)), name="retries",
                          attachment_type=allure.attachment_type.TEXT)
        except Exception:  # noqa: BLE001 - a reporting hiccup must never change a verdict
            pass
    inv = invariant_of(item)
    if inv is None or not _active(item.config):
        return report
    red = redactor(item.config)
    allure.dynamic.title(f"{inv.id} · {inv.title}")
    allure.dynamic.description(red.scrub(description(inv)))
    if call.excinfo is None or report.passed:
        return report
    from plugins.waivers import Waived

    exc = call.excinfo.value
    finding = exc.finding if isinstance(exc, Waived) else exc
    if isinstance(exc, Waived):
        allure.dynamic.label("waiver", f"until {exc.waiver.expires.isoformat()}")
        allure.attach(red.scrub(exc.waiver.describe()), name="waiver", attachment_type=allure.attachment_type.TEXT)
    elif isinstance(exc, (Violation, Undecidable)):
        kind = "VIOLATION" if isinstance(exc, Violation) else "UNDECIDED"
        result = _allure_test_result(item.config)
        details = getattr(result, "statusDetails", None)
        if details is not None:
            details.message = red.scrub(f"[{inv.id}] {kind}: {exc.message}")
    evidence = getattr(finding, "evidence", None)
    if evidence is not None:
        allure.attach(
            red.scrub(json.dumps(json_bounds.capped(evidence), indent=2, ensure_ascii=False, default=str)),
            name="evidence", attachment_type=allure.attachment_type.JSON,
        )
    # an Undecidable may carry its own first step (rows hidden from the role: give it sight)
    remedy = (finding.remedy if isinstance(finding, Undecidable) else None) or inv.remedy
    allure.attach(red.scrub(remedy), name="remedy", attachment_type=allure.attachment_type.TEXT)
    return report


# --- run metadata written next to the results ---------------------------------------------


def _prop_escape(text: str, *, key: bool = False) -> str:
    out = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    if key:
        out = out.replace("=", "\\=").replace(":", "\\:").replace(" ", "\\ ")
    return out


def environment_properties(cert: Mapping[str, Any]) -> dict[str, str]:
    """What was judged, with app facts only when the app reported them."""
    app = cert.get("app") or {}
    suite = cert.get("suite") or {}
    props = {
        "target": cert.get("target"),
        "environment": cert.get("environment"),
        "project_ref": cert.get("project_ref"),
        "api_url": cert.get("api_url") or None,
        "server_version": cert.get("server_version"),
        "app.git_sha": app.get("git_sha"),
        "app.deployment_id": app.get("deployment_id"),
        "schema_version": app.get("schema_version"),
        "suite.version": suite.get("version"),
        "suite.git_sha": suite.get("git_sha"),
        "runbook.sha256": cert.get("runbook_sha256"),
        "dialect": cert.get("dialect"),
        "drift": len(cert["drift"]) if cert.get("drift") else None,  # entries: certificate.md
        "tier": cert.get("tier"),
        "verdict": cert.get("verdict"),
    }
    return {k: str(v) for k, v in props.items() if v not in (None, "")}


def write_environment(results: Path, cert: Mapping[str, Any]) -> Path:
    path = results / "environment.properties"
    lines = [f"{_prop_escape(k, key=True)}={_prop_escape(v)}" for k, v in environment_properties(cert).items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def ci_executor(environ: Mapping[str, str], run_id: str, report_url: str | None = None) -> dict[str, Any]:
    """executor.json: the CI job that ran the suite, from the CI's own variables."""
    e = environ
    ex: dict[str, Any]
    if e.get("GITHUB_ACTIONS") == "true":
        run_url = None
        if e.get("GITHUB_SERVER_URL") and e.get("GITHUB_REPOSITORY") and e.get("GITHUB_RUN_ID"):
            run_url = f"{e['GITHUB_SERVER_URL']}/{e['GITHUB_REPOSITORY']}/actions/runs/{e['GITHUB_RUN_ID']}"
        ex = {"name": "GitHub Actions", "type": "github", "url": e.get("GITHUB_SERVER_URL"),
              "buildOrder": e.get("GITHUB_RUN_NUMBER"), "buildName": e.get("GITHUB_WORKFLOW"), "buildUrl": run_url}
    elif e.get("GITLAB_CI"):
        ex = {"name": "GitLab CI", "type": "gitlab", "url": e.get("CI_SERVER_URL"),
              "buildOrder": e.get("CI_PIPELINE_IID") or e.get("CI_PIPELINE_ID"),
              "buildName": e.get("CI_JOB_NAME"), "buildUrl": e.get("CI_JOB_URL") or e.get("CI_PIPELINE_URL")}
    elif e.get("JENKINS_URL"):
        ex = {"name": "Jenkins", "type": "jenkins", "url": e.get("JENKINS_URL"),
              "buildOrder": e.get("BUILD_NUMBER"), "buildName": e.get("JOB_NAME"), "buildUrl": e.get("BUILD_URL")}
    elif e.get("CIRCLECI"):
        ex = {"name": "CircleCI", "type": "circleci", "url": "https://circleci.com",
              "buildOrder": e.get("CIRCLE_BUILD_NUM"), "buildName": e.get("CIRCLE_JOB"), "buildUrl": e.get("CIRCLE_BUILD_URL")}
    elif e.get("CI"):
        ex = {"name": "CI", "type": "ci", "buildName": run_id}
    else:
        ex = {"name": "local", "type": "local", "buildName": run_id}
    ex["reportName"] = run_id
    if report_url:
        ex["reportUrl"] = report_url
    return {k: v for k, v in ex.items() if v not in (None, "")}


def write_executor(results: Path, executor: Mapping[str, Any]) -> Path:
    path = results / "executor.json"
    path.write_text(json.dumps(dict(executor), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


WAIVED_CATEGORY = "Waived: accepted violation until its expiry"
UNFILED_FAILED = "Runbook violation outside the incident scenarios"
UNDECIDED = "Could not decide: the suite could not reach or read the target"


def categories(rows: list[Mapping[str, Any]], contract: ReportContract) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Failures filed under the runbook's incident scenarios.

    Returns (categories.json for Allure 2 readers, matching on the message's ``[JC-…]``
    prefix; the same rules for Allure 3's config, matching on the ``invariant`` label).
    An invariant belongs to the scenario its section or remedy names.
    """
    by_scenario: dict[str, list[str]] = {}
    for row in rows:
        key = contract.scenario_of(str(row.get("section", "")), str(row.get("remedy", "")))
        if key is not None:
            by_scenario.setdefault(key, []).append(str(row["id"]))

    def order(key: str) -> tuple[int, int]:
        m = re.match(r"Scenario (\d+)(?: · Case (\d+))?", key)
        assert m is not None
        return int(m.group(1)), int(m.group(2) or 0)

    allure2: list[dict[str, Any]] = []
    allure3: list[dict[str, Any]] = []
    for key in sorted(by_scenario, key=order):
        ids = sorted(set(by_scenario[key]))
        alternation = "|".join(re.escape(i) for i in ids)
        name = contract.scenario_title(key)
        allure2.append({"name": name, "matchedStatuses": ["failed", "broken"],
                        "messageRegex": rf"(?s)\[({alternation})\] .*"})
        allure3.append({"name": name, "matchers": {"statuses": ["failed", "broken"],
                                                   "labels": {"invariant": f"^({alternation})$"}}})
    allure2.append({"name": WAIVED_CATEGORY, "matchedStatuses": ["skipped"], "messageRegex": r"(?s)Waived: .*"})
    allure3.append({"name": WAIVED_CATEGORY, "matchers": {"statuses": ["skipped"], "labels": {"waiver": ".+"}}})
    allure2.append({"name": UNFILED_FAILED, "matchedStatuses": ["failed"]})
    allure3.append({"name": UNFILED_FAILED, "matchers": {"statuses": ["failed"]}})
    allure2.append({"name": UNDECIDED, "matchedStatuses": ["broken"]})
    allure3.append({"name": UNDECIDED, "matchers": {"statuses": ["broken"]}})
    return allure2, allure3


def write_categories(results: Path, allure2: list[dict[str, Any]]) -> Path:
    path = results / "categories.json"
    path.write_text(json.dumps(allure2, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
