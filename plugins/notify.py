"""``--notify-slack``: the verdict goes where the runbook's team lives.

The webhook URL is a secret (anyone holding it can post to the channel): it is read from the
environment variable named by the profile's ``slack_webhook_env``, registered with the run's
redactor, and never printed. It is checked when the run is configured (``webhook_problem``:
a bad value is a usage error naming the variable, never its value), so the post itself can
only fail on the network or the server. A failed post is reported on the terminal as one
line naming the failure's class but never changes the run's verdict or exit code: every
exception is caught, and the post has one total deadline (a server that accepts and never
answers, or trickles its answer, cannot hold the run).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx

from plugins.contract.redaction import Redactor
from plugins.contract.verdict import one_line

TOTAL_TIMEOUT_S = 15.0
# Per phase (connect, write, read, pool), never longer than the total deadline.
PHASE_TIMEOUT_S = 10.0


def clean_webhook(value: str) -> str:
    """The value as posted: surrounding whitespace (a secret pasted with its newline) removed."""
    return value.strip()


def webhook_problem(value: str) -> str | None:
    """Why ``value`` (already cleaned) cannot be a webhook URL, in words that never quote it;
    None when it can."""
    if not value:
        return "is empty"
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        return "contains whitespace or a control character inside the URL"
    try:
        url = httpx.URL(value)
    except Exception as exc:  # noqa: BLE001 - httpx.InvalidURL and whatever else parsing raises
        return f"is not a URL httpx can parse ({type(exc).__name__})"
    if url.scheme not in ("http", "https"):
        return "is not an http:// or https:// URL"
    if not url.host:
        return "has no host"
    if url.port is not None and not 0 < url.port < 65536:
        return "has a port out of range"
    return None


def post_slack(webhook_url: str, text: str, redactor: Redactor,
               total_timeout_s: float = TOTAL_TIMEOUT_S) -> str | None:
    """POST ``{"text": …}`` to an incoming webhook; the problem as one line, or None.

    Never raises. The problem names the failure's class (``ConnectError``, ``ReadTimeout``,
    ``HTTP 500``…), never the URL.
    """
    phase = min(PHASE_TIMEOUT_S, total_timeout_s)
    outcome: list[str | None] = []

    def post() -> None:
        try:
            resp = httpx.post(
                webhook_url,
                json={"text": redactor.scrub(text)},
                timeout=httpx.Timeout(phase),
                follow_redirects=False,
                headers={"User-Agent": "julia-conformance"},
            )
        except httpx.TimeoutException as exc:
            outcome.append(f"{type(exc).__name__} (timeout after {phase:g} s)")
        except Exception as exc:  # noqa: BLE001 - a failed post must never end the run
            detail = str(exc)
            outcome.append(f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__)
        else:
            if resp.status_code >= 300:
                outcome.append(f"HTTP {resp.status_code}: {resp.text}")
            else:
                outcome.append(None)

    worker = threading.Thread(target=post, name="jc-slack-post", daemon=True)
    worker.start()
    worker.join(total_timeout_s)
    if worker.is_alive() or not outcome:
        # (the daemon thread is abandoned; its per-phase timeouts end it soon after)
        return f"timeout: no complete answer within the total deadline of {total_timeout_s:g} s"
    problem = outcome[0]
    return None if problem is None else _mask(one_line(problem, 200), webhook_url, redactor)


def _mask(text: str, url: str, redactor: Redactor) -> str:
    text = redactor.scrub(text)
    return text.replace(url, "<webhook URL>") if url else text


# --- the summary: what changed since the last run, first -------------------------------------

MAX_LISTED = 10


def _ids_line(label: str, rows: list[dict[str, Any]], render: Callable[[dict[str, Any]], str]) -> list[str]:
    if not rows:
        return []
    lines = [f"*{label} ({len(rows)}):*"]
    lines += [f"• {render(row)}"[:300] for row in rows[:MAX_LISTED]]
    if len(rows) > MAX_LISTED:
        lines.append(f"… and {len(rows) - MAX_LISTED} more")
    return lines


def summary_text(cert: dict[str, Any], link: str | None) -> str:
    """The Slack summary: verdict and target, then what changed since the previous run of the
    target (new failures with their message, recoveries, what is still failing and since
    when, what flips between runs) — not the full list, which is in the report. A first run
    (nothing to compare with) lists what does not pass."""
    from plugins.certificate_doc import blockers, headline, is_ok
    from plugins.run_history import since_text

    ok = cert.get("verdict") == "certified"
    rows: list[dict[str, Any]] = cert.get("invariants", [])
    by_id = {r["id"]: r for r in rows}
    lines = [f"{':white_check_mark:' if ok else ':rotating_light:'} *{headline(cert)}*",
             f"run `{cert.get('run_id')}` · tier `{cert.get('tier')}` · valid until {cert.get('valid_until')}"]
    wait = cert.get("build_wait") or {}
    if wait.get("outcome") == "timed-out":
        lines.append(f":hourglass: *Not judged*: {wait.get('message')}")
    comparison = cert.get("comparison")

    def failure(row: dict[str, Any]) -> str:
        return f"`{row['id']}` [{row['severity']}] {row.get('message') or row['title']}"

    def still(row: dict[str, Any]) -> str:
        since = row.get("failing_since")
        return f"`{row['id']}` [{row['severity']}] " + (since_text(since) if since else "still failing")

    flaky = [r for r in rows if r.get("flaky")]
    if comparison and wait.get("outcome") != "timed-out":
        new = [by_id[i] for i in comparison.get("newly_failing", []) if i in by_id]
        recovered = [by_id[i] for i in comparison.get("newly_passing", []) if i in by_id]
        still_failing = [by_id[i] for i in comparison.get("still_failing", []) if i in by_id]
        first_seen = [by_id[i] for i in comparison.get("only_now", []) if i in by_id and not is_ok(by_id[i]["outcome"])]
        lines.append(f"*Since run `{comparison.get('previous_run_id')}`* ({comparison.get('previous_verdict')}, "
                     f"{comparison.get('previous_finished_at') or 'time unknown'}):")
        if not (new or recovered or first_seen):
            lines.append("No change." + ("" if still_failing else " Every invariant passes."))
        lines += _ids_line(":new: New failures", new, failure)
        lines += _ids_line(":new: Failing, not in the previous run", first_seen, failure)
        lines += _ids_line(":white_check_mark: Recovered", recovered, lambda r: f"`{r['id']}` [{r['severity']}]")
        lines += _ids_line(":hourglass: Still failing", still_failing, still)
    elif wait.get("outcome") != "timed-out":  # (a run that judged nothing has nothing to list)
        block = blockers(rows)
        if block:
            lines += _ids_line("Not passing", block, failure)
    lines += _ids_line(":twisted_rightwards_arrows: Flaky (flip between runs, not retried)", flaky,
                       lambda r: f"`{r['id']}` {r['flaky']['flips']} flips in its last {r['flaky']['runs']} runs")
    if link:
        lines.append(f"Report: {link}")
    return "\n".join(lines)
