"""The words of a verdict: an invariant's metadata, a violation, an undecidable check.

A check declares its invariant once (``plugins.invariants.invariant``, which validates the
metadata here and marks the test); it reports a broken invariant by raising ``Violation``
(an incident line; the remedy comes from the declaration) and that it could not decide by
raising ``Undecidable`` (outcome ``error``). Probes raise ``Undecidable`` too, so these
types live in the contract leaf: importing them loads no plugin and no stack.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

SEVERITIES = ("blocker", "critical", "normal", "minor")
_ID_PREFIX = "JC-"
# SQLSTATEs of a name a statement uses that the database does not have.
UNDEFINED_NAMES = {"42P01": "table", "42703": "column", "3F000": "schema"}


@dataclass(frozen=True)
class Invariant:
    id: str
    title: str
    severity: str
    section: str
    remedy: str
    area: str


_REGISTRY: dict[str, Invariant] = {}


def declare(id: str, *, title: str, severity: str, section: str, remedy: str, area: str | None = None) -> Invariant:
    """Validate and register one invariant's metadata (``id`` is ``JC-<AREA>-<nn>``).

    Declaring the same id twice is allowed only with the same metadata (a module imported
    under two names), never with different metadata."""
    if not id.startswith(_ID_PREFIX) or id.count("-") != 2:
        raise ValueError(f"invariant id {id!r} must look like JC-<AREA>-<nn>")
    if severity not in SEVERITIES:
        raise ValueError(f"invariant {id}: severity must be one of {SEVERITIES}")
    inv = Invariant(
        id=id,
        title=title,
        severity=severity,
        section=section,
        remedy=" ".join(remedy.split()),
        area=area or id.split("-")[1],
    )
    previous = _REGISTRY.get(id)
    if previous is not None and previous != inv:
        raise ValueError(f"invariant id {id} is declared twice with different metadata")
    _REGISTRY[id] = inv
    return inv


def declared(id: str) -> Invariant | None:
    return _REGISTRY.get(id)


def registry() -> dict[str, Invariant]:
    return dict(_REGISTRY)


class Violation(AssertionError):
    """The target breaks the invariant. Message: what was expected, what was found."""

    def __init__(self, message: str, *, evidence: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.evidence = evidence


class Undecidable(Exception):
    """The check could not reach or read what it needs to decide (outcome: error).

    ``remedy`` replaces the invariant's own on this outcome when the first thing to do is
    not the invariant's remedy (rows hidden from the suite's role call for sight, never for
    the INSERT a missing row would)."""

    def __init__(self, message: str, *, evidence: Any = None, remedy: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.evidence = evidence
        self.remedy = remedy


# Outcomes that do not block certification: passed, or waived by an unexpired waiver.
OK_OUTCOMES = ("passed", "waived")


def is_ok(outcome: str) -> bool:
    """Passed, or waived by an unexpired waiver: neither blocks certification."""
    return outcome in OK_OUTCOMES


def violated(message: str, *, evidence: Any = None) -> Violation:
    """Build a Violation (``raise violated(...)``) — one place that shapes the message."""
    return Violation(message, evidence=evidence)


# PostgreSQL's excerpt of the statement under an error ("LINE 3: FROM "public"."x" e" and a
# caret line), flattened to one line: noise in a verdict, which names the cause instead.
_STATEMENT_EXCERPT = re.compile(r"\s*\bLINE \d+: .*?\^")


def one_line(text: str, limit: int = 400) -> str:
    flat = _STATEMENT_EXCERPT.sub("", " ".join(str(text).split()))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
