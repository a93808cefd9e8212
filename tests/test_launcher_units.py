"""The native launcher's PostgreSQL rule: 15 or newer, from wherever the binaries come
(Debian's /usr/lib/postgresql/<major>/bin, JC_PG_BINDIR, pg_config). An older server is
refused with a StackError naming the binary and its version, before anything starts.

The binaries here are stand-ins: a `postgres` script that only answers --version.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from fixtures.stack import services
from fixtures.stack.backends.native import NativeStack
from fixtures.stack.info import StackError
from fixtures.stack.services import find_pg_bindir


def fake_bindir(root: Path, version: str) -> Path:
    bindir = root / version / "bin"
    bindir.mkdir(parents=True)
    script = bindir / "postgres"
    script.write_text(f"#!/bin/sh\necho 'postgres (PostgreSQL) {version}'\n")
    script.chmod(0o755)
    return bindir


def test_an_older_server_in_jc_pg_bindir_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = fake_bindir(tmp_path, "14.11")
    monkeypatch.setenv("JC_PG_BINDIR", str(old))
    with pytest.raises(StackError) as info:
        find_pg_bindir()
    message = str(info.value)
    assert f"JC_PG_BINDIR={old}" in message and "is PostgreSQL 14" in message
    assert "PostgreSQL 15 or newer" in message and "\n" not in message
    # only a caller that asks for older servers on purpose (the catalog-version test) gets it
    assert find_pg_bindir(13) == old


def test_a_new_enough_server_in_jc_pg_bindir_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    new = fake_bindir(tmp_path, "16.4")
    monkeypatch.setenv("JC_PG_BINDIR", str(new))
    assert find_pg_bindir() == new


def test_older_majors_on_the_machine_are_passed_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JC_PG_BINDIR", raising=False)
    monkeypatch.setattr(services, "PG_SEARCH_DIR", tmp_path)
    for major in ("13", "14", "15", "17"):
        (tmp_path / major / "bin").mkdir(parents=True)
        (tmp_path / major / "bin" / "postgres").write_text("")
    assert find_pg_bindir() == tmp_path / "17" / "bin"
    for major in ("15", "17"):
        (tmp_path / major / "bin" / "postgres").unlink()
    # only 13 and 14 left, and no pg_config on PATH: refused, naming the rule
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(StackError, match=r"no PostgreSQL 15\+ server binaries found"):
        find_pg_bindir()


def test_an_older_server_from_pg_config_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JC_PG_BINDIR", raising=False)
    monkeypatch.setattr(services, "PG_SEARCH_DIR", tmp_path / "none")
    old = fake_bindir(tmp_path, "12.18")
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "pg_config").write_text(f"#!/bin/sh\necho '{old}'\n")
    (tools / "pg_config").chmod(0o755)
    monkeypatch.setenv("PATH", str(tools))
    with pytest.raises(StackError, match=r"pg_config --bindir: .* is PostgreSQL 12; the local stack needs PostgreSQL 15"):
        find_pg_bindir()


def test_the_stack_refuses_to_start_on_an_older_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JC_PG_BINDIR", str(fake_bindir(tmp_path, "14.11")))
    run_id = "pg-too-old-unit"
    stack = NativeStack(run_id=run_id, environment="local", project_ref="localjuliaref0000000")
    with pytest.raises(StackError, match="is PostgreSQL 14"):
        stack.start()
    assert stack.executors == {} and stack.tmpdir is None
    assert list(Path(tempfile.gettempdir()).glob(f"jc-stack-{run_id}-*")) == []
