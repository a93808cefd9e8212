"""The words of the runtime checks' verdicts (checks/test_scheduler.py, test_jobs.py,
test_queue.py, test_pause.py): times, ages, lists cut for a message, and evidence refused
as impossible — named inside a failure, or said beside a verdict it did not decide, as
``runtime.refused_evidence`` declares (issue 16).

In the contract leaf beside ``verdict``: the four check modules share these words, and a
check module imports no other check module.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from plugins.contract.runtime import REFUSED_FAILURE, RuntimeContract
from plugins.contract.verdict import violated

SHOW = 5  # violations listed in a message; the evidence has them all
MESSAGE_CHARS = 400  # a certificate's message is cut there (plugins.invariants.one_line)

Warn = Callable[[str], None]


def at(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%SZ") if moment else "never"


def age(delta: timedelta | float) -> str:
    seconds = delta.total_seconds() if isinstance(delta, timedelta) else delta
    minutes = int(seconds // 60)
    if minutes >= 120:
        return f"{minutes // 60} h" + (f" {minutes % 60} min" if minutes % 60 else "")
    return f"{minutes} min" if minutes else f"{int(seconds)} s"


def more(items: list[str]) -> str:
    return "; ".join(items[:SHOW]) + (f"; … and {len(items) - SHOW} more" if len(items) > SHOW else "")


def refused_note(refused: list[str], show: int = SHOW) -> str:
    """The refused evidence inside a failure's message (the cause it did not hide); the first
    ``show`` of it where the message has little room left (the evidence has all)."""
    if not refused:
        return ""
    extra = f" (+{len(refused) - show} more)" if len(refused) > show else ""
    return f"; not counted (impossible): {'; '.join(refused[:show])}{extra}"


def report_refused(warn: Warn, runtime: RuntimeContract, what: str, refused: list[str],
                   evidence: object = None) -> None:
    """Evidence refused beside the genuine evidence that decided the verdict: said as a
    warning, or failed, as ``runtime.refused_evidence`` declares."""
    if not refused:
        return
    if runtime.refused_evidence == REFUSED_FAILURE:
        raise violated(f"expected {what} to be believable evidence, found {len(refused)} that "
                       f"{'is' if len(refused) == 1 else 'are'} not (runtime.refused_evidence = 'failure'): "
                       f"{more(refused)}", evidence=evidence)
    warn(f"{len(refused)} refused as {what} (not counted; the verdict stands on the rest): {more(refused)}")
