"""The verdict of a run: reports/<run-id>/certificate.json (signed), certificate.md, the HTML
report, and reports/latest pointing at the run.

The certificate is what a deploy pipeline reads (runbook rule 3: deploy or roll back), so it
is written on every run that selected invariants — passed, failed or interrupted — and says
``certified`` only when every selected invariant passed or is waived. Exit code 0 means
certified. It names what it speaks for (target, the app's build as the app reports it, the
runbook contract's sha256, the suite's version and commit, the marker expression), until
when it may be trusted (``valid_until``, per tier in runbook.toml), and it is signed with
Ed25519 when the profile names a key (``signing_key_env``); otherwise it says it is unsigned.
Its options are checked when it starts (plugins/report_options.py); a row's model is
plugins/certificate_row.py.

After the local stack is stopped, the run's Allure results become an offline HTML report
(Allure 3; ``--no-html`` skips it) and, with ``--notify-slack``, a short summary is posted.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from plugins import report_options, signing
from plugins.certificate_row import RANK, Row
from plugins.certificate_doc import blockers, compare, render_markdown, valid_until
from plugins.connection_risk import connection_section
from plugins.contract.report import ReportContract
from plugins.drift import drift_section
from plugins.invariants import (
    report_invariant,
    report_outcome,
    report_remedy,
    report_retries,
    report_warnings,
)
from plugins.needs_option import blocker_lines
from plugins.scrub import scrub_value
from plugins.target import redactor, run_context

FORMAT = 2


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("julia-conformance", "Agente Júlia conformance")
    group.addoption("--no-html", dest="jc_html", action="store_false", default=True,
                    help="do not build the HTML report (Allure 3) at the end of the run")
    # (not --html: pytest-html owns that name)
    group.addoption("--build-html", dest="jc_html", action="store_true",
                    help="build the HTML report (the default; overrides an earlier --no-html)")
    group.addoption("--notify-slack", dest="jc_notify_slack", action="store_true", default=False,
                    help="post the verdict to the Slack webhook named by the profile's slack_webhook_env")
    group.addoption("--compare-with", dest="jc_compare_with", default=None, metavar="PATH",
                    help="a previous certificate.json (or run folder) of the same target to compare with "
                         "(default: the previous run of the target in its history)")
    # issue 19: history, metrics
    group.addoption("--history-runs", dest="jc_history_runs", default=None, metavar="N",
                    help="runs of the target kept in <reports-dir>/history/<target>/ (default: the profile's "
                         "history_runs, else 30)")
    group.addoption("--push-metrics", dest="jc_push_metrics", default=None, metavar="URL",
                    help="also push metrics.prom to this Prometheus Pushgateway (a POST; never the target)")


class CertificatePlugin:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.started_at = _now()
        self.rows: dict[str, Row] = {}
        self.path: Path | None = None
        self.cert: dict[str, Any] | None = None
        ctx = run_context(config)
        self.contract: ReportContract = ctx.runbook.section("report")
        self.previous = report_options.load_previous(config)
        self.signing_key, self.unsigned_reason = report_options.signing_key(config)
        self.slack_url = report_options.slack_url(config)
        self.html: Path | None = None
        self.html_note: str | None = None
        self.slack_note: str | None = None
        # the PostgreSQL version the checks' database client met (plugins.server_version)
        self.server_version: str | None = None
        report_options.check_report_options(config, self.contract)
        # issue 19: the target's history beside the reports, and where metrics are pushed
        from plugins.run_history import HistoryStore, history_runs

        self.history = HistoryStore(ctx.run_dir.parent, ctx.target.name, history_runs(config))
        self.history_note: str | None = None
        self.push_url = report_options.push_url(config)
        self.push_note: str | None = None

    # --- collecting outcomes -------------------------------------------------------------

    def _ask_app(self, interrupted: bool) -> dict[str, Any]:
        """Which build the app runs, asked once at the end while the target is still up (the
        local stack stops after this plugin's sessionfinish). Not asked on an interrupted
        run: Ctrl-C must not wait for HTTP timeouts."""
        ctx = run_context(self.config)
        if interrupted:
            return {"reported": False, "problems": ["not asked: the run was interrupted"]}
        if not ctx.api_url:
            return {"reported": False, "problems": ["not asked: no API URL for this target"]}
        from plugins.report_identity import app_identity

        return app_identity(ctx.api_url, ctx.runbook, redactor(self.config))

    def _server_version(self) -> str | None:
        """The PostgreSQL version judged: as the server announced it to the checks, else as
        the local stack recorded it (a run whose checks never reached the database), else
        None (no database reached)."""
        from plugins.server_version import version_text

        if self.server_version:
            return self.server_version
        stack = run_context(self.config).stack
        service = stack.services.get("postgres") if stack is not None else None
        return version_text(service.version) if service is not None else None

    def _row(self, inv: Any) -> Row:
        return self.rows.setdefault(inv.id, Row(inv.id, inv.title, inv.severity, inv.section, inv.remedy))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        from plugins.needs_option import report_needs_option
        from plugins.server_version import report_server_version
        from plugins.waivers import report_waiver

        self.server_version = self.server_version or report_server_version(report)
        inv = report_invariant(report)
        if inv is None:
            return
        row = self._row(inv)
        if report.nodeid not in row.nodeids:
            row.nodeids.append(report.nodeid)
        result = report_outcome(report)
        waived = report_waiver(report)
        if waived is not None:
            result = ("waived", f"waived until {waived['expires']} ({waived['reason']}); "
                                f"{waived['kind']}: {waived['finding']}")
        if result is not None:
            row.merge(*result)
            if result[0] == "skipped":
                row.skip_options.append(report_needs_option(report))
        if (remedy := report_remedy(report)) is not None:
            row.remedy = remedy  # this outcome's first step (e.g. rows hidden from the role: give it sight)
        row.warnings.extend(w for w in report_warnings(report) if w not in row.warnings)
        row.retries.extend(report_retries(report))

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # Deselected items are not part of the run; selected ones that never report (an
        # interrupted run) must still appear, as not passed. (Under xdist the controller
        # collects nothing: there rows come from the workers' reports alone.)
        from plugins.invariants import invariant_of

        for item in session.items:
            inv = invariant_of(item)
            if inv is not None:
                row = self._row(inv)
                if item.nodeid not in row.nodeids:
                    row.nodeids.append(item.nodeid)

    # --- the certificate -----------------------------------------------------------------

    def _waivers(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from plugins.waivers import waiver_state

        state = waiver_state(self.config)
        if state is None:
            return []
        outcome = {r["id"]: r["outcome"] for r in rows}
        out = []
        for w in state.waivers.items.values():
            if not w.active(state.today):
                status = "expired"
            elif w.id not in outcome:
                status = "not-selected"
            elif outcome[w.id] == "waived":
                status = "applied"
            else:
                status = "unused"
            out.append({"id": w.id, "reason": w.reason, "expires": w.expires.isoformat(),
                        "approved_by": w.approved_by, "status": status})
        return sorted(out, key=lambda w: w["id"])

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        from plugins.reports_dir import abandon

        if not self.rows or self.config.option.collectonly:
            return
        if abandon(session):
            return  # a write under --reports-dir failed mid-run: no certificate (exit 3)
        ctx = run_context(self.config)
        red = redactor(self.config)
        interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
        rows = []
        for row in sorted(self.rows.values(), key=lambda r: r.id):
            outcome, messages = row.outcome, row.messages
            if not row.decided:
                outcome, messages = "error", ["not run (the run was interrupted)"]
            rows.append({
                "id": row.id, "title": row.title, "severity": row.severity,
                "section": row.section, "outcome": outcome,
                "message": red.scrub(" | ".join(messages)),
                **({"needs_option": option} if (option := row.needs_option(outcome)) else {}),
                **({"warnings": [red.scrub(w) for w in row.warnings]} if row.warnings else {}),
                **({"retries": [red.scrub(r) for r in row.retries]} if row.retries else {}),
                "remedy": red.scrub(row.remedy),
            })
        certified = bool(rows) and all(r["outcome"] in ("passed", "waived") for r in rows) and not interrupted
        finished = _now()
        ops = self._ops_sections(rows, ctx.run_id, finished, interrupted)  # issue 19
        markexpr = self.config.option.markexpr or ""
        tier = markexpr or "all"
        hours = self.contract.validity_hours(markexpr)
        from plugins.report_identity import suite_identity

        suite = suite_identity()
        app = self._ask_app(interrupted)
        body: dict[str, Any] = {
            "format": FORMAT,
            "run_id": ctx.run_id,
            "target": ctx.target.name,
            "environment": ctx.target.environment,
            "project_ref": ctx.target.project_ref,
            "api_url": red.scrub(ctx.api_url or ""),
            "server_version": self._server_version(),
            "app": app,
            "tier": tier,
            "marker_expression": markexpr,
            "started_at": self.started_at,
            "finished_at": finished,
            "valid_for_hours": hours,
            "valid_until": valid_until(finished, hours),
            "verdict": "certified" if certified else "not-certified",
            "interrupted": interrupted,
            "runbook_sha256": ctx.runbook.sha256,
            "runbook": {"file": ctx.runbook.path.name, "name": ctx.runbook.name, "version": ctx.runbook.version},
            **drift_section(self.config),  # "dialect" and "drift" (plugins.drift)
            "connection": connection_section(self.config),  # risky connections, what the role cannot see
            "suite_version": suite.get("version"),
            "suite": suite,
            "counts": {k: sum(1 for r in rows if r["outcome"] == k) for k in RANK},
            "retries": sum(len(r.get("retries", ())) for r in rows),
            "blockers": [r["id"] for r in blockers(rows)],
            "waivers": self._waivers(rows),
            "comparison": ops.pop("comparison"),
            **ops,  # "build_wait", "history" (issue 19)
            "invariants": rows,
        }
        body = scrub_value(body, red)
        # issue 17: the page is rendered first and its digest signed with the rest
        unsigned_reason = self.unsigned_reason or "no signing key"
        page = red.scrub(render_markdown({**body, "signature": signing.pending_block(self.signing_key, unsigned_reason)}))
        body["documents"] = {"certificate.md": signing.document_digest(page)}
        if self.signing_key is not None:
            cert = signing.sign(body, self.signing_key)
        else:
            cert = signing.unsigned(body, unsigned_reason)
        if not self._write_run_files(session, cert, rows, page):
            return  # a full disk: one line, exit 3, nothing published (plugins.reports_dir)
        self.path = ctx.run_dir / "certificate.json"
        self.cert = cert
        self._append_history(cert)
        # 0 means certified: a run whose invariants were skipped is not a pass.
        if not certified and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    # --- issue 19: the build wait, history, metrics -----------------------------------------

    def _ops_sections(self, rows: list[dict[str, Any]], run_id: str, finished: str,
                      interrupted: bool) -> dict[str, Any]:
        """``build_wait``, ``history`` and ``comparison`` of the certificate; annotates the
        rows with ``failing_since`` / ``recovered`` / ``flaky``. A run that judged nothing
        (interrupted, or the expected build never came) is compared with nothing and does not
        become history."""
        from plugins.build_wait import wait_record
        from plugins.run_history import annotate, previous_certificate

        wait = wait_record(self.config)
        judged = not interrupted and not (wait is not None and wait.outcome != "live")
        entries, problem = self.history.read()
        self.history_note = problem
        history: dict[str, Any] = {
            "dir": f"{self.history.folder.parent.name}/{self.history.folder.name}",
            "limit": self.history.limit,
            "runs_before": len(entries),
            "previous_run_id": entries[-1]["run_id"] if entries else None,
            "recorded": judged,
            "problem": problem,
        }
        previous = self.previous if self.previous is not None else previous_certificate(entries)
        comparison = None
        if previous is not None and (judged or self.previous is not None):
            comparison = {**compare(previous, rows),
                          "basis": "--compare-with" if self.previous is not None else "history"}
        if judged:
            history.update(annotate(rows, entries, run_id=run_id, finished_at=finished, limit=self.history.limit))
        return {"comparison": comparison, "build_wait": wait.certificate() if wait is not None else None,
                "history": history}

    def _write_run_files(self, session: pytest.Session, cert: dict[str, Any], rows: list[dict[str, Any]],
                         page: str) -> bool:
        """The run's files, all or none (plugins.reports_dir); False: the disk could not take them."""
        from plugins import metrics, reports_dir

        files = [("certificate.md", page), ("metrics.prom", metrics.openmetrics_text(cert)),
                 ("certificate.json", json.dumps(cert, indent=2, ensure_ascii=False) + "\n")]
        return reports_dir.write_all(session, run_context(self.config).run_dir, files,
                                     before=lambda: self._write_allure_metadata(cert, rows), after=_point_latest)

    def _append_history(self, cert: dict[str, Any]) -> None:
        from plugins.run_history import entry_of

        if cert["history"]["recorded"]:
            problem = self.history.append(entry_of(cert))
            if problem:
                self.history_note = problem

    def _push_metrics(self) -> None:
        from plugins import metrics

        if self.push_url is None or self.cert is None:
            return
        problem = metrics.push(self.push_url, self.cert)
        self.push_note = ("metrics pushed to the Pushgateway" if problem is None
                          else f"metrics push failed: {problem}")

    def _write_allure_metadata(self, cert: dict[str, Any], rows: list[dict[str, Any]]) -> None:
        from plugins import allure_labels
        from plugins.scrub import scrub_tree

        results = allure_labels.results_dir(self.config)
        if results is None:
            return
        red = redactor(self.config)
        results.mkdir(parents=True, exist_ok=True)
        allure_labels.write_environment(results, cert)
        allure_labels.write_executor(results, allure_labels.ci_executor(os.environ, cert["run_id"], self._report_link()))
        allure2, _ = allure_labels.categories(rows, self.contract)
        allure_labels.write_categories(results, allure2)
        scrub_tree(results, red)  # backstop: whatever wrote there, no secret stays

    # --- after the stack is down: HTML report and notification ----------------------------

    def _report_link(self) -> str | None:
        ctx = run_context(self.config)
        base = ctx.target.options.get("report_base_url")
        if base:
            return f"{base.rstrip('/')}/{ctx.run_id}/html/index.html"
        return None

    def _build_html(self) -> None:
        from plugins import allure_labels, html_report

        assert self.cert is not None
        if not self.config.getoption("jc_html"):
            return
        if self.cert.get("interrupted"):
            self.html_note = "HTML report skipped: the run was interrupted"
            return
        results = allure_labels.results_dir(self.config)
        if results is None:
            self.html_note = "HTML report skipped: Allure results are off (no --alluredir)"
            return
        _, allure3 = allure_labels.categories(self.cert["invariants"], self.contract)
        ctx = run_context(self.config)
        built = html_report.build(ctx.run_dir, results, self.cert, allure3, redactor(self.config),
                                  history=(self.history.allure_path, self.history.limit))
        if built.path is None:
            self.html_note = f"HTML report not built: {built.problem}"
        else:
            self.html = built.path
            self.html_note = f"HTML report {os.path.relpath(built.path, Path.cwd())} ({built.seconds:.1f}s)"

    def _notify(self) -> None:
        from plugins.notify import post_slack, summary_text

        assert self.cert is not None
        if self.slack_url is None:
            return
        link = self._report_link()
        if link is None and self.html is not None:
            link = self.html.resolve().as_uri()
        url, timeout = self.slack_url
        problem = post_slack(url, summary_text(self.cert, link), redactor(self.config), timeout)
        self.slack_note = "Slack: summary posted" if problem is None else f"Slack: post failed: {problem}"

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        # Runs after every pytest_sessionfinish, so the local stack is already stopped.
        if self.path is None or self.cert is None:
            return
        self._build_html()
        self._notify()
        self._push_metrics()
        red = redactor(self.config)
        for row in sorted(self.rows.values(), key=lambda r: r.id):
            for warning in row.warnings:
                terminalreporter.write_line(f"julia-conformance: warning {row.id}: {red.scrub(warning)}", yellow=True)
            for retry in row.retries:
                terminalreporter.write_line(f"julia-conformance: retry {row.id}: {red.scrub(retry)}", yellow=True)
        verdict = self.cert["verdict"] + (" (interrupted)" if self.cert.get("interrupted") else "")
        rel = os.path.relpath(self.path, Path.cwd())
        sig = self.cert["signature"]
        signed = f"signed {sig['key_id']}" if sig.get("status") == "signed" else "unsigned"
        tw = terminalreporter
        tw.write_line(f"julia-conformance: {verdict} — certificate {rel} ({signed}; "
                      f"valid until {self.cert['valid_until']})",
                      green=verdict == "certified", red=verdict != "certified", bold=True)
        for line in blocker_lines(self.cert):  # the real ones, then those waiting for an option
            tw.write_line(f"julia-conformance: {line}")
        expired = [w for w in self.cert["waivers"] if w["status"] == "expired"]
        if expired:
            tw.write_line("julia-conformance: expired waiver(s) no longer waive: "
                          + ", ".join(f"{w['id']} (expired {w['expires']})" for w in expired), yellow=True)
        unused = [w["id"] for w in self.cert["waivers"] if w["status"] == "unused"]
        if unused:
            tw.write_line("julia-conformance: waiver(s) not needed, the invariant passes (remove from "
                          f"runbook.toml): {', '.join(unused)}")
        comparison = self.cert.get("comparison")
        if comparison:
            tw.write_line(
                f"julia-conformance: since {comparison['previous_run_id']}: "
                f"newly failing {', '.join(comparison['newly_failing']) or 'none'}; "
                f"newly passing {', '.join(comparison['newly_passing']) or 'none'}; "
                f"still failing {', '.join(comparison['still_failing']) or 'none'}")
        for note in (self.html_note, self.slack_note, self.history_note, self.push_note):
            if note:
                tw.write_line(f"julia-conformance: {red.scrub(note)}")


# --- files ---------------------------------------------------------------------------------


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
    if hasattr(config, "workerinput") or config.option.help:
        return  # the controller writes the certificate from the workers' reports
    try:
        run_context(config)
    except pytest.UsageError:
        return
    plugin = CertificatePlugin(config)
    config.pluginmanager.register(plugin, "julia-conformance-certificate")
