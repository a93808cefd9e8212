"""Every catalog query of the maintenance and security probes, run on every supported
PostgreSQL major (13–18), read-only, as the suite runs them.

The session's stack serves its own version; every other major gets a throwaway stack of its
own (``NativeStack(pg_major=…)``: Debian's package, else the npm build package-lock.json pins,
fixtures/stack/pgdist.py). A major that is not installed is skipped, naming where it was
looked for — unless package.json pins it for this machine (linux-x64), then its absence is a
failure: scripts/bootstrap installs it. Finding no supported server at all is a failure too.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import platform
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import psycopg
import pytest

from fixtures.clients import Database
from fixtures.probes import maintenance as pm
from fixtures.probes import role as pr
from fixtures.probes import security as ps
from fixtures.stack import pgdist
from fixtures.stack.backends.native import NativeStack
from fixtures.stack.info import StackError
from fixtures.stack.launcher import new_run_id
from fixtures.stack.services import find_pg_bindir
from plugins.contract.redaction import Redactor
from plugins.contract.runbook import load_runbook
from plugins.contract.targets import PG_MAJORS
from tests.conftest import selftest_pg

ROOT = Path(__file__).resolve().parents[1]
SUPPORTED = PG_MAJORS


def pinned_majors() -> set[int]:
    """The majors package.json installs on this machine (its npm builds are linux-x64)."""
    if sys.platform != "linux" or platform.machine() != "x86_64":
        return set()
    pinned = json.loads((ROOT / "package.json").read_text()).get("optionalDependencies", {})
    return {int(name[2:]) for name in pinned if re.fullmatch(r"pg\d+", name)}


def installed_majors() -> list[int]:
    """Supported majors installed (Debian's packages, the npm builds), plus the one the stack
    itself runs by default (JC_PG_BINDIR, or pg_config's, may live elsewhere)."""
    found = {d.major for d in pgdist.installed()}
    try:
        out = subprocess.run([str(find_pg_bindir() / "postgres"), "--version"], capture_output=True, text=True,
                             timeout=10).stdout
    except (StackError, OSError, subprocess.TimeoutExpired):
        out = ""
    match = re.search(r"(\d+)\.\d+", out)
    if match and int(match.group(1)) in SUPPORTED:
        found.add(int(match.group(1)))
    return sorted(found)


# No supported server: one case that fails saying so (an empty parameter set would be a
# quiet skip, and a skip is not a proof).
NONE_FOUND = 0
INSTALLED = installed_majors()
# Under JC_SELFTEST_PG (CI's run on 17, the smoke on the others) the run is about that major:
# only its server is proven here; the default run proves all six.
MAJORS = [m for m in [selftest_pg()] if m] or (list(SUPPORTED) if INSTALLED else [NONE_FOUND])


def _major(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.info.server_version // 10000


@pytest.fixture
def database_url(request: pytest.FixtureRequest, stack: NativeStack) -> Iterator[str]:
    """The reference database on a server of the requested major version."""
    major: int = request.param
    if major == NONE_FOUND:
        pytest.fail(f"no PostgreSQL {SUPPORTED[0]}–{SUPPORTED[-1]} server found (Debian's packages, the npm "
                    "builds of package-lock.json, JC_PG_BINDIR): the catalog queries are proven on no version")
    if major not in INSTALLED:
        where = pgdist.where(major)
        if major in pinned_majors():
            pytest.fail(f"PostgreSQL {major} is pinned in package.json but not installed ({where}): "
                        "run scripts/bootstrap")
        pytest.skip(f"PostgreSQL {major} is not installed here: neither {where}")
    assert stack.info is not None
    if _major(stack.info.database_url) == major:
        yield stack.info.database_url
        return
    other = NativeStack(run_id=new_run_id(f"pg{major}"), environment="local", project_ref="localjuliaref0000000",
                        pg_major=major)
    try:
        other.start()
        assert other.info is not None
        yield other.info.database_url
    finally:
        other.stop()


def run_every_probe(db: Database, *, has_schema: bool) -> None:
    rb = load_runbook(ROOT / "runbook.toml")
    maint = rb.section("maintenance")
    sec = rb.section("security")
    schemas = [rb.schema]

    idx = pm.indexes(db, schemas)
    fks = pm.foreign_keys(db, schemas)
    tables = pm.existing_tables(db, rb.schema, [t.table for t in maint.high_volume_tables])
    names = pm.table_columns(db, rb.schema, [t.table for t in maint.high_volume_tables])
    activity = pm.table_activity(db, rb.schema, [t.table for t in maint.high_volume_tables])
    bloat = pm.bloat_estimates(db, schemas)
    usage = pm.index_usage(db, schemas)
    origin = pm.stats_origin(db)
    _taken, sizes = pm.table_sizes(db, schemas, maint.growth_top_tables)
    dated = [t for t in maint.high_volume_tables if t.time_column is not None]
    roles = ps.existing_roles(db, sec.api_roles)
    rls = ps.table_rls(db, sec.exposed_schemas)
    views = ps.views(db, sec.exposed_schemas, sorted(roles))
    readable = ps.readable_by(db, sec.anon_role, rb.schema, rb.settings_table)
    policies = ps.table_policies(db, sec.exposed_schemas, sorted(roles))
    sight, writes = pr.row_sight(db), pr.role_writes(db, rb.schema)  # issue 17: the suite's own role
    assert sight.superuser and writes.superuser and not sight.blind  # the stack's role: postgres
    assert origin.cluster_reset is not None and origin.server_started is not None  # every server records them

    if has_schema:
        composite = next(fk for fk in fks if fk.name == "mensagens_grupo_conversa_fkey")
        assert composite.columns == ("conversa_grupo_id", "grupo_id")
        assert all(pm.covering(idx, fk.table, fk.columns) for fk in fks)
        assert tables == {t.table for t in maint.high_volume_tables} == set(activity.tables) == set(names.columns)
        assert all(names.lacks(t.table, [t.time_column]) is None for t in maint.high_volume_tables if t.time_column)
        assert {e.name for e in bloat} >= {"business_events", "business_events_pkey"}
        assert {u.name for u in usage} == {i.name for i in idx}
        assert sizes and sizes[0].total_bytes >= sizes[-1].total_bytes
        assert roles == {"anon", "authenticated"} and all(t.enabled for t in rls)
        assert {v.name for v in views} == {"metricas_conversa", "avaliacoes_qualidade"}
        assert readable is False
        assert {p.table for p in policies} == {"julia_status", "job_executions", "health_incidents", "campanhas"}
        assert not any(ps.open_access(t, sorted(roles)) for t in policies)
        assert {w.table for w in writes.tables} >= {"app_settings", "_migrations"}
        assert dated
        for t in dated:
            assert t.time_column is not None
            assert pm.rows_last_day(db, rb.schema, t.table, t.time_column, 10) <= 11
    else:
        assert not (idx or fks or tables or names.columns or bloat or usage or sizes or rls or views or policies
                    or writes.tables)
        assert readable is None


@pytest.mark.parametrize("database_url", MAJORS, indirect=True, ids=lambda m: f"pg{m}" if m else "no-server")
def test_every_catalog_query_runs(database_url: str) -> None:
    rb = load_runbook(ROOT / "runbook.toml")
    db = Database(database_url, rb.db_session, Redactor(), read_only=True)
    try:
        run_every_probe(db, has_schema=True)
        facts = pm.slow_statements(db, 0.0, 1)
        assert facts.columns.mean == "mean_exec_time"  # 13+
        assert (facts.reset is not None) is (db.server_version >= 140000)  # pg_stat_statements_info, 14+
        assert all(pm.is_workload(s.query) for s in facts.slow)
    finally:
        db.close()

    # An empty database without pg_stat_statements: every probe still answers.
    info = psycopg.conninfo.conninfo_to_dict(database_url)
    admin = psycopg.conninfo.make_conninfo(**{**{k: str(v) for k, v in info.items() if v is not None}, "dbname": "postgres"})
    empty = psycopg.conninfo.make_conninfo(**{**{k: str(v) for k, v in info.items() if v is not None}, "dbname": "jc_catalog_empty"})
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS jc_catalog_empty")
        conn.execute("CREATE DATABASE jc_catalog_empty TEMPLATE template0")
    db = Database(empty, rb.db_session, Redactor(), read_only=True)
    try:
        run_every_probe(db, has_schema=False)
        with pytest.raises(pm.StatementsUnavailable, match="not installed"):
            pm.slow_statements(db, 0.0, 1)
        # no such table: JC-MAINT-07 reads the catalog first (pm.table_columns) and never runs this
        with pytest.raises(psycopg.errors.UndefinedTable):
            pm.rows_last_day(db, "public", "job_executions", "started_at", 10)
    finally:
        db.close()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("DROP DATABASE jc_catalog_empty WITH (FORCE)")


def _modules(package: ModuleType) -> list[ModuleType]:
    """A probe module, or every module of a probe package."""
    if not hasattr(package, "__path__"):
        return [package]
    return [importlib.import_module(f"{package.__name__}.{m.name}") for m in pkgutil.iter_modules(package.__path__)]


def _probes() -> set[str]:
    """Every probe function that queries a database (it takes ``db``), in every module of the
    package the run reads it through."""
    return {
        f"{prefix}.{name}"
        for prefix, package in (("pm", pm), ("ps", ps), ("pr", pr))
        for module in _modules(package)
        for name, fn in inspect.getmembers(module, inspect.isfunction)
        if fn.__module__ == module.__name__ and "db" in inspect.signature(fn).parameters
    }


def test_every_probe_is_in_the_version_run() -> None:
    """A probe added later must join the run above, or this fails naming it."""
    source = inspect.getsource(run_every_probe) + inspect.getsource(test_every_catalog_query_runs)
    called = set(re.findall(r"\b(p[msr]\.\w+)\(", source))
    assert _probes() - called == set()
    assert "pm.rows_last_day" in _probes() and "ps.views" in _probes()
