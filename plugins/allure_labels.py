"""Allure labels and evidence, from each check's single ``@invariant`` declaration.

The Allure report is what someone opens in the morning: every invariant is filed under its
runbook area (epic), section (feature) and title (story), with its severity, its tiers as
tags, its id, and a link to the runbook section it enforces. A failure carries its evidence
(redacted) and the remedy as attachments.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from plugins.invariants import Undecidable, Violation, invariant_of, report_warnings
from plugins.target import redactor, run_context

TIERS = ("postdeploy", "nightly", "premerge", "mutates")

try:
    import allure

    _ALLURE = True
except ImportError:  # pragma: no cover - allure-pytest is a declared dependency
    _ALLURE = False


def _active(config: pytest.Config) -> bool:
    return _ALLURE and bool(getattr(config.option, "allure_report_dir", None))


@pytest.fixture(autouse=True)
def _jc_allure_labels(request: pytest.FixtureRequest) -> Iterator[None]:
    inv = invariant_of(request.node)
    if inv is None or not _active(request.config):
        yield
        return
    ctx = run_context(request.config)
    allure.dynamic.epic(inv.area)
    allure.dynamic.feature(inv.section.split("›")[0].strip())
    allure.dynamic.story(inv.title)
    allure.dynamic.title(f"{inv.id} · {inv.title}")
    allure.dynamic.severity(inv.severity)
    allure.dynamic.label("invariant", inv.id)
    allure.dynamic.label("target", ctx.target.name)
    for tier in TIERS:
        if request.node.get_closest_marker(tier) is not None:
            allure.dynamic.tag(tier)
    allure.dynamic.link(f"{ctx.runbook.runbook_url}#{inv.anchor}", name=f"Runbook › {inv.section}")
    allure.dynamic.description(f"Remedy: {inv.remedy}")
    yield


@pytest.hookimpl(wrapper=True)
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
    if call.excinfo is None:
        return report
    inv = invariant_of(item)
    exc = call.excinfo.value
    if inv is None or not isinstance(exc, (Violation, Undecidable)):
        return report
    red = redactor(item.config)
    try:
        if exc.evidence is not None:
            allure.attach(
                red.scrub(json.dumps(exc.evidence, indent=2, ensure_ascii=False, default=str)),
                name="evidence", attachment_type=allure.attachment_type.JSON,
            )
        allure.attach(red.scrub(inv.remedy), name="remedy", attachment_type=allure.attachment_type.TEXT)
    except Exception:  # noqa: BLE001 - a reporting hiccup must never change a verdict
        pass
    return report
