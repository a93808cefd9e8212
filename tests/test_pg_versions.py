"""The suite on the PostgreSQL major it is asked for (issue 18): production runs 17.

The session stack runs JC_SELFTEST_PG's major (CI: the fault matrix on 17, the smoke on
13, 14, 16 and 18; unset: Debian's 15). On it the whole suite is certified and the
certificate says which server it judged. `--pg 17` starts a stack of its own on 17, as
`scripts/conformance --pg 17` does; an existing server of another major is refused.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import psycopg
import pytest

from fixtures.stack import pgdist
from fixtures.stack.backends.native import NativeStack
from plugins.contract.targets import load_targets
from tests.conftest import ROOT, run_suite, selftest_pg
from tests.test_lifecycle import _leftovers

LOCAL = load_targets(ROOT / "targets.toml")["local"]


def _server_version(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    assert row is not None
    return str(row[0]).split()[0]


@pytest.mark.smoke
def test_whole_suite_certified_and_the_certificate_names_the_server(healthy: NativeStack, suite) -> None:  # type: ignore[no-untyped-def]
    assert healthy.info is not None
    run = suite()
    assert run.certificate is not None, run.output[-3000:]
    assert run.not_passed() == set() and run.certificate["verdict"] == "certified", run.output[-3000:]
    version = _server_version(healthy.info.database_url)
    assert run.certificate["server_version"] == version
    if (major := selftest_pg()) is not None:
        assert version.split(".")[0] == str(major)
    assert run.run_dir is not None
    props = (run.run_dir / "allure-results" / "environment.properties").read_text().splitlines()
    assert f"server_version={version}" in props
    assert f"- PostgreSQL: {version}" in (run.run_dir / "certificate.md").read_text()


def test_pg_17_starts_a_stack_of_production_s_major(tmp_path: Path) -> None:
    """`scripts/conformance --pg 17`: its own stack, on the npm build of 17.6 (or Debian's 17)."""
    if pgdist.find(17) is None:
        pytest.fail(f"PostgreSQL 17 is not installed ({pgdist.where(17)}): run scripts/bootstrap")
    run_id = f"pg17.{os.getpid()}"
    run = run_suite("--pg", "17", "-m", "postdeploy", reports=tmp_path / "reports", env={"JC_RUN_ID": run_id})
    assert run.certificate is not None, run.output[-3000:]
    assert run.exitcode == 0 and run.certificate["verdict"] == "certified", run.output[-3000:]
    assert re.match(r"17\.\d+$", run.certificate["server_version"]), run.certificate["server_version"]
    assert re.search(r"stack: native — postgres 17\.\d+ on 127\.0\.0\.1:\d+", run.output)
    assert _leftovers("native", run_id) == {}


@pytest.mark.backends("native")
def test_an_existing_server_of_another_major_is_refused(stack: NativeStack, tmp_path: Path) -> None:
    """`--stack existing --pg N`: the operator's server is not started by the suite, so a
    choice of major is a check; another major ends the run before anything is created."""
    assert stack.info is not None
    running = _server_version(stack.info.admin_url)
    other = 17 if not running.startswith("17.") else 16
    run_id = f"pg-existing.{os.getpid()}"
    run = run_suite("--stack", "existing", "--pg", str(other), reports=tmp_path / "reports", env={
        "JC_RUN_ID": run_id,
        LOCAL["database_url_env"]: stack.info.admin_url,
        LOCAL["redis_url_env"]: stack.info.redis_url.rsplit("/", 1)[0] + "/2",
    })
    assert run.exitcode == 3, run.output[-3000:]
    assert (f"the existing database server is PostgreSQL {running}, not the {other} chosen by --pg / the "
            "profile's pg") in run.output
    with psycopg.connect(stack.info.admin_url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname LIKE 'jc_pg_existing%'").fetchone() == (0,)
    assert _leftovers("native", run_id) == {}
