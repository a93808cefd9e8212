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
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from plugins.contract.runbook import DISAGREEMENTS, RUNBOOK_DIALECT, Runbook, _overlay, dialect_path
from plugins.contract.toml_schema import ConfigError, load_toml as _load_toml
from plugins.invariants import Undecidable, Violation, invariant_of, one_line
from plugins.target import redactor, run_context

DRIFT_PROP = "jc_drift"
DRIFT_CHECK = "JC-DRIFT-01"  # checks/test_drift.py: its Allure result carries the drift section


@dataclass(frozen=True)
class DriftFinding:
    """One disagreement: ``key`` of the runbook contract (dotted), what the runbook says,
    what the deployment says or was seen to say, and where it was seen ("" = declared in
    the dialect file, not observed)."""

    key: str
    runbook: Any
    deployment: Any
    observed: str = ""
    note: str = ""

    def describe(self) -> str:
        text = f"{self.key}: runbook {_quote(self.runbook)}, deployment {_quote(self.deployment)}"
        if self.observed:
            text += f" ({self.observed})"
        return text + (f" — {self.note}" if self.note else "")

    def entry(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v != "" or k in ("runbook", "deployment")}


def _quote(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)


class DriftUndecidable(Undecidable):
    """The check cannot judge because the deployment spells a name otherwise (not an outage)."""

    def __init__(self, message: str, findings: Iterable[DriftFinding]) -> None:
        self.findings = tuple(findings)
        super().__init__(message, evidence={"drift": [f.entry() for f in self.findings]})


class DriftViolation(Violation):
    """Read in the dialect the deployment speaks, the invariant is broken: a real fault,
    reported with the drift that hid it from the dialect in force."""

    def __init__(self, message: str, findings: Iterable[DriftFinding]) -> None:
        self.findings = tuple(findings)
        super().__init__(message, evidence={"drift": [f.entry() for f in self.findings]})


# --- the contract as raw data, per dialect --------------------------------------------------


def raw_contract(runbook_path: Path, dialect: str) -> dict[str, Any]:
    """runbook.toml with the dialect's respellings applied (the data checks read)."""
    raw = _load_toml(runbook_path)
    if dialect != RUNBOOK_DIALECT:
        over = _load_toml(dialect_path(runbook_path, dialect))
        over.pop(DISAGREEMENTS, None)  # facts beside the contract, not respellings of it
        _overlay(raw, over, dialect_path(runbook_path, dialect))
    return raw


def at_key(raw: dict[str, Any], key: str) -> Any:
    node: Any = raw
    for step in key.split("."):
        if not isinstance(node, dict) or step not in node:
            return None
        node = node[step]
    return node


def leaf_diff(a: Any, b: Any, key: str) -> list[tuple[str, Any, Any]]:
    """(dotted key, a's value, b's value) for every leaf where a and b differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[tuple[str, Any, Any]] = []
        for k in [*a, *(k for k in b if k not in a)]:
            out += leaf_diff(a.get(k), b.get(k), f"{key}.{k}")
        return out
    return [] if a == b else [(key, a, b)]


def known_dialects(runbook_path: Path) -> list[str]:
    """"runbook" and every dialects/*.toml beside runbook.toml, in name order."""
    folder = dialect_path(runbook_path, "x").parent
    names = sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []
    return [RUNBOOK_DIALECT, *(n for n in names if n != RUNBOOK_DIALECT)]


@dataclass
class Dialect:
    name: str
    runbook: Runbook
    raw: dict[str, Any]


@dataclass
class Dialects:
    """The dialect in force and every other one this project knows.

    A name the dialect in force cannot read is *drift* — not an outage — exactly when the
    deployment's answer reads in another known dialect: then we know what the deployment
    says instead, and can quote both sides. An answer no dialect reads stays the fault it
    looks like.
    """

    in_force: Dialect
    runbook_raw: dict[str, Any]
    others: list[Dialect] = field(default_factory=list)
    unusable: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, runbook: Runbook) -> Dialects:
        from plugins.contract.runbook import load_runbook

        in_force = Dialect(runbook.dialect, runbook, raw_contract(runbook.path, runbook.dialect))
        found = cls(in_force, raw_contract(runbook.path, RUNBOOK_DIALECT))
        for name in known_dialects(runbook.path):
            if name == runbook.dialect:
                continue
            try:
                found.others.append(Dialect(name, load_runbook(runbook.path, name), raw_contract(runbook.path, name)))
            except ConfigError as exc:
                found.unusable[name] = str(exc)
        return found

    def findings(self, other: Dialect, keys: Iterable[str], observed: str) -> list[DriftFinding]:
        """Where ``other`` (which reads the deployment's answer) differs from the dialect in
        force on ``keys``: the runbook's words against the deployment's."""
        out: list[DriftFinding] = []
        for key in keys:
            for leaf, ours, theirs in leaf_diff(at_key(self.in_force.raw, key), at_key(other.raw, key), key):
                runbook_side = at_key(self.runbook_raw, leaf)
                note = ""
                if other.name == RUNBOOK_DIALECT:
                    note = (f"dialects/{self.in_force.name}.toml respells it {_quote(ours)}, but the deployment "
                            "speaks the runbook's words here: the dialect is stale")
                out.append(DriftFinding(leaf, runbook_side, theirs, observed, note))
        return out


def fault_message(problem: str, dialect: str, path: str, findings: Iterable[DriftFinding]) -> str:
    """A fault seen through the dialect the deployment speaks, with the drift beside it."""
    listed = "; ".join(f.describe() for f in findings)
    return one_line(f"{problem} (read in dialect {dialect!r}, {path}); also drift from the runbook's words: {listed}",
                    600)


def drift_message(what: str, dialect: str, findings: Iterable[DriftFinding]) -> str:
    """The one line of a check that met drift: what it could not read, and both sides."""
    listed = "; ".join(f.describe() for f in findings)
    return one_line(
        f"drift, not an outage: {what} — the deployment speaks dialect {dialect!r} here (judge it with "
        f"`dialect = \"{dialect}\"` in targets.toml; fix the runbook from the drift section): {listed}",
        600,
    )


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
            out.append(f"| `{e['key']}` | {_cell(_quote(e.get('runbook')))} | {_cell(_quote(e.get('deployment')))} | "
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


def declared_entries(rb: Runbook) -> list[dict[str, Any]]:
    """The dialect file's respellings, as drift entries (``declared_in`` the file)."""
    source = f"dialects/{rb.dialect}.toml"
    return [{**DriftFinding(d.key, d.runbook, d.deployment, note=f"read from {d.source}" if d.source else "").entry(),
             "declared_in": source} for d in rb.drift]


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
            ident = (entry["key"], _quote(entry.get("runbook")), _quote(entry.get("deployment")))
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
