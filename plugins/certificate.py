"""The verdict of a run: reports/<run-id>/certificate.json, and reports/latest pointing at it.

The certificate is what a deploy pipeline reads (runbook rule 3: deploy or roll back), so it
is written on every run that selected invariants — passed, failed or interrupted — and says
``certified`` only when every selected invariant passed. Exit code 0 means certified.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from plugins.invariants import report_invariant, report_outcome, report_warnings
from plugins.target import redactor, run_context

FORMAT = 1
SUITE_VERSION = "0.1.0"
# worst wins when a test reports several phases
_RANK = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}


@dataclass
class Row:
    id: str
    title: str
    severity: str
    section: str
    nodeids: list[str] = field(default_factory=list)
    outcome: str = "passed"
    messages: list[str] = field(default_factory=list)
    decided: bool = False
    # An invariant that holds but wants attention (e.g. a circuit half_open).
    warnings: list[str] = field(default_factory=list)

    def merge(self, outcome: str, message: str) -> None:
        self.decided = True
        if _RANK[outcome] > _RANK[self.outcome]:
            self.outcome = outcome
        if message and message not in self.messages:
            self.messages.append(message)


class CertificatePlugin:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.started_at = _now()
        self.rows: dict[str, Row] = {}
        self.path: Path | None = None
        self.verdict: str | None = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        inv = report_invariant(report)
        if inv is None:
            return
        row = self.rows.setdefault(inv.id, Row(inv.id, inv.title, inv.severity, inv.section))
        if report.nodeid not in row.nodeids:
            row.nodeids.append(report.nodeid)
        result = report_outcome(report)
        if result is not None:
            row.merge(*result)
        row.warnings.extend(w for w in report_warnings(report) if w not in row.warnings)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # Deselected items are not part of the run; selected ones that never report (an
        # interrupted run) must still appear, as not passed. (Under xdist the controller
        # collects nothing: there rows come from the workers' reports alone.)
        from plugins.invariants import invariant_of

        for item in session.items:
            inv = invariant_of(item)
            if inv is not None:
                row = self.rows.setdefault(inv.id, Row(inv.id, inv.title, inv.severity, inv.section))
                if item.nodeid not in row.nodeids:
                    row.nodeids.append(item.nodeid)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if not self.rows or self.config.option.collectonly:
            return
        ctx = run_context(self.config)
        red = redactor(self.config)
        interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
        rows = []
        for row in sorted(self.rows.values(), key=lambda r: r.id):
            outcome = row.outcome
            messages = row.messages
            if not row.decided:
                outcome, messages = "error", ["not run (the run was interrupted)"]
            rows.append({
                "id": row.id, "title": row.title, "severity": row.severity,
                "section": row.section, "outcome": outcome,
                "message": red.scrub(" | ".join(messages)),
                **({"warnings": [red.scrub(w) for w in row.warnings]} if row.warnings else {}),
            })
        certified = bool(rows) and all(r["outcome"] == "passed" for r in rows) and not interrupted
        cert: dict[str, Any] = {
            "format": FORMAT,
            "run_id": ctx.run_id,
            "target": ctx.target.name,
            "environment": ctx.target.environment,
            "project_ref": ctx.target.project_ref,
            "api_url": red.scrub(ctx.api_url or ""),
            "tier": self.config.option.markexpr or "all",
            "started_at": self.started_at,
            "finished_at": _now(),
            "verdict": "certified" if certified else "not-certified",
            "interrupted": interrupted,
            "runbook_sha256": ctx.runbook.sha256,
            "suite_version": SUITE_VERSION,
            "counts": {k: sum(1 for r in rows if r["outcome"] == k) for k in _RANK},
            "invariants": rows,
        }
        ctx.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = ctx.run_dir / "certificate.json"
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(red.scrub(json.dumps(cert, indent=2, ensure_ascii=False)) + "\n")
        os.replace(tmp, self.path)
        _point_latest(ctx.run_dir)
        self.verdict = cert["verdict"]
        # 0 means certified: a run whose invariants were skipped is not a pass.
        if not certified and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        red = redactor(self.config)
        for row in sorted(self.rows.values(), key=lambda r: r.id):
            for warning in row.warnings:
                terminalreporter.write_line(f"julia-conformance: warning {row.id}: {red.scrub(warning)}", yellow=True)
        if self.path is not None:
            rel = os.path.relpath(self.path, Path.cwd())
            terminalreporter.write_line(
                f"julia-conformance: {self.verdict} — certificate {rel}",
                green=self.verdict == "certified", red=self.verdict != "certified", bold=True,
            )


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _point_latest(run_dir: Path) -> None:
    latest = run_dir.parent / "latest"
    tmp = run_dir.parent / f".latest.{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(run_dir.name)
    os.replace(tmp, latest)


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return  # the controller writes the certificate from the workers' reports
    config.pluginmanager.register(CertificatePlugin(config), "julia-conformance-certificate")


def verify_main() -> int:  # pragma: no cover - signing is issue 7
    print("julia-conformance-verify: certificate signatures are not implemented yet")
    return 3
