"""Runbook › Runbook Updates: the runbook's own commands must work on the system it describes.

"This document should be reviewed and updated … after each incident." The worst time to
learn that a runbook query names a column production renamed is the incident itself, when
the operator pastes it and gets an error — or, worse, zero rows. Each kind of command is
one invariant: its SQL plans (01), its curls reach a route (02), the jq paths it reads exist
(03), and the variables it tells operators to check are the app's (04). Every failure names
the runbook line and the target's own words (the database's error, the HTTP status, the
keys the response has), so the runbook can be fixed line by line; every command's verdict
goes to ``reports/<run>/runbook-lint/<id>.json``.

Read-only on every target: SQL is planned with EXPLAIN in a READ ONLY transaction that is
rolled back, curls are replayed as GET.
"""

from __future__ import annotations

import difflib
from typing import Any

import pytest

from fixtures.connections import Api, Database
from fixtures.probes import runbook_lint as probes_runbook
from fixtures.jq_paths import JqUnsupported, parse_jq, resolve_jq
from fixtures.runbook_doc import RunbookDoc
from plugins.contract.runbook_lint import LintContract
from plugins.contract.targets import RunContext
from plugins.contract.verdict import violated
from plugins.invariants import invariant
from plugins.needs_option import skip_unless_given
from plugins.runbook_doc import APP_ENV_VARS, write_lint_report

# Tier ``runbook`` only: not postdeploy (it lints a document, not a deploy); nightly only with
# --runbook-doc (plugins.runbook_doc adds the marker then).
_SECTION = "Runbook Updates"
_REMEDY = (
    "Runbook Updates (\"review and update after each incident\"): fix each flagged line of the "
    "runbook to what the target says (the error names the table, column, route or key), "
    "then re-run `-m runbook --runbook-doc RUNBOOK.md`."
)


def _summary(what: str, broken: list[dict[str, Any]], total: int, doc: RunbookDoc) -> str:
    """Lines first (the certificate keeps ~400 characters), then each line's cause."""
    lines = ", ".join(str(b["line"]) for b in broken)
    causes = "; ".join(f"line {b['line']}: {b['detail']}" for b in broken)
    return f"{len(broken)} of {total} {what} of {doc.path.name} fail on this target (lines {lines}): {causes}"


@invariant(
    "JC-RUNBOOK-01",
    title="every SQL statement of the runbook plans on the target's database",
    severity="normal",
    section=f"{_SECTION} › SQL statements",
    remedy=_REMEDY,
    tiers=("runbook",),
)
def test_runbook_sql_plans(runbook_doc: RunbookDoc, db: Database, lint_contract: LintContract,
                           pytestconfig: pytest.Config) -> None:
    """A statement naming a missing table or column — or a pg_stat_statements column of
    another server version — fails with the database's error, as it would for the operator."""
    if not runbook_doc.statements:
        pytest.skip(f"{runbook_doc.path.name} has no SQL statement")
    verdicts = [probes_runbook.plan_statement(db, s, lint_contract.placeholder) for s in runbook_doc.statements]
    rows = [v.row() for v in verdicts]
    write_lint_report(pytestconfig, "JC-RUNBOOK-01", runbook_doc, rows)
    broken = [r for r in rows if r["outcome"] == "broken"]
    if broken:
        raise violated(_summary("SQL statements", broken, len(rows), runbook_doc), evidence=broken)


@pytest.fixture(scope="module")
def replies(runbook_doc: RunbookDoc, api: Api) -> dict[str, probes_runbook.Reply]:
    return probes_runbook.replay(api, [c.path for c in runbook_doc.curls])


@invariant(
    "JC-RUNBOOK-02",
    title="every curl of the production URL in the runbook reaches a route",
    severity="normal",
    section=f"{_SECTION} › curl commands",
    remedy=_REMEDY,
    tiers=("runbook",),
)
def test_runbook_curl_routes(runbook_doc: RunbookDoc, replies: dict[str, probes_runbook.Reply],
                             pytestconfig: pytest.Config) -> None:
    """Each curl is replayed as GET against the target's base URL: a 404 means the route
    the runbook sends the operator to does not exist there."""
    if not runbook_doc.curls:
        pytest.skip(f"{runbook_doc.path.name} has no curl of the production URL")
    rows: list[dict[str, Any]] = []
    for c in runbook_doc.curls:
        reply = replies[c.path]
        replayed = "" if c.method == "GET" else f" (the runbook sends {c.method}; replayed as GET)"
        rows.append({
            "line": c.line, "command": c.command, "path": c.path, "status": reply.status,
            "outcome": "broken" if reply.missing else "ok",
            "detail": f"GET {c.path} answered {reply.status}{replayed}",
        })
    write_lint_report(pytestconfig, "JC-RUNBOOK-02", runbook_doc, rows)
    broken = [r for r in rows if r["outcome"] == "broken"]
    if broken:
        raise violated(_summary("curl commands", broken, len(rows), runbook_doc), evidence=broken)


def _jq_row(line: int, path: str, expr: str, reply: probes_runbook.Reply) -> dict[str, Any]:
    row: dict[str, Any] = {"line": line, "path": path, "jq": expr}
    if reply.missing:
        return {**row, "outcome": "skipped", "detail": f"GET {path} answered 404 (JC-RUNBOOK-02)"}
    try:
        jq = parse_jq(expr)
    except JqUnsupported as exc:
        return {**row, "outcome": "skipped", "detail": f"jq expression not checked: {exc}"}
    if reply.json_error is not None:
        return {**row, "outcome": "broken", "detail": f"jq '{expr}' cannot read it: {reply.json_error}"}
    found = resolve_jq(reply.body, jq)
    if found.found:
        return {**row, "outcome": "ok", "detail": f"jq '{expr}' found in GET {path}"}
    if found.undetermined:
        return {**row, "outcome": "skipped", "detail": found.undetermined}
    return {**row, "outcome": "broken", "detail": f"jq '{expr}' on GET {path}: {found.missing}"}


@invariant(
    "JC-RUNBOOK-03",
    title="every jq path the runbook reads from a response exists in it",
    severity="normal",
    section=f"{_SECTION} › jq paths",
    remedy=_REMEDY,
    tiers=("runbook",),
)
def test_runbook_jq_paths(runbook_doc: RunbookDoc, replies: dict[str, probes_runbook.Reply],
                          pytestconfig: pytest.Config) -> None:
    """jq prints ``null`` for a key that is not there: the operator reads "nothing" where the
    runbook promised latency figures. A path must exist in the target's actual response."""
    uses = [c for c in runbook_doc.curls if c.jq is not None]
    if not uses:
        pytest.skip(f"{runbook_doc.path.name} pipes no production curl into jq")
    rows = [_jq_row(c.line, c.path, c.jq or ".", replies[c.path]) for c in uses]
    write_lint_report(pytestconfig, "JC-RUNBOOK-03", runbook_doc, rows)
    broken = [r for r in rows if r["outcome"] == "broken"]
    if broken:
        raise violated(_summary("jq paths", broken, len(rows), runbook_doc), evidence=broken)


@invariant(
    "JC-RUNBOOK-04",
    title="every variable the runbook tells operators to check is one the app reads",
    severity="normal",
    section=f"{_SECTION} › environment variables",
    remedy=_REMEDY,
    tiers=("runbook",),
)
def test_runbook_env_var_names(runbook_doc: RunbookDoc, ctx: RunContext, pytestconfig: pytest.Config) -> None:
    """``echo $CHATWOOT_API_URL`` prints an empty line when the app reads CHATWOOT_URL: the
    operator concludes the variable is unset and "fixes" the wrong one."""
    known = ctx.target.options.get(APP_ENV_VARS)
    if known is None:
        skip_unless_given(f"targets.{ctx.target.name}.{APP_ENV_VARS}",
                          f"target {ctx.target.name} lists no {APP_ENV_VARS} in {ctx.target.path.name}: "
                          "the app's variable names are unknown")
    mentioned = runbook_doc.env_var_lines()
    if not mentioned:
        pytest.skip(f"{runbook_doc.path.name} names no environment variable")
    app = set(known)
    rows: list[dict[str, Any]] = []
    for name, lines in mentioned.items():
        if name in app:
            rows.append({"name": name, "line": lines[0], "lines": list(lines), "outcome": "ok", "detail": "known"})
            continue
        close = difflib.get_close_matches(name, sorted(app), n=1, cutoff=0.6)
        hint = f", the app has {close[0]}" if close else ""
        also = f" (also lines {', '.join(map(str, lines[1:]))})" if len(lines) > 1 else ""
        rows.append({
            "name": name, "line": lines[0], "lines": list(lines), "outcome": "broken",
            "detail": f"{name} is not the app's{hint}{also}",
        })
    write_lint_report(pytestconfig, "JC-RUNBOOK-04", runbook_doc, rows)
    broken = [r for r in rows if r["outcome"] == "broken"]
    if broken:
        raise violated(_summary("environment variable names", broken, len(rows), runbook_doc), evidence=broken)
