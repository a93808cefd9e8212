"""Runbook lint (JC-RUNBOOK-01..04) on the real reference stack: exactly the broken lines.

The fixture documents mark each line the lint must report with ``expect: JC-RUNBOOK-0N``;
the real runbook (``../shared/RUNBOOK.md``, beside the clone in CI) must be flagged where it
is wrong about a modern PostgreSQL — and nowhere it is right.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from fixtures.runbook_doc import parse_runbook
from fixtures.stack.backends.native import NativeStack
from plugins.contract.runbook import load_runbook
from tests.conftest import ROOT, SuiteRun, targets_text

DATA = Path(__file__).resolve().parent / "data" / "runbook_lint"
KNOWN = DATA / "known_lines.md"
ALL_GOOD = DATA / "all_good.md"
LINT = ("checks/test_runbook_lint.py",)
IDS = ("JC-RUNBOOK-01", "JC-RUNBOOK-02", "JC-RUNBOOK-03", "JC-RUNBOOK-04")
# The reference app's variables, plus names the fixtures use (CHATWOOT_URL: the deployed
# app's spelling of the runbook's CHATWOOT_API_URL).
APP_VARS = ["APP_ENV", "SUPABASE_PROJECT_REF", "SUPABASE_URL", "CHATWOOT_URL", "DATABASE_URL", "REDIS_URL"]


def _targets(tmp_path: Path, app_vars: object = APP_VARS) -> Path:
    text = targets_text()
    anchor = 'redis_url_env = "JC_LOCAL_REDIS_URL"\n'
    assert anchor in text
    path = tmp_path / "targets.toml"
    path.write_text(text.replace(anchor, anchor + f"app_env_vars = {json.dumps(app_vars)}\n", 1))
    return path


def _rows(run: SuiteRun, inv_id: str) -> list[dict[str, object]]:
    assert run.run_dir is not None, run.output[-3000:]
    return json.loads((run.run_dir / "runbook-lint" / f"{inv_id}.json").read_text())["rows"]


def _flagged(run: SuiteRun, inv_id: str) -> set[int]:
    return {int(r["line"]) for r in _rows(run, inv_id) if r["outcome"] == "broken"}  # type: ignore[arg-type]


def _marked(doc: Path, marker: str) -> set[int]:
    return {n for n, line in enumerate(doc.read_text().splitlines(), 1) if marker in line}


def _lint(suite, doc: Path, *args: str) -> SuiteRun:  # type: ignore[no-untyped-def]
    return suite("-m", "runbook", "--runbook-doc", str(doc), *args, paths=LINT)


def test_known_lines_are_flagged_exactly(healthy: NativeStack, suite, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = _lint(suite, KNOWN, "--target-file", str(_targets(tmp_path)))
    assert run.exitcode == 1, run.output[-3000:]
    assert run.not_passed() == set(IDS)
    for inv_id in IDS:
        assert _flagged(run, inv_id) == _marked(KNOWN, f"expect: {inv_id}"), inv_id

    sql = run.message("JC-RUNBOOK-01")
    assert 'relation "tabela_que_nao_existe" does not exist' in sql
    assert 'column "enviada_em" does not exist' in sql
    assert 'column "mean_time" does not exist' in sql and "since 13" in sql
    rows = {r["line"]: r for r in _rows(run, "JC-RUNBOOK-01")}
    assert "syntax error" in str(rows[80]["detail"])  # the certificate line keeps ~400 characters
    assert rows[75]["outcome"] == "planned" and "placeholder 'XXXXX-XXXXX-XXXXX'" in str(rows[75]["detail"])
    assert [rows[n]["detail"] for n in (63, 64)] == ["not plannable: parsed OK (VacuumStmt)",
                                                     "not plannable: parsed OK (IndexStmt)"]
    assert "22007" in str(rows[66]["detail"])  # a real bad literal is not a placeholder
    assert "GET /health/nope answered 404" in run.message("JC-RUNBOOK-02")
    assert "no key 'latency'" in run.message("JC-RUNBOOK-03")
    jq = {r["line"]: r for r in _rows(run, "JC-RUNBOOK-03")}
    assert jq[24]["outcome"] == "skipped" and "404" in str(jq[24]["detail"])
    assert jq[26]["outcome"] == "skipped" and "not checked" in str(jq[26]["detail"])
    env = run.message("JC-RUNBOOK-04")
    assert "CHATWOOT_API_URL is not the app's, the app has CHATWOOT_URL" in env and "LEGACY_TOKEN" in env

    # Planned, never executed: the local database is read-write, the lint still wrote nothing.
    assert healthy.info is not None
    with psycopg.connect(healthy.info.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM julia_status WHERE motivo LIKE 'Lint%'").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM app_settings WHERE key = 'environment'").fetchone() == (1,)


def test_healthy_stack_passes_a_correct_runbook(healthy: NativeStack, suite, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = _lint(suite, ALL_GOOD, "--target-file", str(_targets(tmp_path)))
    assert run.exitcode == 0, run.output[-3000:]
    assert run.certificate is not None and run.certificate["verdict"] == "certified"
    assert set(run.outcomes()) == set(IDS) and run.not_passed() == set()


@pytest.mark.smoke
def test_renamed_column_flags_the_statements_that_name_it(healthy: NativeStack, suite, sql, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sql("ALTER TABLE julia_status RENAME COLUMN motivo TO razao")
    run = _lint(suite, ALL_GOOD, "--target-file", str(_targets(tmp_path)))
    assert run.exitcode == 1
    assert run.not_passed() == {"JC-RUNBOOK-01"}
    assert _flagged(run, "JC-RUNBOOK-01") == _marked(ALL_GOOD, "breaks-without: julia_status.motivo")
    assert 'column "motivo"' in run.message("JC-RUNBOOK-01")


def test_shared_runbook_against_the_reference_stack(shared_runbook: Path, healthy: NativeStack, suite) -> None:  # type: ignore[no-untyped-def]
    """The runbook's FK audit joins information_schema.tables on `tablename` (pg_tables'
    column, not this view's) and its slow-query SQL reads pg_stat_statements' pre-13
    `mean_time`/`total_time`: both fail on PostgreSQL 15, as they would in production (17)."""
    contract = load_runbook(ROOT / "runbook.toml").section("runbook_lint")
    doc = parse_runbook(shared_runbook.read_text(), shared_runbook, production_urls=contract.production_urls,
                        env_table_columns=contract.env_table_columns)
    fk = {s.line for s in doc.statements if "information_schema.tables t" in s.text and "t.tablename" in s.text}
    pgss = {s.line for s in doc.statements if "pg_stat_statements" in s.text and re.search(r"\bmean_time\b", s.text)}
    good = {s.line for s in doc.statements if s.text.startswith("SELECT key, value FROM app_settings WHERE key IN")}
    latency = {c.line for c in doc.curls if c.jq == ".latency"}
    assert len(fk) == 1 and len(pgss) == 2 and len(good) == 1 and len(latency) == 1

    run = _lint(suite, shared_runbook)
    assert run.exitcode == 1, run.output[-3000:]
    assert _flagged(run, "JC-RUNBOOK-01") == fk | pgss
    message = run.message("JC-RUNBOOK-01")
    assert "t.tablename does not exist" in message and 'column "mean_time" does not exist' in message
    rows = {r["line"]: r for r in _rows(run, "JC-RUNBOOK-01")}
    assert all(rows[n]["outcome"] == "planned" for n in good)
    assert _flagged(run, "JC-RUNBOOK-03") == latency
    assert run.outcomes() == {"JC-RUNBOOK-01": "failed", "JC-RUNBOOK-02": "passed",
                              "JC-RUNBOOK-03": "failed", "JC-RUNBOOK-04": "skipped"}


def test_without_a_document_the_lint_skips(healthy: NativeStack, suite) -> None:  # type: ignore[no-untyped-def]
    run = suite("-m", "runbook", paths=LINT)
    assert run.outcomes() == dict.fromkeys(IDS, "skipped")
    assert "--runbook-doc" in run.message("JC-RUNBOOK-01")


def _collect(tmp_path: Path, *args: str, paths: tuple[str, ...] = (*LINT, "checks/test_health.py")) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *paths, "--collect-only", "-q",
         "-p", "no:cacheprovider", "--reports-dir", str(tmp_path / "reports"), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    return proc.stdout + proc.stderr


def test_the_lint_is_nightly_only_with_a_document(tmp_path: Path) -> None:
    without = _collect(tmp_path, "-m", "nightly")
    with_doc = _collect(tmp_path, "-m", "nightly", "--runbook-doc", str(ALL_GOOD))
    gate = _collect(tmp_path, "-m", "postdeploy", "--runbook-doc", str(ALL_GOOD))
    assert "test_runbook_lint.py" not in without and "test_health.py" in without
    assert with_doc.count("test_runbook_lint.py::") == 4
    assert "test_runbook_lint.py" not in gate


def test_a_plain_run_without_a_document_does_not_contain_the_lint(tmp_path: Path) -> None:
    """A skipped invariant makes a run not-certified: a run that did not ask for the lint
    must not carry four skips (`-m runbook` or naming the module asks for it)."""
    plain = _collect(tmp_path, paths=("checks",))
    named = _collect(tmp_path, paths=LINT)
    assert "test_runbook_lint.py" not in plain and "4 deselected" in plain
    assert named.count("test_runbook_lint.py::") == 4


def _error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("ERROR:")]
    assert len(lines) == 1, proc.stderr + proc.stdout
    return lines[0]


@pytest.mark.parametrize(
    ("case", "expect"),
    [
        ("missing", "--runbook-doc: file not found"),
        ("directory", "--runbook-doc: is a directory"),
        ("latin1", "--runbook-doc: not UTF-8 text"),
        ("bad-var-name", "targets.local.app_env_vars[1]: must be an environment variable name"),
        ("not-a-list", "targets.local.app_env_vars: must be a list"),
    ],
)
def test_bad_document_or_variable_list_exits_4(tmp_path: Path, case: str, expect: str) -> None:
    doc = tmp_path / "RUNBOOK.md"
    doc.write_text("# ok\n")
    targets = ROOT / "targets.toml"
    if case == "missing":
        doc = tmp_path / "nope.md"
    elif case == "directory":
        doc = tmp_path
    elif case == "latin1":
        doc.write_bytes("Emergência".encode("latin-1"))
    elif case == "bad-var-name":
        targets = _targets(tmp_path, ["APP_ENV", "chatwoot-url"])
    elif case == "not-a-list":
        targets = _targets(tmp_path, "APP_ENV")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *LINT, "-q", "-p", "no:cacheprovider", "-m", "runbook",
         "--reports-dir", str(tmp_path / "reports"), "--target-file", str(targets), "--runbook-doc", str(doc)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("JC_")},
    )
    assert proc.returncode == 4, proc.stdout + proc.stderr
    line = _error_line(proc)
    assert expect in line
    assert str(targets if "app_env_vars" in expect else doc) in line
    assert not (tmp_path / "reports").exists(), "a usage error must leave nothing behind"
