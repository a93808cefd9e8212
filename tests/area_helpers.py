"""Shared by the maintenance and security fault self-tests: a runbook.toml copy that does not
depend on the calendar, a clean scratch application repository, and a runner for the area."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
AREA = ("checks/test_maintenance.py", "checks/test_security.py")


def runbook_copy(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    """runbook.toml with every secret rotated today (so no test depends on the calendar)
    and the given (old, new) text edits applied."""
    text = (ROOT / "runbook.toml").read_text()
    text = re.sub(r"(?m)^last_rotated = \d{4}-\d{2}-\d{2}$",
                  f"last_rotated = {dt.datetime.now(dt.UTC).date().isoformat()}", text)
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "runbook.toml"
    path.write_text(text)
    return path


@pytest.fixture
def clean_app_repo(tmp_path: Path) -> Path:
    """A scratch application repository with nothing secret committed."""
    repo = tmp_path / "app"
    repo.mkdir()
    (repo / "app.py").write_text("import os\n\nANTHROPIC_API_KEY = os.environ['ANTHROPIC_API_KEY']\n")
    (repo / ".env.example").write_text("APP_ENV=production\nSUPABASE_PROJECT_REF=\n")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "app")
    return repo


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=ci@example.invalid", "-c", "user.name=ci", "-C", str(repo), *args],
                   check=True, capture_output=True, timeout=60)


@pytest.fixture
def area(suite, tmp_path: Path, clean_app_repo: Path):  # type: ignore[no-untyped-def]
    """Run this area's checks against the stack (today's rotation dates, a clean app repo)."""

    def run(*edits: tuple[str, str], paths: tuple[str, ...] = AREA, args: tuple[str, ...] = (),  # type: ignore[no-untyped-def]
            app_repo: Path | None = clean_app_repo):
        rb = runbook_copy(tmp_path, *edits)
        repo = ("--app-repo", str(app_repo)) if app_repo is not None else ()
        return suite("--runbook", str(rb), "--judge-secret-rotation", *repo, *args, paths=paths)

    return run
