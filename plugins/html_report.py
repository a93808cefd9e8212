"""The offline HTML report: Allure 3 (npm package ``allure``, installed by scripts/bootstrap).

Built once per run from the run's allure-results, as one self-contained ``index.html`` that
opens from disk (file://) with no server and no network. Its first page carries the
certificate's verdict and the target's identity: the report name (Allure's page title) is the
certificate's headline, and the report variables list verdict, target, app build and
blockers. Allure 3's awesome template embeds a Google Analytics tag; it is removed, since the
page title it would send out names the production target.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plugins.certificate_doc import headline, option_blockers, real_blockers
from plugins.contract.redaction import Redactor
from plugins.html_first_screen import first_screen
from plugins.reports_dir import cause

ROOT = Path(__file__).resolve().parents[1]
ALLURE_CLI = Path("node_modules") / "allure" / "cli.js"
BUILD_TIMEOUT_S = 300
_ANALYTICS = re.compile(
    r"<script[^>]*src=\"https://www\.googletagmanager\.com/[^\"]*\"[^>]*>\s*</script>\s*"
    r"(?:<script>(?:(?!</script>).)*?gtag\((?:(?!</script>).)*?</script>)?",
    re.DOTALL,
)


@dataclass(frozen=True)
class HtmlResult:
    path: Path | None
    seconds: float
    problem: str | None = None


def allure_cli(root: Path = ROOT) -> tuple[list[str] | None, str | None]:
    """The command that runs Allure 3, or why it cannot run."""
    node = shutil.which("node")
    if node is None:
        return None, "node is not installed (scripts/bootstrap installs it)"
    cli = root / ALLURE_CLI
    if not cli.is_file():
        return None, f"Allure 3 is not installed ({ALLURE_CLI} missing: run scripts/bootstrap)"
    return [node, str(cli)], None


def report_config(cert: dict[str, Any], categories: list[dict[str, Any]], output: Path,
                  history: tuple[Path, int] | None = None) -> dict[str, Any]:
    """allurerc.json: the certificate's headline as report name, its facts as variables; with
    ``history`` (the target's file and how many runs it keeps: plugins.run_history) Allure 3
    appends this run to it and shows the runs before in its trends and each test's History."""
    app = cert.get("app") or {}
    sig = cert.get("signature") or {}
    rows = cert.get("invariants", [])
    waiting = option_blockers(rows)
    # The first eight variables are on the first screen (issue 17): verdict, the real blockers,
    # the target and its build; checks waiting for an option come after them.
    variables = {
        "Verdict": "CERTIFIED" if cert.get("verdict") == "certified" else "NOT CERTIFIED",
        "Blockers": _ids(real_blockers(rows)) or "none",
        "Target": f"{cert.get('target')} ({cert.get('environment')} · {cert.get('project_ref')})",
        "App git sha": str(app.get("git_sha") or "not reported"),
        "Deployment": str(app.get("deployment_id") or "not reported"),
        **({"Needs option": _ids(waiting, with_option=True)} if waiting else {}),
        "Valid until": str(cert.get("valid_until")),
        "Environment": str(cert.get("environment")),
        "Project ref": str(cert.get("project_ref")),
        "Schema version": str(app.get("schema_version") or "not reported"),
        "API": str(cert.get("api_url") or "—"),
        "Tier": str(cert.get("tier")),
        "Dialect": f"{cert.get('dialect')} ({len(cert.get('drift') or [])} drift: JC-DRIFT-01's "
                   "\"drift section\", certificate.md)",
        "Signature": f"Ed25519 {sig.get('key_id')}" if sig.get("status") == "signed" else "unsigned",
        "Run": str(cert.get("run_id")),
    }
    name = headline(cert)
    kept = {"historyPath": str(history[0]), "historyLimit": history[1]} if history else {}  # issue 19
    return {
        **kept,
        "name": name,
        "output": str(output),
        "variables": variables,
        "categories": categories,
        "plugins": {
            "awesome": {
                "options": {
                    "reportName": name,
                    "singleFile": True,
                    "reportLanguage": "en",
                    "groupBy": ["epic", "feature"],
                },
            },
        },
    }


def _ids(rows: list[dict[str, Any]], *, with_option: bool = False, shown: int = 12) -> str:
    """One id a line (the report lets a variable's lines wrap: plugins.html_first_screen)."""
    lines = [f"{r['id']}: needs {r['needs_option']}" if with_option else r["id"] for r in rows[:shown]]
    if len(rows) > shown:
        lines.append(f"… {len(rows) - shown} more (certificate.md)")
    return "\n".join(lines)


def strip_analytics(html: str) -> str:
    return _ANALYTICS.sub("", html)


def build(run_dir: Path, results: Path, cert: dict[str, Any], categories: list[dict[str, Any]],
          redactor: Redactor, root: Path = ROOT, history: tuple[Path, int] | None = None) -> HtmlResult:
    """Run ``allure generate`` into ``run_dir/html``; never raises for a failed build."""
    start = time.monotonic()
    cmd, problem = allure_cli(root)
    if cmd is None:
        return HtmlResult(None, 0.0, problem)
    output = run_dir / "html"
    config_path = run_dir / "allurerc.json"
    config = report_config(cert, categories, output, history)
    try:
        config_path.write_text(redactor.scrub(json.dumps(config, indent=2, ensure_ascii=False)) + "\n")
    except OSError as exc:
        return _unwritable(run_dir, start, cause(exc))
    env = {**os.environ, "ALLURE_NO_ANALYTICS": "true", "NO_COLOR": "1"}
    try:
        proc = subprocess.run(
            [*cmd, "generate", "--config", str(config_path), "--output", str(output), str(results)],
            cwd=run_dir, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return HtmlResult(None, time.monotonic() - start, f"allure generate timed out after {BUILD_TIMEOUT_S}s")
    except OSError as exc:
        return HtmlResult(None, time.monotonic() - start, f"allure generate could not start: {exc}")
    index = output / "index.html"
    if proc.returncode != 0 or not index.is_file():
        said = proc.stderr or proc.stdout
        if "ENOSPC" in said or "EDQUOT" in said:
            return _unwritable(run_dir, start, "no space left on device" if "ENOSPC" in said else "disk quota exceeded")
        shutil.rmtree(output, ignore_errors=True)  # no half-built report
        tail = " ".join(redactor.scrub(said).split())[-400:]
        return HtmlResult(None, time.monotonic() - start, f"allure generate exited {proc.returncode}: {tail}")
    try:
        index.write_text(first_screen(strip_analytics(index.read_text(encoding="utf-8"))), encoding="utf-8")
    except OSError as exc:
        return _unwritable(run_dir, start, cause(exc))
    return HtmlResult(index, time.monotonic() - start)


def _unwritable(run_dir: Path, start: float, why: str) -> HtmlResult:
    """The reports directory could not take the report (issue 17): no half-built report stays,
    and the note names the directory in one line; the certificate, written before, stands."""
    shutil.rmtree(run_dir / "html", ignore_errors=True)
    return HtmlResult(None, time.monotonic() - start,
                      f"{why} under --reports-dir {run_dir.parent} (the certificate is written, the HTML report is not)")
