"""Each run remembers the runs before it: ``<reports-dir>/history/<target>/``.

A nightly run that forgets yesterday cannot say "failing for 3 nights" nor tell a flapping
check from a new outage. So every judged run appends one line to ``runs.jsonl`` beside the
reports — its id, times, verdict, the build it judged and each invariant's outcome — and the
file keeps the newest N runs (``history_runs`` of the profile, ``--history-runs``; default
30). The HTML report keeps its own history in the same folder (``allure-history.jsonl``,
Allure 3's ``historyPath`` with ``historyLimit`` = N), so its trend charts and each test's
History tab show the same runs.

From it the certificate says, per invariant that does not pass, since when it has been
failing (consecutive not-ok runs of the same target, counting only runs that selected it),
which invariants recovered, and which flip between runs (flaky: named as such — a check is
never retried to hide it). The default comparison is the previous run of the same target.
A run that judged nothing (interrupted, or the expected build never came) is not history.
History is a help, never a verdict: an unreadable file is reported and the run goes on.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plugins.contract.verdict import is_ok

HISTORY_DIR = "history"
RUNS_FILE = "runs.jsonl"
ALLURE_FILE = "allure-history.jsonl"
DEFAULT_RUNS = 30
MAX_RUNS = 1000
# Flaky: at least FLAKY_MIN_FLIPS changes between ok and not ok over an invariant's last
# FLAKY_WINDOW runs (this one included). One outage and its recovery are two flips: not flaky.
FLAKY_WINDOW = 10
FLAKY_MIN_FLIPS = 3
LOCK_TIMEOUT_S = 30.0


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "_"


@dataclass(frozen=True)
class HistoryStore:
    """One target's history folder and how many runs it keeps."""

    reports_dir: Path
    target: str
    limit: int = DEFAULT_RUNS

    @property
    def folder(self) -> Path:
        return self.reports_dir / HISTORY_DIR / _safe(self.target)

    @property
    def runs_path(self) -> Path:
        return self.folder / RUNS_FILE

    @property
    def allure_path(self) -> Path:
        return self.folder / ALLURE_FILE

    def _lock(self) -> Any:
        from filelock import FileLock

        self.folder.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.folder / ".lock"), timeout=LOCK_TIMEOUT_S)

    def _lines(self) -> tuple[list[dict[str, Any]], int]:
        """Every readable entry of this target, oldest first, and how many lines were not."""
        try:
            text = self.runs_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return [], 0
        entries, bad = [], 0
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                bad += 1
                continue
            if (isinstance(entry, dict) and entry.get("target") == self.target
                    and isinstance(entry.get("outcomes"), dict) and isinstance(entry.get("run_id"), str)):
                entries.append(entry)
            else:
                bad += 1
        return entries, bad

    def read(self) -> tuple[list[dict[str, Any]], str | None]:
        """The newest ``limit`` runs, oldest first, and a problem to report (or None)."""
        try:
            entries, bad = self._lines()
        except (OSError, UnicodeDecodeError) as exc:
            return [], f"history {self.runs_path} not read: {type(exc).__name__}: {exc}"
        problem = f"history {self.runs_path}: {bad} unreadable line(s) skipped" if bad else None
        return entries[-self.limit:], problem

    def append(self, entry: dict[str, Any]) -> str | None:
        """Add this run and keep the newest ``limit``; the problem (or None). Atomic: a
        reader sees the old file or the new one, never half a line."""
        try:
            with self._lock():
                entries, _ = self._lines()
                kept = [*entries, entry][-self.limit:]
                tmp = self.runs_path.with_name(f".{RUNS_FILE}.{os.getpid()}.tmp")
                tmp.write_text("".join(json.dumps(e, ensure_ascii=False, sort_keys=True) + "\n" for e in kept),
                               encoding="utf-8")
                os.replace(tmp, self.runs_path)
        except Exception as exc:  # noqa: BLE001 - history never changes the verdict
            return f"history {self.runs_path} not written: {type(exc).__name__}: {exc}"
        return None


def entry_of(cert: dict[str, Any]) -> dict[str, Any]:
    """What the history keeps of a run: enough to compare, count and chart, no messages."""
    app = cert.get("app") or {}
    return {
        "run_id": cert.get("run_id"),
        "target": cert.get("target"),
        "tier": cert.get("tier"),
        "started_at": cert.get("started_at"),
        "finished_at": cert.get("finished_at"),
        "verdict": cert.get("verdict"),
        "app": {"git_sha": app.get("git_sha"), "deployment_id": app.get("deployment_id")},
        "outcomes": {r["id"]: r["outcome"] for r in cert.get("invariants", [])},
    }


def previous_certificate(entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The previous run of the target, in the shape ``certificate_doc.compare`` reads."""
    if not entries:
        return None
    last = entries[-1]
    return {"run_id": last.get("run_id"), "verdict": last.get("verdict"), "finished_at": last.get("finished_at"),
            "invariants": [{"id": k, "outcome": v} for k, v in sorted(last["outcomes"].items())]}


def _series(inv_id: str, entries: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(finished_at, run_id, outcome) of every past run that selected the invariant."""
    return [(str(e.get("finished_at")), str(e.get("run_id")), str(e["outcomes"][inv_id]))
            for e in entries if inv_id in e["outcomes"]]


def _streak(series: list[tuple[str, str, str]]) -> tuple[int, str | None, str | None, bool]:
    """Consecutive not-ok runs at the end of ``series``: count, first run's time and id, and
    whether the streak reaches the oldest run kept."""
    count, at, run_id = 0, None, None
    for finished, rid, outcome in reversed(series):
        if is_ok(outcome):
            return count, at, run_id, False
        count, at, run_id = count + 1, finished, rid
    return count, at, run_id, True


def flips(outcomes: list[str]) -> int:
    """How many times consecutive outcomes change between ok and not ok."""
    oks = [is_ok(o) for o in outcomes]
    return sum(a != b for a, b in zip(oks, oks[1:]))


def annotate(rows: list[dict[str, Any]], entries: list[dict[str, Any]], *, run_id: str, finished_at: str,
             limit: int) -> dict[str, list[str]]:
    """Add ``failing_since`` (not ok now), ``recovered`` (ok now, not ok the run before) and
    ``flaky`` to the rows, from the runs before this one; the ids of each kind."""
    full = len(entries) >= limit  # older runs may have been dropped
    out: dict[str, list[str]] = {"failing": [], "recovered": [], "flaky": []}
    for row in rows:
        inv, outcome = row["id"], row["outcome"]
        series = _series(inv, entries)
        count, at, rid, reaches_oldest = _streak(series)
        if not is_ok(outcome):
            row["failing_since"] = {"at": at or finished_at, "run_id": rid or run_id, "runs": count + 1,
                                    "at_least": bool(count and reaches_oldest and full)}
            out["failing"].append(inv)
        elif count:
            row["recovered"] = {"after_runs": count, "failing_since": at, "at_least": reaches_oldest and full}
            out["recovered"].append(inv)
        window = [o for _, _, o in series][-(FLAKY_WINDOW - 1):] + [outcome]
        n = flips(window)
        if n >= FLAKY_MIN_FLIPS:
            row["flaky"] = {"flips": n, "runs": len(window), "outcomes": window}
            out["flaky"].append(inv)
    return out


def since_text(since: dict[str, Any]) -> str:
    """``failing since 2026-12-01T03:00:00Z, 4 runs`` (``at least`` when older runs were dropped)."""
    runs = since.get("runs", 1)
    prefix = "at least " if since.get("at_least") else ""
    return f"failing since {since.get('at')}, {prefix}{runs} run{'s' if runs != 1 else ''}"


def history_markdown(cert: dict[str, Any]) -> list[str]:
    """certificate.md's history section: since when each non-passing invariant fails, what
    recovered, what flips between runs."""
    hist = cert.get("history")
    if not hist:
        return []
    rows = cert.get("invariants", [])
    failing = [r for r in rows if r.get("failing_since")]
    recovered = [r for r in rows if r.get("recovered")]
    flaky = [r for r in rows if r.get("flaky")]
    out = [f"## History of `{cert.get('target')}` ({hist.get('runs_before', 0)} earlier run(s) kept, "
           f"at most {hist.get('limit')})", ""]
    if hist.get("problem"):
        out += [f"- history problem: {hist['problem']}", ""]
    if not hist.get("runs_before"):
        out.append("First run of this target in the history.")
    for row in failing:
        out.append(f"- **{row['id']}** {row['outcome'].upper()}: {since_text(row['failing_since'])}")
    for row in recovered:
        rec = row["recovered"]
        n = rec.get("after_runs", 1)
        out.append(f"- **{row['id']}** recovered: passes again after {'at least ' if rec.get('at_least') else ''}"
                   f"{n} failing run{'s' if n != 1 else ''} (failing since {rec.get('failing_since')})")
    for row in flaky:
        fl = row["flaky"]
        out.append(f"- **{row['id']}** FLAKY: flipped {fl['flips']} times in its last {fl['runs']} runs "
                   f"({' → '.join(fl['outcomes'])}); not retried — each run judges once")
    if hist.get("runs_before") and not (failing or recovered or flaky):
        out.append("Every invariant passes, as in the run before.")
    out.append("")
    return out


def history_runs(config: Any) -> int:
    """N, the runs kept: ``--history-runs``, else the profile's ``history_runs``, else 30
    (a usage error, exit 4, outside 1…1000)."""
    import pytest

    from plugins.target import run_context

    value: Any = config.getoption("jc_history_runs")
    where = "--history-runs"
    if value is None:
        target = run_context(config).target
        value = target.options.get("history_runs", DEFAULT_RUNS)
        where = f"{target.path}: targets.{target.name}.history_runs"
    n: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        n = value
    elif isinstance(value, str) and value.strip().isdigit():
        n = int(value)
    if n is None or not 1 <= n <= MAX_RUNS:
        raise pytest.UsageError(f"{where}: must be a whole number of runs from 1 to {MAX_RUNS}, got {value!r}")
    return n
