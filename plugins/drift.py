"""The drift section: every place the runbook and the deployment disagree, both sides quoted.

The runbook describes production, and production has moved on. A dialect
(``dialects/<name>.toml``, selected with ``dialect = "<name>"`` in a targets.toml profile)
respells the runbook contract in the deployment's words; each respelling is *declared*
drift (``Runbook.drift``). A check that meets the deployment speaking words the dialect in
force does not know — a route answered only on an alias, a body in another dialect's shape,
a status word outside the contract's, a critical view that is a table — records it as
*observed* drift. Both go to the certificate (``"dialect"``, ``"drift"``), to the terminal,
and to Allure (tag ``drift``, the findings as evidence), so the runbook can be fixed line by
line.

A check that cannot judge because of a name raises ``DriftUndecidable``: outcome "error"
(could not decide), message starting with "drift, not an outage", never "failed" — a renamed
route is not an outage, and an operator at 3 a.m. must not roll back for it. But a name must
not hide an outage either: where the check's own rule, applied to the reading of the dialect
the deployment speaks, finds the invariant broken (a part in error, a circuit open), it
raises ``DriftViolation`` — "failed", the fault first, the drift beside it.

The findings, the dialects and both exceptions are contract vocabulary
(plugins.contract.drift); this module records them on the reports and writes the section.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from plugins.contract.dialects import RUNBOOK_DIALECT
from plugins.contract.drift import (
    Dialects,
    DriftFinding,
    DriftUndecidable,
    DriftViolation,
    declared_entries,
    quote,
)
from plugins.contract.runbook import Runbook
from plugins.contract.verdict import one_line
from plugins.invariants import invariant_of
from plugins.target import redactor, run_context

DRIFT_PROP = "jc_drift"
DRIFT_CHECK = "JC-DRIFT-01"  # checks/test_drift.py: its Allure result carries the drift section


def drift_markdown(cert: dict[str, Any]) -> list[str]:
    """The certificate page's drift section: the runbook's to-do list, both sides quoted.

    Observed drift (undeclared: the deployment speaks words the dialect in force does not
    know) comes first — it is news; declared respellings of the dialect file follow."""
    entries: list[dict[str, Any]] = cert.get("drift") or []
    dialect = cert.get("dialect") or RUNBOOK_DIALECT
    observed = [e for e in entries if "declared_in" not in e]
    declared = [e for e in entries if "declared_in" in e]
    out = [f"## Drift between the runbook and the deployment ({len(entries)})", "",
           f"Dialect in force: `{dialect}`. Fix the runbook where the deployment's words are right, "
           "the deployment where the runbook's are."]
    if not entries:
        out += ["", "None: the deployment speaks the runbook's words everywhere the run looked."]
    for title, rows in (("Observed (undeclared)", observed), (f"Declared in dialects/{dialect}.toml", declared)):
        if not rows:
            continue
        out += ["", f"### {title}", "", "| key | runbook | deployment | where |", "|---|---|---|---|"]
        for e in rows:
            where = e.get("observed") or e.get("declared_in") or ""
            if e.get("invariants"):
                where += f" ({', '.join(e['invariants'])})"
            out.append(f"| `{e['key']}` | {_cell(quote(e.get('runbook')))} | {_cell(quote(e.get('deployment')))} | "
                       f"{_cell(where + (' — ' + e['note'] if e.get('note') else ''))} |")
    return [*out, ""]


def _cell(text: str) -> str:
    return one_line(text, 300).replace("|", "\\|")


# --- pytest plumbing -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dialects(runbook: Runbook) -> Dialects:
    """The dialect in force and the others (for telling drift from an outage)."""
    return Dialects.load(runbook)


@pytest.fixture
def drift(request: pytest.FixtureRequest) -> Callable[[Iterable[DriftFinding]], None]:
    """Record observed drift on this check's report (a check that still passes, e.g. a
    route answered on an alias)."""

    def record(findings: Iterable[DriftFinding]) -> None:
        for f in findings:
            request.node.user_properties.append((DRIFT_PROP, json.dumps(f.entry(), ensure_ascii=False, default=str)))

    return record


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report: pytest.TestReport = yield
    exc = call.excinfo.value if call.excinfo is not None else None
    if isinstance(exc, (DriftUndecidable, DriftViolation)):
        for f in exc.findings:
            report.user_properties.append((DRIFT_PROP, json.dumps(f.entry(), ensure_ascii=False, default=str)))
    if report.when == "call" and any(k == DRIFT_PROP for k, _ in report.user_properties):
        _allure_tag(item)
    if report.when == "call":
        _allure_section(item, report)
    return report


def _allure_tag(item: pytest.Item) -> None:
    if not getattr(item.config.option, "allure_report_dir", None):
        return
    try:
        import allure

        allure.dynamic.tag("drift")
    except Exception:  # noqa: BLE001 - a reporting hiccup must never change a verdict
        pass


def _allure_section(item: pytest.Item, report: pytest.TestReport) -> None:
    """The drift section in the HTML report too: attached to JC-DRIFT-01, which observes the
    whole deployment, as the declared respellings plus what it saw — both sides quoted."""
    inv = invariant_of(item)
    if inv is None or inv.id != DRIFT_CHECK or not getattr(item.config.option, "allure_report_dir", None):
        return
    try:
        import allure

        rb = run_context(item.config).runbook
        observed = [json.loads(v) for k, v in report.user_properties if k == DRIFT_PROP]
        entries = declared_entries(rb) + sorted(observed, key=lambda e: (e["key"], e.get("observed", "")))
        text = "\n".join(drift_markdown({"dialect": rb.dialect, "drift": entries}))
        allure.attach(redactor(item.config).scrub(text), name="drift section",
                      attachment_type=allure.attachment_type.TEXT)
    except Exception:  # noqa: BLE001 - a reporting hiccup must never change a verdict
        pass


class DriftCollector:
    """Gathers observed drift from every report (also xdist workers'), for the certificate."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.observed: dict[tuple[str, str, str], dict[str, Any]] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        from plugins.invariants import report_invariant

        inv = report_invariant(report)
        for key, value in report.user_properties:
            if key != DRIFT_PROP:
                continue
            entry = json.loads(value)
            ident = (entry["key"], quote(entry.get("runbook")), quote(entry.get("deployment")))
            kept = self.observed.setdefault(ident, {**entry, "invariants": []})
            if inv is not None and inv.id not in kept["invariants"]:
                kept["invariants"].append(inv.id)

    def section(self) -> dict[str, Any]:
        """``{"dialect": …, "drift": [{"key", "runbook", "deployment", …}]}`` — declared
        respellings of the dialect file first, then what the run observed."""
        rb = run_context(self.config).runbook
        declared = declared_entries(rb)
        observed = sorted(self.observed.values(), key=lambda e: (e["key"], e.get("observed", "")))
        return {"dialect": rb.dialect, "drift": declared + observed}

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.config.stash.get(_ACTIVE, False):
            return
        rb = run_context(self.config).runbook
        section = self.section()
        observed = [e for e in section["drift"] if "declared_in" not in e]
        if not section["drift"]:
            return
        red = redactor(self.config)
        terminalreporter.write_line(
            f"julia-conformance: dialect {rb.dialect} — {len(section['drift']) - len(observed)} declared, "
            f"{len(observed)} observed drift(s) between the runbook and the deployment (certificate.json \"drift\")",
            yellow=bool(observed),
        )
        for e in observed:
            f = DriftFinding(e["key"], e.get("runbook"), e.get("deployment"), e.get("observed", ""), e.get("note", ""))
            terminalreporter.write_line(f"  drift {red.scrub(one_line(f.describe(), 300))}")


_COLLECTOR = pytest.StashKey["DriftCollector"]()
_ACTIVE = pytest.StashKey[bool]()


def drift_section(config: pytest.Config) -> dict[str, Any]:
    """The certificate's ``dialect`` and ``drift`` (see DriftCollector.section)."""
    collector = config.stash.get(_COLLECTOR, None)
    if collector is None:
        return {"dialect": run_context(config).runbook.dialect, "drift": []}
    config.stash[_ACTIVE] = True
    return collector.section()


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return  # the controller collects the workers' reports
    collector = DriftCollector(config)
    config.stash[_COLLECTOR] = collector
    config.pluginmanager.register(collector, "julia-conformance-drift")
