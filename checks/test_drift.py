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

import psycopg
import pytest

from fixtures import probes
from fixtures.clients import Api, Database
from fixtures.probes import drift as probes_drift
from fixtures.probes import schema as probes_schema
from fixtures.probes.health import EndpointMissing, HealthEndpoints, NoAnswer
from plugins.contract.drift import Dialects, DriftFinding
from plugins.contract.runbook import Runbook
from plugins.contract.verdict import Undecidable, one_line, violated
from plugins.invariants import invariant

pytestmark = [pytest.mark.nightly]


def _endpoint_drift(dialects: Dialects, health: HealthEndpoints, runbook: Runbook,
                    unanswered: list[str]) -> list[DriftFinding]:
    """Routes and body shapes of every endpoint of the contract."""
    found: list[DriftFinding] = []
    for name in runbook.endpoints:
        reader = probes_drift.READERS.get(name, probes_drift.read_json)
        keys = probes_drift.KEYS.get(name, ())
        try:
            resp = health.answer(name)
        except EndpointMissing:
            rec = probes_drift.recognize_endpoint(dialects, health, name, reader, keys)
            found += rec.findings if rec is not None else []
            continue
        except NoAnswer as exc:
            unanswered.append(f"{name}: {exc.message}")
            continue
        alias = probes_drift.alias_finding(dialects, resp)
        found += [alias] if alias is not None else []
        try:
            reader(resp, runbook)
        except Undecidable:
            rec = probes_drift.recognize_endpoint(dialects, health, name, reader, keys)
            found += rec.findings if rec is not None else []
    return found


def _deep_drift(dialects: Dialects, health: HealthEndpoints, runbook: Runbook) -> list[DriftFinding]:
    """Parts the dialect in force cannot find, the identity fields, and status words."""
    try:
        report = health.deep()
    except Undecidable:
        return []  # JC-DEEP-01 says why; an unreadable report shows no words
    found: list[DriftFinding] = []
    for name, part in report.parts.items():
        if not part.present:
            rec = probes_drift.part_drift(dialects, health, name)
            found += rec.findings if rec is not None else []
    if report.environment is None or report.project_ref is None:
        rec = probes_drift.recognize_endpoint(dialects, health, "deep", probes_drift.read_identity,
                                              probes_drift.KEYS["identity"])
        found += rec.findings if rec is not None else []
    found += probes_drift.recognize_deep_words(dialects, health)
    return found


def _database_drift(dialects: Dialects, db: Database, api: Api, health: HealthEndpoints,
                    runbook: Runbook) -> list[DriftFinding]:
    found: list[DriftFinding] = []
    for names, wanted in ((runbook.critical_tables, "table"), (runbook.critical_views, "view")):
        rec = probes_drift.relation_drift(dialects, probes.relations(db, runbook.schema, list(names)), wanted)
        found += rec.findings if rec is not None else []
    for rec in probes_drift.runtime_names(dialects, db).drift.values():
        found += rec.findings
    try:
        probes.migration_history(db, runbook)
    except psycopg.Error as exc:
        rec = probes_drift.recognize_migration_log(dialects, db)
        found += rec.findings if rec is not None else []
    try:
        probes_schema.expected_version(api, runbook.section("schema").expected_version_from)
    except Undecidable:
        rec = probes_drift.recognize_expected_version(dialects, health)
        found += rec.findings if rec is not None else []
    return found


@invariant(
    "JC-DRIFT-01",
    title="the deployment speaks the words of the dialect in force (every drift from the runbook is declared)",
    severity="minor",
    section="Runbook Updates › drift between the runbook and the deployment",
    remedy="Read the drift section of the certificate: where the deployment's words are right, fix the "
    "runbook (and runbook.toml); where the runbook's are, fix the app; a respelling kept on purpose goes "
    "in dialects/<name>.toml, selected with `dialect = \"<name>\"` in targets.toml.",
)
def test_no_undeclared_drift(dialects: Dialects, health: HealthEndpoints, db: Database, api: Api,
                             runbook: Runbook, drift: Callable[[list[DriftFinding]], None],
                             warn: Callable[[str], None]) -> None:
    unanswered: list[str] = []
    found = _endpoint_drift(dialects, health, runbook, unanswered)
    if len(unanswered) == len(runbook.endpoints):
        raise Undecidable(f"cannot observe the deployment's words: {unanswered[0]}")
    found += _deep_drift(dialects, health, runbook)
    unobserved: list[str] = []
    remedy: str | None = None  # the first step when the database could not be observed
    try:
        found += _database_drift(dialects, db, api, health, runbook)
    except Undecidable as exc:
        unobserved.append(f"database: {exc.message}")
        remedy = exc.remedy
    except psycopg.Error as exc:
        unobserved.append(f"database: {one_line(str(exc), 200)}")
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
