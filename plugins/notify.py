"""``--notify-slack``: the verdict goes where the runbook's team lives.

The webhook URL is a secret (anyone holding it can post to the channel): it is read from the
environment variable named by the profile's ``slack_webhook_env``, registered with the run's
redactor, and never printed. A failed post is reported on the terminal but never changes the
run's verdict or exit code.
"""

from __future__ import annotations

import httpx

from plugins.invariants import one_line
from plugins.redaction import Redactor

TIMEOUT_S = 10.0


def post_slack(webhook_url: str, text: str, redactor: Redactor) -> str | None:
    """POST ``{"text": …}`` to an incoming webhook; the problem as one line, or None."""
    try:
        resp = httpx.post(
            webhook_url,
            json={"text": redactor.scrub(text)},
            timeout=TIMEOUT_S,
            follow_redirects=False,
            headers={"User-Agent": "julia-conformance"},
        )
    except httpx.HTTPError as exc:
        return redactor.scrub(one_line(f"{type(exc).__name__}: {exc}", 200))
    if resp.status_code >= 300:
        return redactor.scrub(one_line(f"HTTP {resp.status_code}: {resp.text}", 200))
    return None
