"""Runbook Scenario 3 and "Emergency Pause Julia": Júlia's switch.

Júlia must be ``ativo`` (the newest decision, not a heartbeat's row). While she is paused
nothing may be sent (JC-PAUSE-02): the emergency pause is the runbook's brake for "data
corruption, security breach, mass spam", and a worker that ignores it turns the brake into
a lie.

Every name (tables, columns, status words, keys, thresholds, the job table) comes from
runbook.toml's [runtime] section; every query is in fixtures/probes/runtime/; the fixtures
``runtime``, ``now`` and ``names`` are fixtures/connections.py's, the words of a message
plugins/contract/runtime_wording.py's. A table or column the dialect in force names but the
database lacks, while another known dialect's names are all there, is drift (plugins.drift):
the check says so instead of failing.

A decision stamped beyond the clock skew in the future decides nothing (issue 16): it is left
out of the verdict and named by JC-PAUSE-01 — inside its failure, or beside a verdict it did
not decide as a warning or a failure, as ``runtime.refused_evidence`` declares.
"""

from __future__ import annotations

from datetime import datetime

from fixtures.connections import Database
from fixtures.probes import drift as probes_drift
from fixtures.probes import runtime as pr
from plugins.contract.runbook import Runbook
from plugins.contract.runtime import RuntimeContract
from plugins.contract.runtime_wording import (
    MESSAGE_CHARS, Warn, age as _age, at as _t, more as _more, refused_note as _refused_note,
    report_refused as _report_refused,
)
from plugins.contract.verdict import violated
from plugins.invariants import invariant

@invariant(
    "JC-PAUSE-01",
    title="Júlia is active (the newest julia_status row)",
    severity="critical",
    section="Incident Response Scenarios › Scenario 3: Julia Paused or Not Responding",
    remedy="Scenario 3: read why she was paused (motivo, alterado_via); once the cause is fixed, resume "
    "her with the runbook's INSERT of an 'ativo' row (the message has it) and verify the newest status.",
    tiers=("postdeploy", "nightly"),
)
def test_julia_active(db: Database, runbook: Runbook, runtime: RuntimeContract, now: datetime,
                      names: probes_drift.RuntimeNames, warn: Warn) -> None:
    """The verdict comes from the newest decision — a row a person (or the runbook's SQL)
    wrote, not a heartbeat's. Where the app has its own "current state" view (the newest row
    of any kind), it is read too, and the message says which of the two the verdict is
    based on: with a heartbeat writing ``ativo`` every minute the view forgets a pause within
    a minute, the decision does not. A decision stamped beyond the clock skew in the future
    decides nothing (it would be "the newest" until its time comes): it is named instead."""
    names.require("pause")
    state = pr.julia_status(db, runbook, now)
    view = pr.current_view(db, runbook)
    pa = runtime.pause
    refused = [r.refused for r in pr.refused_status_rows(db, runbook, now) if not r.heartbeat]
    lines = [r.line() for r in refused]
    note = _refused_note(lines, show=1)
    if state is None:
        raise violated(f"expected the newest {pa.table} row to be {'/'.join(pa.active)}, found no row at all: "
                       "Júlia's state is unknown" + note + _view_basis(runtime, view, None, now),
                       evidence={"refused": [r.__dict__ for r in refused]})
    if state.status in pa.active:
        _report_refused(warn, runtime, f"{pa.table} decision(s)", lines, [r.__dict__ for r in refused])
        return
    age = _age(now - state.created_at)
    if state.status in pa.paused:
        kind = "paused"
    elif state.status in pa.error:
        kind = "in error state"
    else:
        kind = f"in a state the runbook does not know ({'/'.join(pa.active + pa.paused + pa.error)} are)"
    # A message is cut at 400 characters: the reason is clipped as needed so that the basis of
    # the verdict and the resume statement stay in it (the evidence has everything). Evidence
    # refused beside it is named in full where it fits; where it does not, the view's reading
    # goes first, then the row moves to a warning of this check and the message points there.
    newest = "newest decision" if pa.heartbeat_via else f"newest {pa.table}"
    basis, resume = _view_basis(runtime, view, state, now), pr.resume_statement(runtime, runbook)

    def message(reason: str | None, note: str, basis: str) -> str:
        return (f"expected Júlia {'/'.join(pa.active)}, found her {kind}: {newest} is {state.status!r} since "
                f"{_t(state.created_at)} ({age} ago), {pa.reason} {reason!r}, {pa.changed_via} "
                f"{state.changed_via!r}{note}{basis}. To resume: {resume}")

    def fitted(note: str, basis: str) -> str:
        text, keep = message(state.reason, note, basis), len(state.reason or "")
        while len(text) > MESSAGE_CHARS and state.reason and keep > 8:
            keep -= 4
            text = message(state.reason[:keep] + "…", note, basis)
        return text

    pointer = (f"; {len(lines)} {pa.table} row(s) stamped in the future not counted (named in a warning)"
               if lines else "")
    candidates = [(note, basis), (note, ""), (pointer, basis), (pointer, "")]
    text = next((t for t in (fitted(n, b) for n, b in candidates) if len(t) <= MESSAGE_CHARS),
                fitted(pointer, ""))
    if lines and pointer in text:
        warn(f"not counted as {pa.table} decision(s) (impossible): {_more(lines)}")
    raise violated(
        text,
        evidence={"decision": state.__dict__, "view": view.row.__dict__ if view and view.row else None,
                  "refused": [r.__dict__ for r in refused]},
    )


def _view_basis(runtime: RuntimeContract, view: pr.CurrentView | None, decision: pr.SwitchState | None,
                now: datetime) -> str:
    """Which reading the verdict is based on, when the app has its own view of the state
    (the decision's own details are already in the message)."""
    if view is None:
        return ""
    if not view.exists:
        return f"; the app's view {view.name} does not exist: verdict from the newest decision"
    row = view.row
    if row is None:
        return f"; the app's view {view.name} is empty"
    if decision is not None and (row.status, row.created_at) == (decision.status, decision.created_at):
        return f"; the app's view {view.name} shows the same row"
    what = "heartbeat" if pr.is_heartbeat(runtime, row) else f"{row.changed_via} row"
    future = ", in the future" if row.created_at > now + runtime.clock_skew else ""
    return (f"; the view {view.name} says {row.status!r} ({what} at {_t(row.created_at)}{future}): verdict from "
            "the decision" if decision else "")


def _pause_line(send: pr.PausedSend) -> str:
    until = f"until {_t(send.paused_until)}" if send.paused_until else "still paused"
    return f"id {send.row_id} sent {_t(send.sent_at)} (paused {_t(send.paused_at)}, {until})"


@invariant(
    "JC-PAUSE-02",
    title="While Júlia is paused, nothing is sent",
    severity="critical",
    section="Emergency Procedures › Emergency Pause Julia (All Conversations)",
    remedy="Stop the sender now: a worker is sending despite the pause (\"No messages sent until resumed\") — "
    "`railway restart` julia-worker, or scale it to 0 until the pause is over; then find the release or "
    "instance that does not read julia_status and roll it back.",
    tiers=("postdeploy", "nightly"),
)
def test_nothing_sent_while_paused(db: Database, runbook: Runbook, runtime: RuntimeContract, now: datetime,
                                   names: probes_drift.RuntimeNames) -> None:
    """A pause runs from a decision row in a paused word (a heartbeat's ``ativo`` row is not a
    decision: runtime.pause.heartbeat_via) to the next decision. Every pause overlapping the
    look-back window is checked, so a leak during last night's pause shows after the resume."""
    names.require("queue", "pause")
    sends = pr.sent_while_paused(db, runbook, now)
    if not sends:
        return
    pa, qu = runtime.pause, runtime.queue
    state = (f"{qu.status} in {'/'.join(qu.sent)}" if qu.status else f"{qu.processed} = true")
    heartbeat = (f" ({pa.table} rows {pa.changed_via} in {'/'.join(pa.heartbeat_via)} are the heartbeat's, not "
                 "decisions)" if pa.heartbeat_via else "")
    first = sends[0]
    more = "+" if len(sends) >= pr.PAUSED_SENDS_LIMIT else ""
    raise violated(
        f"{len(sends)}{more} {qu.table} row(s) sent while Júlia was paused — ids "
        f"{', '.join(s.row_id for s in sends[:20])}{', …' if len(sends) > 20 else ''}; expected nothing "
        f"with {state} and {qu.updated_at} inside a pause ({pa.table} {'/'.join(pa.paused)} since "
        f"{_t(first.paused_at)}, {pa.reason} {first.reason!r}){heartbeat}: {_more([_pause_line(s) for s in sends])}",
        evidence=[{**s.__dict__} for s in sends],
    )
