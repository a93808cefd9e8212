"""Bad schema options or a bad `[schema]` section: one line naming it, exit code 4, nothing
started (no stack, no report folder)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNBOOK = (ROOT / "runbook.toml").read_text()
TARGETS = (ROOT / "targets.toml").read_text()


def _pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "checks", "-q", "-p", "no:cacheprovider",
         "--reports-dir", str(tmp_path / "reports"), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env=dict(os.environ),
    )


def _error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("ERROR:")]
    assert len(lines) == 1, proc.stderr + proc.stdout
    return lines[0]


def _exits_4(tmp_path: Path, proc: subprocess.CompletedProcess[str], *expect: str) -> None:
    assert proc.returncode == 4, proc.stdout + proc.stderr
    line = _error_line(proc)
    for text in expect:
        assert text in line, line
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert not (tmp_path / "reports").exists(), "a usage error must leave nothing behind"


def test_migrations_dir_missing(tmp_path: Path) -> None:
    proc = _pytest(tmp_path, "--migrations-dir", str(tmp_path / "nope"))
    _exits_4(tmp_path, proc, "--migrations-dir", "nope", "not a directory")


def test_migrations_dir_without_sql_files(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    proc = _pytest(tmp_path, "--migrations-dir", str(tmp_path / "app"))
    _exits_4(tmp_path, proc, "--migrations-dir", "no *.sql file")


@pytest.mark.parametrize(
    ("content", "expect"),
    [
        ("{not json", "not JSON"),
        ('{"format": "something-else"}', "not a schema baseline"),
        ((ROOT / "fixtures/stack/schema-baseline.json").read_text().replace('"text"', '"varchar"', 1),
         "does not match the tables"),
    ],
    ids=["not-json", "wrong-format", "edited-by-hand"],
)
def test_bad_schema_baseline(tmp_path: Path, content: str, expect: str) -> None:
    path = tmp_path / "baseline.json"
    path.write_text(content)
    proc = _pytest(tmp_path, "--schema-baseline", str(path))
    _exits_4(tmp_path, proc, "--schema-baseline", str(path), expect)


def test_schema_baseline_missing(tmp_path: Path) -> None:
    proc = _pytest(tmp_path, "--schema-baseline", str(tmp_path / "none.json"))
    _exits_4(tmp_path, proc, "--schema-baseline", "file not found")


def test_write_baseline_into_missing_folder(tmp_path: Path) -> None:
    proc = _pytest(tmp_path, "--write-schema-baseline", str(tmp_path / "no" / "b.json"))
    _exits_4(tmp_path, proc, "--write-schema-baseline", "does not exist")


def test_write_baseline_to_a_directory(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    proc = _pytest(tmp_path, "--write-schema-baseline", str(tmp_path / "out"))
    _exits_4(tmp_path, proc, "--write-schema-baseline", str(tmp_path / "out"), "is a directory")
    assert list((tmp_path / "out").iterdir()) == []


def test_profile_key_names_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "targets.toml"
    path.write_text(TARGETS.replace('migrations_dir = "fixtures/stack/migrations"', 'migrations_dir = "nowhere"'))
    proc = _pytest(tmp_path, "--target-file", str(path))
    _exits_4(tmp_path, proc, f"{path}: targets.local.migrations_dir", "not a directory")


@pytest.mark.parametrize(
    ("baseline", "expect"),
    [
        (None, "file not found"),
        ("{not json", "not JSON"),
        ('{"format": "something-else"}', "not a schema baseline"),
    ],
    ids=["missing", "not-json", "wrong-format"],
)
def test_bad_profile_schema_baseline(tmp_path: Path, baseline: str | None, expect: str) -> None:
    """The profile's schema_baseline (relative to targets.toml) is judged like the option,
    and the error names targets.toml's file and key."""
    conf = tmp_path / "conf"
    conf.mkdir()
    if baseline is not None:
        (conf / "baseline.json").write_text(baseline)
    path = conf / "targets.toml"
    path.write_text(TARGETS.replace('schema_baseline = "fixtures/stack/schema-baseline.json"',
                                    'schema_baseline = "baseline.json"')
                    .replace('migrations_dir = "fixtures/stack/migrations"',
                             f'migrations_dir = "{ROOT / "fixtures/stack/migrations"}"'))
    proc = _pytest(tmp_path, "--target-file", str(path))
    _exits_4(tmp_path, proc, f"{path}: targets.local.schema_baseline", str(conf / "baseline.json"), expect)


@pytest.mark.parametrize(
    ("edit", "expect"),
    [
        (lambda s: s.replace("all_tables = false", "all_tables = false\nall_table = true"),
         "schema.lint.all_table: unknown key"),
        (lambda s: s.replace("all_tables = false", 'all_tables = "no"'), "schema.lint.all_tables: must be a boolean"),
        (lambda s: s.replace('"changing-column-type",', '"Changing Column Type",'),
         "schema.lint.rules[8]: not a squawk rule name"),
        (lambda s: s.replace('{ endpoint = "schema", path = "expected_version" }',
                             '{ endpoint = "schemas", path = "expected_version" }'),
         "schema.expected_version_from[0].endpoint: unknown endpoint 'schemas'"),
        (lambda s: s.replace("[schema.lint]", "[schema.lintt]"), "schema.lintt: unknown key"),
    ],
    ids=["unknown-key", "wrong-type", "bad-rule-name", "unknown-endpoint", "bad-subtable"],
)
def test_bad_schema_section(tmp_path: Path, edit, expect: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "runbook.toml"
    path.write_text(edit(RUNBOOK))
    proc = _pytest(tmp_path, "--runbook", str(path))
    _exits_4(tmp_path, proc, str(path), expect)


def test_baseline_not_written_is_said(tmp_path: Path) -> None:
    """A run whose drift check is not selected must not let CI believe it wrote a baseline."""
    out = tmp_path / "b.json"
    proc = _pytest(tmp_path, "--collect-only", "--write-schema-baseline", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"--write-schema-baseline {out}: NOT written" in proc.stdout
    assert not out.exists()
