"""Off the local target the suite only reads: proven against the real local database."""

from __future__ import annotations

from pathlib import Path

import psycopg

from fixtures.stack.backends.native import NativeStack
from tests.conftest import LOCAL_REF, run_suite


def test_non_local_profile_cannot_write(healthy: NativeStack, tmp_path: Path) -> None:
    info = healthy.info
    assert info is not None
    targets = tmp_path / "targets.toml"
    targets.write_text(
        "[targets.remote]\nlocal = false\n"
        f'api_url = "{info.api_url}"\nenvironment = "local"\nproject_ref = "{LOCAL_REF}"\n'
        'database_url_env = "JC_REMOTE_DB"\nredis_url_env = "JC_REMOTE_REDIS"\n'
    )
    run = run_suite(
        "--target-file", str(targets), "--target", "remote", "-rA",
        paths=("tests/synthetic_checks/check_safety.py",), reports=tmp_path / "reports",
        env={"JC_REMOTE_DB": info.database_url, "JC_REMOTE_REDIS": info.redis_url},
    )
    assert run.exitcode == 0, run.output[-3000:]
    assert "4 passed, 1 deselected" in run.output
    assert "refused 1 test(s) marked 'mutates' on target 'remote'" in run.output
    with psycopg.connect(info.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM app_settings WHERE key = 'jc_probe'").fetchone() == (0,)
