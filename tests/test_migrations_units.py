"""Units of the migration-file convention (fixtures/migrations.py; no database)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.migrations import Migration, list_migrations, version_key
from fixtures.stack.refapp.config import MIGRATIONS_DIR


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
