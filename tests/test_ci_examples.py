"""The example workflows a team pastes (examples/github-actions/postdeploy.yml, nightly.yml):
parsed as YAML, every suite option they pass exists (asked from the suite's own --help), every
script they name is in the repository, secrets come only from `secrets.*` (into env, never
into a script), and each does what README promises — the gate waits for this commit and its
failure drives the rollback; the nightly run is scheduled, read-only, carries its history
between nights and publishes its report."""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from croniter import croniter

from plugins.build_wait import EXIT_STALE_BUILD
from plugins.contract.targets import load_targets
from plugins.run_history import HISTORY_DIR
from tests.conftest import ROOT

EXAMPLES = ROOT / "examples" / "github-actions"
SECRET_REF = re.compile(r"^\$\{\{\s*secrets\.([A-Z][A-Z0-9_]*)\s*\}\}$")
SECRET_LOOKING = re.compile(r"TOKEN|KEY|URL|WEBHOOK|PASSWORD|SECRET|DSN", re.IGNORECASE)
# credentials written out: user:password@ in a URL, a Slack hook, a Slack token
LITERAL_CREDENTIAL = re.compile(r"://[^/\s:@$]+:[^@\s$]+@|hooks\.slack\.com/services/T|xox[abp]-")


def workflow(name: str) -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES / name).read_text())


def steps(wf: dict[str, Any]) -> list[dict[str, Any]]:
    [job] = wf["jobs"].values()
    return job["steps"]


def step(wf: dict[str, Any], step_id: str) -> tuple[int, dict[str, Any]]:
    return next((i, s) for i, s in enumerate(steps(wf)) if s.get("id") == step_id)


def index_of(wf: dict[str, Any], uses: str) -> list[int]:
    return [i for i, s in enumerate(steps(wf)) if s.get("uses", "").startswith(uses)]


@functools.cache
def suite_options() -> frozenset[str]:
    """Every long option the conformance suite accepts, as its own --help lists them."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "checks", "--help", "-p", "no:cacheprovider"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return frozenset(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", proc.stdout))


def pytest_command(run: str) -> str:
    """The suite's command line in a step's script (continuation lines joined)."""
    text = run.replace("\\\n", " ")
    [line] = [ln for ln in text.splitlines() if "python -m pytest" in ln]
    return " ".join(line.split())


def options_of(command: str) -> list[str]:
    return re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", command)


def walk(node: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    if isinstance(node, dict):
        return [x for k, v in node.items() for x in walk(v, (*path, str(k)))]
    if isinstance(node, list):
        return [x for i, v in enumerate(node) for x in walk(v, (*path, str(i)))]
    return [(path, node)]


@pytest.mark.parametrize("name", ["postdeploy.yml", "nightly.yml", "premerge.yml"])
def test_options_scripts_and_secrets(name: str) -> None:
    text = (EXAMPLES / name).read_text()
    wf = workflow(name)
    assert LITERAL_CREDENTIAL.search(text) is None
    runs = [s["run"] for s in steps(wf) if "run" in s]
    commands = [pytest_command(r) for r in runs if "python -m pytest" in r]
    assert commands, name
    markers = (ROOT / "pyproject.toml").read_text()
    for command in commands:
        unknown = [o for o in options_of(command) if o not in suite_options()]
        assert unknown == [], (name, unknown)
        tier = re.search(r"\s-m\s+([a-z]+)", command.split("python -m pytest", 1)[1]).group(1)  # type: ignore[union-attr]
        assert f'"{tier}: ' in markers, (name, tier)  # a registered tier marker
        assert command.split("--target ", 1)[1].split()[0] in load_targets(ROOT / "targets.toml")
    for run in runs:
        for script in re.findall(r"(?<![\w/])(scripts/[\w.-]+)", run):
            assert (ROOT / script).is_file(), (name, script)
        assert "secrets." not in run, (name, run)  # secrets reach a script only through env
    for path, value in walk(wf):
        if isinstance(value, str) and "secrets." in value:
            assert SECRET_REF.match(value.strip()), (name, path, value)
            assert "env" in path or path[-2:-1] == ("with",), (name, path)
        if len(path) >= 2 and path[-2] == "env" and SECRET_LOOKING.search(path[-1]):
            assert isinstance(value, str) and SECRET_REF.match(value), (name, path, value)


def _gate_env_names(step_: dict[str, Any]) -> set[str]:
    prod = load_targets(ROOT / "targets.toml")["prod"]
    names = {prod["database_url_env"], prod["redis_url_env"], prod["signing_key_env"]}
    if "--notify-slack" in step_["run"]:
        names.add(prod["slack_webhook_env"])
    return names - set(step_["env"])


def test_postdeploy_waits_for_this_commit_and_drives_the_rollback() -> None:
    wf = workflow("postdeploy.yml")
    all_steps = steps(wf)
    deploy_at, deploy = step(wf, "deploy")
    gate_at, gate = step(wf, "gate")
    rollback_at, rollback = step(wf, "rollback")
    assert "railway up --detach" in deploy["run"] and deploy_at < gate_at < rollback_at
    # the gate replaces `sleep 120` and the curl loop on /health/deep
    assert not any(re.search(r"\bsleep\b", s.get("run", "")) for s in all_steps)
    assert not any("curl" in s.get("run", "") and "/health" in s.get("run", "") for s in all_steps)
    command = pytest_command(gate["run"])
    assert "--expect-build ${{ github.sha }}" in command and "--wait-timeout" in command
    assert "-m postdeploy" in command and "--target prod" in command and "--notify-slack" in command
    assert _gate_env_names(gate) == set()
    # its exit code reaches the rollback's condition, which has a status function
    assert 'echo "exit_code=$code" >> "$GITHUB_OUTPUT"' in gate["run"] and gate["run"].rstrip().endswith("exit $code")
    cond = rollback["if"]
    assert cond.startswith("failure()") and "steps.gate.outcome == 'failure'" in cond
    assert set(re.findall(r"steps\.gate\.outputs\.exit_code == '(\d+)'", cond)) == {"1", str(EXIT_STALE_BUILD)}
    assert "railway rollback" in rollback["run"]
    # certificate and HTML report kept, whatever the verdict
    [upload_at] = index_of(wf, "actions/upload-artifact@")
    upload = all_steps[upload_at]
    reports = command.split("--reports-dir ", 1)[1].split()[0].strip('"').replace("$GITHUB_WORKSPACE/", "")
    assert upload["if"].startswith("always()") and gate_at < upload_at < rollback_at
    for kept in ("certificate.json", "certificate.md", "metrics.prom", "html/index.html"):
        assert f"{reports}/latest/{kept}" in upload["with"]["path"], kept
    # the Slack notice of the rollback also runs after a failure
    notice = next(s for s in all_steps[rollback_at + 1:] if "SLACK_WEBHOOK_URL" in s.get("env", {}))
    assert notice["if"].startswith("failure()")


def test_nightly_is_scheduled_read_only_and_remembers() -> None:
    wf = workflow("nightly.yml")
    on = wf.get("on", wf.get(True))  # (YAML 1.1 reads the key `on` as true)
    [schedule] = on["schedule"]
    assert croniter.is_valid(schedule["cron"])
    run_at, run = step(wf, "nightly")
    command = pytest_command(run["run"])
    assert "-m nightly" in command and "--target prod" in command and "--notify-slack" in command
    assert "--push-metrics" in command and "--history-runs" in command
    assert SECRET_REF.match(run["env"]["JC_PROD_DATABASE_URL"]).group(1).endswith("_READONLY")  # type: ignore[union-attr]
    assert _gate_env_names(run) == set()
    # the history (beside the reports) restored before the run and saved after it, always
    reports = command.split("--reports-dir ", 1)[1].split()[0].strip('"').replace("$GITHUB_WORKSPACE/", "")
    [restore_at] = index_of(wf, "actions/cache/restore@")
    [save_at] = index_of(wf, "actions/cache/save@")
    restore, save = steps(wf)[restore_at], steps(wf)[save_at]
    assert restore["with"]["path"] == save["with"]["path"] == f"{reports}/{HISTORY_DIR}"
    assert restore_at < run_at < save_at and save["if"] == "always()"
    assert save["with"]["key"] == restore["with"]["key"] and restore["with"]["key"].startswith(
        restore["with"]["restore-keys"])
    # the report is published: on the run's page and as an artifact
    assert any("GITHUB_STEP_SUMMARY" in s.get("run", "") and "certificate.md" in s["run"] for s in steps(wf))
    [upload_at] = index_of(wf, "actions/upload-artifact@")
    assert "html/index.html" in steps(wf)[upload_at]["with"]["path"] and steps(wf)[upload_at]["if"] == "always()"


def test_readme_has_the_copy_paste_blocks() -> None:
    readme = (ROOT / "README.md").read_text()
    for section, example, needles in [
        ("## Deploy pipeline", "postdeploy.yml", ("--expect-build", "--wait-timeout")),
        ("## Nightly", "nightly.yml", ("-m nightly", "--push-metrics")),
    ]:
        body = readme.split(section, 1)[1].split("\n## ", 1)[0]
        assert f"examples/github-actions/{example}" in body
        blocks = re.findall(r"```(?:bash|yaml)\n(.*?)```", body, re.S)
        assert any(all(n in b for n in needles) for b in blocks), section
        for block in blocks:
            for command in (ln for ln in block.replace("\\\n", " ").splitlines() if "scripts/conformance" in ln):
                unknown = [o for o in options_of(command) if o not in suite_options()]
                assert unknown == [], (section, unknown)
