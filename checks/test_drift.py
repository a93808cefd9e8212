"""Runbook › Runbook Updates: the deployment speaks the words of the contract in force.

"This document should be reviewed and updated … monthly, after each incident." A runbook
that names a route production renamed, a status word production never says, or a view
production keeps as a table fails the operator the night they paste it. Two kinds of drift
exist, and operators need them apart:

- *declared* drift: a dialect (``dialects/<name>.toml``, selected in targets.toml) respells
  the runbook on purpose. It is reviewed, so it passes — with a warning that lists it — and
  it is the drift section of the certificate: the runbook's to-do list.
- *undeclared* drift: the deployment answers in words the dialect in force does not know,
  but another known dialect does (a route answered only on an alias, a body in another
  shape, a status word outside the contract's, a critical view that is a table, a migration
  log kept elsewhere, a job history or queue whose columns are another dialect's). That fails here (minor: nothing is down), and every other check that
  meets it says "drift" and cannot decide, instead of reporting an outage.

What no known dialect reads is not drift: it stays the fault the other checks report. And
what another dialect reads as broken (a part in error, a circuit open) is reported by its
check as the fault it is, with the drift beside it: a name never hides an outage.

Why a failure here and not only warnings: the runbook is what the on-call engineer pastes
from at 3 a.m. A minor, nightly failure keeps the runbook's to-do list in front of the team
until someone either fixes the runbook or declares the respelling in a dialect file — which
is a reviewed change, unlike a warning nobody reads.
"""

from __future__ import annotations

from collections.abc import Callable

from fixtures.connections import Api, Database
from fixtures.probes import drift_survey
from fixtures.probes.health import HealthEndpoints
from plugins.contract.drift import Dialects, DriftFinding
from plugins.contract.runbook import Runbook
from plugins.contract.verdict import Undecidable, violated
from plugins.invariants import invariant


@invariant(
    "JC-DRIFT-01",
    title="the deployment speaks the words of the dialect in force (every drift from the runbook is declared)",
    severity="minor",
    section="Runbook Updates › drift between the runbook and the deployment",
    remedy="Read the drift section of the certificate: where the deployment's words are right, fix the "
    "runbook (and runbook.toml); where the runbook's are, fix the app; a respelling kept on purpose goes "
    "in dialects/<name>.toml, selected with `dialect = \"<name>\"` in targets.toml.",
    tiers=("nightly",),
)
def test_no_undeclared_drift(dialects: Dialects, health: HealthEndpoints, db: Database, api: Api,
                             runbook: Runbook, drift: Callable[[list[DriftFinding]], None],
                             warn: Callable[[str], None]) -> None:
    unanswered: list[str] = []
    found = drift_survey.endpoints(dialects, health, runbook, unanswered)
    if len(unanswered) == len(runbook.endpoints):
        raise Undecidable(f"cannot observe the deployment's words: {unanswered[0]}")
    found += drift_survey.deep(dialects, health, runbook)
    unobserved: list[str] = []
    remedy: str | None = None  # the first step when the database could not be observed
    try:
        found += drift_survey.database(dialects, db, api, health, runbook)
    except Undecidable as exc:
        unobserved.append(f"database: {exc.message}")
        remedy = exc.remedy
    unique = list({(f.key, repr(f.runbook), repr(f.deployment)): f for f in found}.values())
    drift(unique)
    for name, problem in dialects.unusable.items():
        warn(f"dialect {name!r} is unusable, so drift towards it cannot be recognized: {problem}")
    if unique:
        raise violated(
            f"expected the deployment to speak dialect {runbook.dialect!r}; found {len(unique)} undeclared "
            f"drift(s): " + "; ".join(f.describe() for f in unique),
            evidence=[f.entry() for f in unique],
        )
    if unobserved or unanswered:
        raise Undecidable("no undeclared drift seen, but part of the deployment was not observed: "
                          + "; ".join(unobserved + unanswered), remedy=remedy)
    respelled = [d for d in runbook.drift if not d.source]
    disagree = [d for d in runbook.drift if d.source]
    if respelled:
        keys = ", ".join(d.key for d in respelled)
        warn(f"{len(respelled)} respelling(s) of the runbook declared in dialects/{runbook.dialect}.toml "
             f"(the certificate's drift section): {keys}")
    if disagree:
        warn(f"{len(disagree)} disagreement(s) between the runbook and the deployment's code declared in "
             f"dialects/{runbook.dialect}.toml (the certificate's drift section): "
             + ", ".join(d.key for d in disagree))
