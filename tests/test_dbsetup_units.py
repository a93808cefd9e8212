"""Units of the migration file naming and of the seed's job table (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fixtures.stack.dbsetup import (
    JOB_EXECUTIONS_PER_DAY,
    MIGRATIONS_DIR,
    Migration,
    _job_table,
    cron_runs_per_day,
    list_migrations,
    version_key,
)
from plugins.contract.runtime import load


def touch(directory: Path, *names: str) -> None:
    for name in names:
        (directory / name).write_text("SELECT 1;\n", encoding="utf-8")


def test_names_parse_into_version_and_description(tmp_path: Path) -> None:
    touch(tmp_path, "20260105_core_tables.sql", "20260112093000_jobs_and_queue.sql")
    assert list_migrations(tmp_path) == [
        Migration("20260105", "core tables", tmp_path / "20260105_core_tables.sql"),
        Migration("20260112093000", "jobs and queue", tmp_path / "20260112093000_jobs_and_queue.sql"),
    ]


def test_order_is_by_version_even_across_name_lengths(tmp_path: Path) -> None:
    # By file name "20260105120000_b" sorts before "20260105_a" ('1' < '_'); by time it is later.
    touch(tmp_path, "20260105120000_b.sql", "20260105_a.sql", "20260104235959_c.sql")
    assert [m.version for m in list_migrations(tmp_path)] == ["20260104235959", "20260105", "20260105120000"]


def test_other_files_are_ignored(tmp_path: Path) -> None:
    touch(tmp_path, "20260105_a.sql")
    (tmp_path / "README.md").write_text("notes\n", encoding="utf-8")
    assert [m.version for m in list_migrations(tmp_path)] == ["20260105"]


@pytest.mark.parametrize("name", [
    "core_tables.sql", "2026015_core.sql", "202601051_core.sql", "20260105-core.sql",
    "20260105_.sql", "20260105_core tables.sql", "20261305_core.sql", "20260230_core.sql",
    "20260105256000_core.sql",
])
def test_bad_names_raise_naming_the_file(tmp_path: Path, name: str) -> None:
    touch(tmp_path, "20260105_ok.sql", name)
    with pytest.raises(ValueError, match=name.replace(".", r"\.")):
        list_migrations(tmp_path)


def test_subfolders_are_migrations_too(tmp_path: Path) -> None:
    """The local stack applies what the checks scan: a file in a subfolder is a migration."""
    touch(tmp_path, "20260105_a.sql")
    (tmp_path / "sprint-2").mkdir()
    touch(tmp_path / "sprint-2", "20260104_b.sql")
    migrations = list_migrations(tmp_path)
    assert [(m.version, m.file) for m in migrations] == [("20260104", "sprint-2/20260104_b.sql"),
                                                         ("20260105", "20260105_a.sql")]
    touch(tmp_path / "sprint-2", "001_c.sql")
    with pytest.raises(ValueError, match="'sprint-2/001_c.sql' is not named"):
        list_migrations(tmp_path)


def test_duplicate_versions_raise(tmp_path: Path) -> None:
    touch(tmp_path, "20260105_a.sql", "20260105000000_b.sql")
    with pytest.raises(ValueError, match="share a version"):
        list_migrations(tmp_path)


def test_version_key_compares_both_lengths() -> None:
    assert version_key("20260105") < version_key("20260105000001") < version_key("20260106")


def test_shipped_migrations() -> None:
    migrations = list_migrations(MIGRATIONS_DIR)
    assert len(migrations) >= 3
    assert all(version_key(m.version) <= version_key("20260209235959") for m in migrations)


def test_job_table_is_the_runbooks() -> None:
    """One job table: the seed reads runbook.toml's [runtime.jobs], as the scheduler does."""
    jobs = load().jobs
    now = datetime(2026, 11, 25, 14, 15, tzinfo=UTC)  # a Wednesday
    table = {j["name"]: j for j in _job_table(jobs, now=now, start=now - timedelta(days=3)).obj}  # type: ignore[union-attr]
    assert list(table) == [job.name for job in jobs]
    assert table["verificar-alertas"]["minutes"] == [0, 15, 30, 45]
    assert table["report-semanal"]["dows"] == [1] and table["report-semanal"]["hours"] == [9]
    assert table["relatorio-periodo"]["hours"] == [10, 13, 17, 20]
    assert table["relatorio-periodo"]["tz"] == "America/Sao_Paulo"
    # Only jobs with enough runs to keep a failure far below the threshold may fail.
    assert {n for n, j in table.items() if j["may_fail"]} == {
        "processar-mensagens-agendadas", "processar-campanhas-agendadas", "verificar-alertas"}
    # Jobs firing less often than the window get their last two firings from croniter.
    assert table["report-semanal"]["extra"] == ["2026-11-16T09:00:00+00:00"]  # 23rd: in the window
    assert table["atualizar-prompt-feedback"]["extra"] == ["2026-11-15T02:00:00+00:00", "2026-11-22T02:00:00+00:00"]
    assert table["processar-mensagens-agendadas"]["extra"] == []


def test_seed_volume_follows_the_runbook() -> None:
    """~3,000 cron runs a day; the worker's jobs make up the runbook's ~10,000 (at scale 1)."""
    per_day = cron_runs_per_day(load().jobs)
    assert 3000 < per_day < 3020
    assert JOB_EXECUTIONS_PER_DAY == 10_000
