"""Pure functions over a certificate: blockers, comparison, the human page, the short summary.

Kept apart from the pytest plugin so each is unit-tested on plain dicts. The human page puts
the verdict first and the blockers right under it: an operator at 3 a.m. reads what to do
(the remedy) before anything else, as the runbook's "ROLLBACK NOW" rule demands.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from plugins.contract.verdict import is_ok
from plugins.drift import drift_markdown
from plugins.needs_option import waits_for_option

SEVERITY_ORDER = ("blocker", "critical", "normal", "minor")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def _severity_rank(row: dict[str, Any]) -> int:
    sev = row.get("severity")
    return SEVERITY_ORDER.index(sev) if sev in SEVERITY_ORDER else len(SEVERITY_ORDER)


def blockers(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows that keep the run from being certified: the real ones (failed, error, skipped for a
    reason of the target's) most severe first, then those skipped only because an option was
    not given (``needs_option``, issue 17)."""
    return sorted((r for r in rows if not is_ok(r["outcome"])),
                  key=lambda r: (waits_for_option(r), _severity_rank(r), r["id"]))


def real_blockers(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in blockers(rows) if not waits_for_option(r)]


def option_blockers(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in blockers(rows) if waits_for_option(r)]


def valid_until(finished_at: str, hours: int) -> str:
    finished = dt.datetime.strptime(finished_at, TIME_FORMAT)
    return (finished + dt.timedelta(hours=hours)).strftime(TIME_FORMAT)


def compare(previous: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Newly failing, newly passing and still failing invariants against a previous run.

    "Failing" means not ok (failed, error or skipped without a waiver); invariants present
    in only one of the two runs are listed apart, never counted as a change.
    """
    before = {r["id"]: r["outcome"] for r in previous.get("invariants", []) if isinstance(r, dict) and "id" in r}
    now = {r["id"]: r["outcome"] for r in rows}
    both = sorted(set(before) & set(now))
    return {
        "previous_run_id": previous.get("run_id"),
        "previous_verdict": previous.get("verdict"),
        "previous_finished_at": previous.get("finished_at"),
        "newly_failing": [i for i in both if is_ok(before[i]) and not is_ok(now[i])],
        "newly_passing": [i for i in both if not is_ok(before[i]) and is_ok(now[i])],
        "still_failing": [i for i in both if not is_ok(before[i]) and not is_ok(now[i])],
        "only_now": sorted(set(now) - set(before)),
        "only_before": sorted(set(before) - set(now)),
    }


def headline(cert: dict[str, Any]) -> str:
    """``NOT CERTIFIED · prod (production · jyqg…) · app 1a2b3c4``: the report's first line."""
    verdict = "CERTIFIED" if cert.get("verdict") == "certified" else "NOT CERTIFIED"
    who = f"{cert.get('target')} ({cert.get('environment')} · {cert.get('project_ref')})"
    app = cert.get("app") or {}
    parts = [verdict, who]
    if app.get("git_sha"):
        parts.append(f"app {str(app['git_sha'])[:12]}")
    if app.get("deployment_id"):
        parts.append(f"deployment {app['deployment_id']}")
    return " · ".join(parts)


def _cell(text: Any) -> str:
    return str(text if text is not None else "—").replace("|", "\\|").replace("\n", " ")


def render_markdown(cert: dict[str, Any], remedies: dict[str, str] | None = None) -> str:
    """certificate.md: verdict first, then blockers (with their remedy), then the rest."""
    remedies = remedies or {}
    rows: list[dict[str, Any]] = cert.get("invariants", [])
    counts = cert.get("counts", {})
    app = cert.get("app") or {}
    suite = cert.get("suite") or {}
    sig = cert.get("signature") or {}
    out: list[str] = []
    verdict = "CERTIFIED" if cert.get("verdict") == "certified" else "NOT CERTIFIED"
    out.append(f"# {verdict} — {cert.get('target')} ({cert.get('environment')} · {cert.get('project_ref')})")
    out.append("")
    summary = ", ".join(f"{counts[k]} {k}" for k in ("passed", "waived", "failed", "error", "skipped") if counts.get(k))
    out.append(f"Run `{cert.get('run_id')}` · tier `{cert.get('tier')}` · {summary or 'no invariants'} · "
               f"valid until {cert.get('valid_until')}")
    if cert.get("interrupted"):
        out.append("")
        out.append("**The run was interrupted**: invariants that did not run count as errors.")
    from plugins.build_wait import not_judged_markdown, timeline_markdown  # issue 19 (late: no cycle)
    from plugins.run_history import history_markdown

    out += not_judged_markdown(cert)
    out.append("")

    block, waiting = real_blockers(rows), option_blockers(rows)
    out.append(f"## Blockers ({len(block) + len(waiting)})")
    out.append("")
    if not block and not waiting:
        out.append("None: every selected invariant passed or is waived.")
    for row in block:
        out.append(f"- **{row['id']}** [{row['severity']}] {row['outcome'].upper()} — {row['title']}")
        if row.get("message"):
            out.append(f"  - found: {row['message']}")
        remedy = row.get("remedy") or remedies.get(row["id"])
        if remedy:
            out.append(f"  - remedy: {remedy}")
        out.append(f"  - runbook: {row['section']}")
    if waiting:
        out.append("")
        out.append(f"### Not judged: an option was not given ({len(waiting)})")
        out.append("")
        out.append("Skipped only because the run was not given what they need; each blocks "
                   "certification until a run with that option decides it.")
        out.append("")
    for row in waiting:
        out.append(f"- **{row['id']}** [{row['severity']}] SKIPPED — {row['title']}")
        out.append(f"  - decided by: {row['needs_option']}")
        if row.get("message"):
            out.append(f"  - skipped: {row['message']}")
    out.append("")

    comparison = cert.get("comparison")
    if comparison:
        out.append(f"## Since run `{comparison.get('previous_run_id')}` ({comparison.get('previous_verdict')})")
        out.append("")
        for key, label in (("newly_failing", "Newly failing"), ("newly_passing", "Newly passing"),
                           ("still_failing", "Still failing")):
            ids = comparison.get(key) or []
            out.append(f"- {label} ({len(ids)}): {', '.join(ids) if ids else '—'}")
        out.append("")

    out += history_markdown(cert) + timeline_markdown(cert)  # issue 19: since when, flaky, the wait

    waived = [r for r in rows if r["outcome"] == "waived"]
    waivers = cert.get("waivers") or []
    if waived or waivers:
        out.append("## Waivers")
        out.append("")
        out.append("| invariant | status | expires | reason |")
        out.append("|---|---|---|---|")
        for w in waivers:
            out.append(f"| {_cell(w.get('id'))} | {_cell(w.get('status'))} | {_cell(w.get('expires'))} | {_cell(w.get('reason'))} |")
        out.append("")

    retried = [r for r in rows if r.get("retries")]
    if retried:
        out.append(f"## Retried reads ({sum(len(r['retries']) for r in retried)})")
        out.append("")
        out.append("Idempotent reads whose connection dropped mid-answer, retried (bounded "
                   "by runbook.toml `http.retries` / `database_session.retries`):")
        out.append("")
        for row in retried:
            for retry in row["retries"]:
                out.append(f"- **{row['id']}**: {retry}")
        out.append("")

    from plugins.connection_risk import connection_markdown  # late: no cycle

    out += connection_markdown(cert)  # risky connections, rows the role cannot see
    out += drift_markdown(cert)  # plugins.drift: the runbook's to-do list

    out.append("## All invariants")
    out.append("")
    out.append("| id | outcome | severity | title | message |")
    out.append("|---|---|---|---|---|")
    for row in rows:
        out.append(f"| {_cell(row['id'])} | {_cell(row['outcome'])} | {_cell(row['severity'])} | "
                   f"{_cell(row['title'])} | {_cell(row.get('message') or '')} |")
    out.append("")

    out.append("## Identity")
    out.append("")
    out.append(f"- target: {cert.get('target')} — API {cert.get('api_url') or '—'}")
    out.append(f"- PostgreSQL: {cert.get('server_version') or 'not reached'}")
    out.append(f"- app: git sha {app.get('git_sha') or 'not reported'}, deployment "
               f"{app.get('deployment_id') or 'not reported'}, schema version {app.get('schema_version') or 'not reported'}")
    out.append(f"- suite: {suite.get('name')} {suite.get('version')} at {suite.get('git_sha') or 'unknown commit'}"
               + (" (uncommitted changes)" if suite.get("git_dirty") else ""))
    out.append(f"- runbook contract sha256: {cert.get('runbook_sha256')}")
    out.append(f"- marker expression: `{cert.get('marker_expression') or '(none)'}`")
    out.append(f"- started {cert.get('started_at')}, finished {cert.get('finished_at')}")
    if sig.get("status") == "signed":
        out.append(f"- signature: {sig.get('algorithm')} by key {sig.get('key_id')} "
                   "(check with `julia-conformance-verify certificate.json --public-key KEY`)")
    else:
        out.append(f"- signature: **unsigned** — {sig.get('reason')}")
    out.append("")
    return "\n".join(out)
