"""Who was judged and by what: the app's reported build, and the suite's own version.

A certificate is only worth something when it says which deployment it speaks for (the app's
git sha and deployment id, as the app itself reports them) and which suite and contract
judged it (suite version and git sha, runbook.toml's sha256). Nothing here is guessed: a
fact the app does not report is recorded as not reported.
"""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path
from typing import Any

from plugins.contract.redaction import Redactor
from plugins.contract.report import ReportContract
from plugins.contract.runbook import Runbook
from plugins.contract.verdict import Undecidable, one_line

ROOT = Path(__file__).resolve().parents[1]


def suite_identity(root: Path = ROOT) -> dict[str, Any]:
    """Name, version (pyproject.toml) and git commit of the suite doing the judging."""
    name = version = None
    try:
        project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
        name, version = project.get("name"), project.get("version")
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        pass
    sha = _git(root, "rev-parse", "HEAD")
    dirty = None
    if sha is not None:
        status = _git(root, "status", "--porcelain", "--untracked-files=no")
        dirty = bool(status) if status is not None else None
    return {"name": name, "version": version, "git_sha": sha, "git_dirty": dirty}


def _git(root: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def app_identity(api_url: str | None, runbook: Runbook, redactor: Redactor,
                 fields: tuple[str, ...] | None = None) -> dict[str, Any]:
    """What the running app reports about its build (runbook.toml [report.identity]).

    Each endpoint is fetched once, with the suite's GET-only client; an unreachable app or
    an absent field is recorded, never fatal: the checks themselves judge reachability.
    ``fields`` limits the facts asked (``--expect-build`` polls only the build's, so each poll
    costs the one endpoint that reports it).
    """
    from fixtures.clients import Api  # late: plugins load before fixtures are importable

    contract: ReportContract = runbook.section("report")
    sources = {name: source for name, source in contract.identity.items() if fields is None or name in fields}
    facts: dict[str, Any] = {name: None for name in sources}
    facts["reported"] = False
    problems: list[str] = []
    if not api_url:
        facts["problems"] = ["no API URL for this target"]
        return facts
    bodies: dict[str, Any] = {}
    api = Api(api_url, runbook.http, runbook.endpoints, redactor)
    # An API that does not answer in time has been judged by the checks already: asking who
    # it is costs one timeout (or total deadline) at most, not one per endpoint.
    api.MAX_TIMEOUTS = 1
    try:
        for name, source in sources.items():
            if source.endpoint not in bodies:
                try:
                    resp = api.endpoint(source.endpoint)
                    # An unhealthy report (503) still says which build answers it.
                    bodies[source.endpoint] = resp.body if resp.status != 404 else None
                    if resp.status != 200:
                        problems.append(f"{source.endpoint}: HTTP {resp.status}")
                except (Undecidable, ValueError) as exc:
                    bodies[source.endpoint] = None
                    problems.append(f"{source.endpoint}: {one_line(str(exc), 200)}")
            value = _first(bodies[source.endpoint], source.paths)
            if value is not None and str(value) in contract.identity_unset:
                # The app says it was not told (e.g. GIT_SHA unset): not a value to record.
                problems.append(f"{name}: the app reports {str(value)!r} (not set in its environment)")
            elif value is not None:
                facts[name] = redactor.scrub(str(value))
                facts["reported"] = True
    finally:
        api.close()
    if problems:
        facts["problems"] = [redactor.scrub(p) for p in problems]
    return facts


def _first(body: Any, paths: tuple[str, ...]) -> Any:
    for path in paths:
        node = body
        for step in path.split("."):
            if not isinstance(node, dict) or step not in node:
                node = None
                break
            node = node[step]
        if node is not None and not isinstance(node, (dict, list)):
            return node
    return None
