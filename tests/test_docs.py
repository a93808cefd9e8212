"""The README opens with the two commands (run the suite; run the project's tests), CI runs
the README's test command, and a clean clone has the reports/ folder the layout names."""

from __future__ import annotations

import re
import subprocess

from tests.conftest import ROOT


def _first_code_block(markdown: str) -> list[str]:
    match = re.search(r"^```[a-z]*\n(.*?)^```", markdown, re.S | re.M)
    assert match is not None, "README.md has no code block"
    return [line for line in match.group(1).splitlines() if line.strip()]


def test_readme_opens_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    # the first code block comes before any section
    assert readme.index("```") < readme.index("\n## ")
    commands = [line.split("#", 1)[0].strip() for line in _first_code_block(readme)]
    assert commands == ["scripts/conformance", "scripts/selftest"]
    for command in commands:
        assert (ROOT / command).is_file()


def test_ci_runs_the_readmes_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    lines = [ln.strip() for ln in ci.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert any(re.match(r"^(exec )?scripts/selftest\b", ln) for ln in lines), ci


def test_reports_folder_is_in_the_repository() -> None:
    """DESIGN's layout lists reports/: its README is committed (the rest is git-ignored)."""
    assert (ROOT / "reports" / "README.md").is_file()
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", "--error-unmatch", "reports/README.md"],
                             capture_output=True, text=True)
    ignored = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", "reports/README.md"])
    assert tracked.returncode == 0 or ignored.returncode == 1, tracked.stderr
    assert subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", "reports/some-run/certificate.json"]).returncode == 0


def test_a_self_test_run_writes_no_run_folder(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """reports/ holds conformance runs only: running the project's own tests adds nothing."""
    import sys

    proc = subprocess.run([sys.executable, "-m", "pytest", "tests/test_docs.py", "-q", "-p", "no:cacheprovider",
                           "-k", "two_commands", "--reports-dir", str(tmp_path / "reports")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not (tmp_path / "reports").exists()


def test_no_guess_about_the_deployment_is_left() -> None:
    """Issue 15: the deployment dialect and its twin state facts read from the real app's
    code, each citing the file; no guess marked as the suite's own reading may remain anywhere."""
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True,
                             check=True).stdout.split()
    marker = "(our " + "reading)"  # spelled apart so this file is not a hit itself
    hits = [name for name in tracked if (ROOT / name).is_file() and name.endswith((".py", ".toml", ".sql", ".md"))
            and marker in (ROOT / name).read_text(encoding="utf-8", errors="replace")]
    assert hits == []


def test_every_dialect_comment_block_cites_the_deployment() -> None:
    """Each section of dialects/deployment.toml says which file of the real app it comes from."""
    text = (ROOT / "dialects" / "deployment.toml").read_text(encoding="utf-8")
    sections = re.split(r"^(?=\[)", text, flags=re.M)[1:]
    uncited = [s.splitlines()[0] for s in sections
               if not re.search(r"[\w-]+\.(?:py|sql|sh|md|json|ya?ml)\b|Dockerfile", s)]
    assert uncited == []


def test_readme_lists_every_invariant_with_what_it_trusts() -> None:
    """Issue 16: README's invariant list says, for each check, what evidence it trusts and what
    it refuses; every declared invariant has its row (ranges like JC-DEEP-02…07 and pairs like
    JC-GUARD-01/02 count for each id they name)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Invariants: what each check trusts, and what it refuses", 1)[1].split("\n## ", 1)[0]
    named: set[str] = set()
    for row in re.findall(r"^\| (JC-[A-Z]+-[0-9/…]+) \|", section, re.M):
        area, nums = row.rsplit("-", 1)
        if "…" in nums:
            lo, hi = nums.split("…")
            named |= {f"{area}-{n:02d}" for n in range(int(lo), int(hi) + 1)}
        else:
            named |= {f"{area}-{int(n):02d}" for n in nums.split("/")}
    import importlib

    from plugins.contract.verdict import registry

    for path in (ROOT / "checks").glob("test_*.py"):
        importlib.import_module(f"checks.{path.stem}")  # the registry fills as checks are declared
    declared = set(registry())
    assert declared - named == set(), "invariants without a row in README's list"
    assert named - declared == set(), "README lists invariants no check declares"
