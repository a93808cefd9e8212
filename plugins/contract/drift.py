"""Telling drift from an outage: the dialect in force, every other known one, and the findings.

The runbook describes production, and production has moved on. A check that meets the
deployment speaking words the dialect in force does not know — a route answered only on an
alias, a body in another dialect's shape — quotes both sides as a ``DriftFinding``. When it
cannot judge because of a name it raises ``DriftUndecidable`` ("drift, not an outage"); when
the reading of the dialect the deployment speaks finds the invariant broken, it raises
``DriftViolation`` — the fault first, the drift beside it. (plugins.drift records both on
the reports and writes the certificate's drift section.)
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from plugins.contract.dialects import RUNBOOK_DIALECT, at_key, known_dialects, leaf_diff, raw_contract
from plugins.contract.runbook import Runbook, load_runbook
from plugins.contract.toml_schema import ConfigError
from plugins.contract.verdict import Undecidable, Violation, one_line


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
        text = f"{self.key}: runbook {quote(self.runbook)}, deployment {quote(self.deployment)}"
        if self.observed:
            text += f" ({self.observed})"
        return text + (f" — {self.note}" if self.note else "")

    def entry(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v != "" or k in ("runbook", "deployment")}


def quote(value: Any) -> str:
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
                    note = (f"dialects/{self.in_force.name}.toml respells it {quote(ours)}, but the deployment "
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


def declared_entries(rb: Runbook) -> list[dict[str, Any]]:
    """The dialect file's respellings, as drift entries (``declared_in`` the file)."""
    source = f"dialects/{rb.dialect}.toml"
    return [{**DriftFinding(d.key, d.runbook, d.deployment, note=f"read from {d.source}" if d.source else "").entry(),
             "declared_in": source} for d in rb.drift]
