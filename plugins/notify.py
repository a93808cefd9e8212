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

import httpx

from plugins.invariants import one_line
from plugins.redaction import Redactor

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
