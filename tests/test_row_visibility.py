"""Issue 17 item 2: rows hidden by row-level security are never read as production faults.

A read-only role without BYPASSRLS reads an RLS table as empty. The run asks the catalog once
which relations its role cannot fully see (fixtures/probes/role.py) and refuses every statement
over them (fixtures/row_gate.py): the checks that need those rows are `error` naming role,
relation and cause, none fails, and no remedy that writes is printed. The README's recipes for
the role are run as printed, and the nightly run as that role is certified.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from fixtures.clients import Database
from fixtures.probes.role import Blind, Policy, RowSight, _judge, role_writes, row_sight
from fixtures.row_gate import HiddenRows, RowGate, relations_read
from fixtures.stack.backends.native import NativeStack
from fixtures.stack.refapp.config import MIGRATIONS_DIR
from plugins.contract.redaction import Redactor
from plugins.contract.runbook import load_runbook
from tests.conftest import LOCAL_REF, ROOT, SuiteRun, run_suite
from tests.test_dialect_deployment import (
    Deployed,
    _app_checkout,
    deployed,
    not_passed,
    railway_for_the_twin,
    variant_template,
)

NO_POLICY = "RLS is on and the role has no BYPASSRLS and no policy"
# Skipped in any non-local run here that is not given them: no schema baseline, no Railway
# token, no app checkout.
SKIPPED = {"JC-SCHEMA-03": "skipped", "JC-SCHED-04": "skipped", "JC-SEC-05": "skipped"}


# --- units ---------------------------------------------------------------------------------


def test_relations_read_names_what_a_statement_reads() -> None:
    assert relations_read('SELECT key, value FROM "public"."app_settings" WHERE key = ANY(%s)') == {
        ("public", "app_settings")}
    # a CTE is no relation; psycopg's named placeholders and escaped percent are read too
    assert relations_read("WITH RECURSIVE names AS (SELECT 1) SELECT * FROM names n "
                          "JOIN job_executions e ON e.job = %(job)s WHERE e.x LIKE 'a%%'") == {(None, "job_executions")}
    assert relations_read('SELECT 1 FROM x."Odd ""name""" o, pg_catalog.pg_class c') == {
        ("x", 'Odd "name"'), ("pg_catalog", "pg_class")}
    # LIMIT 0 reads no row (JC-SCHEMA-02's proof that a view answers)
    assert relations_read('SELECT * FROM "public"."metricas_conversa" LIMIT 0') == frozenset()
    assert relations_read("this is not SQL") is None


def _sight(**blind: str) -> RowSight:
    return RowSight("jc_reader", False, False, ("public",),
                    {("public", name): Blind("public", name, "none", cause) for name, cause in blind.items()})


def test_gate_refuses_statements_over_hidden_rows_with_the_cause() -> None:
    loads: list[int] = []

    def load() -> RowSight:
        loads.append(1)
        return _sight(app_settings=NO_POLICY, julia_status=NO_POLICY)

    gate = RowGate(load)
    gate("SELECT c.relname FROM pg_catalog.pg_class c")  # the catalog has no row-level security
    gate("SELECT 1 FROM public.clientes")  # visible
    with pytest.raises(HiddenRows) as raised:
        gate('SELECT key, value FROM "public"."app_settings" WHERE key = ANY(%s)')
    assert raised.value.message == f"role jc_reader cannot see rows of app_settings: {NO_POLICY}"
    remedy = raised.value.remedy or ""
    assert "BYPASSRLS" in remedy and "INSERT" not in remedy and "UPDATE" not in remedy
    with pytest.raises(HiddenRows) as both:
        gate("SELECT * FROM julia_status s JOIN app_settings a ON true")
    assert both.value.message.count(NO_POLICY) == 2 and "; nor of " in both.value.message
    assert loads == [1]  # asked once per run


def test_what_each_policy_shape_lets_a_role_see() -> None:
    true, cond = Policy("all", True, "true"), Policy("mine", True, "(owner = CURRENT_USER)")
    assert _judge([], who="the role", owns_forced=False) == ("none", NO_POLICY)
    assert _judge([true], who="the role", owns_forced=False) is None
    assert _judge([cond], who="the role", owns_forced=False)[0] == "some"  # type: ignore[index]
    narrowed = _judge([true, Policy("r", False, "(x > 0)")], who="the role", owns_forced=False)
    assert narrowed is not None and narrowed[0] == "some" and 'restrictive policy "r"' in narrowed[1]
    assert _judge([true, Policy("r", False, "true")], who="the role", owns_forced=False) is None
    forced = _judge([], who="the role", owns_forced=True)
    assert forced is not None and "FORCE ROW LEVEL SECURITY" in forced[1]


# --- the catalog's answer, proven as the role -------------------------------------------------

SIGHT_DB = "jc_sight"
READER, GROUP, OTHER = "jc_sight_reader", "jc_sight_group", "jc_sight_other"


def _url(url: str, **changes: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(url)
    info.update(changes)
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in info.items() if v is not None})


def _drop_roles(admin: str, *roles: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        for role in roles:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_row_sight_matches_what_the_role_reads(healthy: NativeStack) -> None:
    """Every rule of rowsecurity.c the probe models — RLS off, no policy, a policy TO PUBLIC,
    one through a group role, one for another role, an INSERT-only one, a condition, a
    restrictive narrowing, ownership, FORCE, views as their owner or as the caller — checked
    against the rows the role really reads: what it calls visible reads every row, `none` reads
    none, `some` reads fewer."""
    assert healthy.info is not None
    admin = healthy.info.admin_url
    db_url = _url(admin, dbname=SIGHT_DB)
    _drop_roles(admin, READER, GROUP, OTHER)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {SIGHT_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {SIGHT_DB}")
        conn.execute(f"CREATE ROLE {READER} LOGIN; CREATE ROLE {GROUP} NOLOGIN; CREATE ROLE {OTHER} NOLOGIN;"
                     f" GRANT {GROUP} TO {READER}")
        invoker = conn.info.server_version >= 150000
    tables = {  # name -> (statements after CREATE TABLE and ENABLE RLS, what the role sees)
        "open_t": ("ALTER TABLE open_t DISABLE ROW LEVEL SECURITY", "all"),
        "hidden_t": ("", "none"),
        "public_pol": ("CREATE POLICY p ON public_pol FOR SELECT USING (true)", "all"),
        "member_pol": (f"CREATE POLICY p ON member_pol TO {GROUP} USING (true)", "all"),
        "other_pol": (f"CREATE POLICY p ON other_pol FOR SELECT TO {OTHER} USING (true)", "none"),
        "insert_pol": ("CREATE POLICY p ON insert_pol FOR INSERT WITH CHECK (true)", "none"),
        "cond_pol": ("CREATE POLICY p ON cond_pol FOR SELECT USING (x > 0)", "some"),
        "narrowed": ("CREATE POLICY p ON narrowed FOR SELECT USING (true);"
                     " CREATE POLICY r ON narrowed AS RESTRICTIVE FOR SELECT USING (x > 0)", "some"),
        "owned": (f"ALTER TABLE owned OWNER TO {READER}", "all"),
        "owned_forced": (f"ALTER TABLE owned_forced OWNER TO {READER}; ALTER TABLE owned_forced FORCE ROW LEVEL SECURITY",
                         "none"),
        "group_owned": (f"ALTER TABLE group_owned OWNER TO {GROUP}", "all"),
    }
    views = {"v_owner": "all", "v_of_other": "none", **({"v_invoker": "none"} if invoker else {})}
    try:
        with psycopg.connect(db_url, autocommit=True) as conn:
            for name, (extra, _) in tables.items():
                conn.execute(f"CREATE TABLE {name} (x int); INSERT INTO {name} VALUES (-1), (1), (2);"
                             f" ALTER TABLE {name} ENABLE ROW LEVEL SECURITY")
                if extra:
                    conn.execute(extra)  # type: ignore[arg-type]
            conn.execute("CREATE VIEW v_owner AS SELECT * FROM hidden_t")  # runs as postgres: bypasses RLS
            conn.execute(f"CREATE VIEW v_of_other AS SELECT * FROM hidden_t; ALTER VIEW v_of_other OWNER TO {OTHER}")
            conn.execute(f"GRANT SELECT ON hidden_t TO {OTHER}")
            if invoker:
                conn.execute("CREATE VIEW v_invoker WITH (security_invoker = true) AS SELECT * FROM hidden_t")
            conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {READER};"
                         f" GRANT INSERT ON open_t TO {GROUP}; GRANT UPDATE (x) ON hidden_t TO {READER}")
        reader = Database(_url(db_url, user=READER), load_runbook(ROOT / "runbook.toml").db_session, Redactor(),
                          read_only=True)
        try:
            sight = row_sight(reader)
            writes = role_writes(reader, "public")
            counted = {name: reader.query(f"SELECT count(*) AS n FROM {name}")[0]["n"] for name in [*tables, *views]}
        finally:
            reader.close()
        expected = {name: seen for name, (_, seen) in tables.items()} | views
        said = {name: (sight.blind[("public", name)].sees if ("public", name) in sight.blind else "all")
                for name in expected}
        assert said == expected
        # as the role: every row (3), none, or fewer
        assert {n: {3: "all", 0: "none"}.get(c, "some") for n, c in counted.items()} == expected
        assert sight.blind[("public", "hidden_t")].cause == NO_POLICY
        assert sight.blind[("public", "v_of_other")].cause == (
            f"it reads public.hidden_t as {OTHER} (the view's owner), where RLS is on and role {OTHER} has no "
            "BYPASSRLS and no policy")
        assert 'only policy "p" (USING (x > 0)) applies to the role' in sight.blind[("public", "cond_pol")].cause
        assert not sight.superuser and not sight.bypassrls
        # what it may write: its own column privilege, a group's grant, the tables it (or its group) owns
        described = {w.table: w.describe() for w in writes.tables}
        assert described["hidden_t"] == "hidden_t (UPDATE)"
        assert described["open_t"] == f"open_t (INSERT via {GROUP})"
        assert described["owned"] == "owned (INSERT, UPDATE, DELETE, TRUNCATE)"
        assert described["group_owned"] == f"group_owned (INSERT, UPDATE, DELETE, TRUNCATE via {GROUP})"
        assert "public_pol" not in described and not writes.superuser
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {SIGHT_DB} WITH (FORCE)")
        _drop_roles(admin, READER, GROUP, OTHER)


# --- whole runs as a role that cannot see the rows ------------------------------------------------

PLAIN = "jc_plain_reader"
GRANTS = {
    "select-grants": "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}",
    "pg_read_all_data": "GRANT pg_read_all_data, pg_monitor TO {role}",
}


@contextmanager
def plain_reader(admin_url: str, database_url: str, grants: str) -> Iterator[str]:
    """A login role without BYPASSRLS, read-only by its grants: its DSN on ``database_url``."""
    _drop_roles(admin_url, PLAIN)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {PLAIN} LOGIN PASSWORD 'plain-reader-pw'")  # type: ignore[arg-type]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(grants.format(role=PLAIN))  # type: ignore[arg-type]
    try:
        yield _url(database_url, user=PLAIN, password="plain-reader-pw")
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {PLAIN}")  # type: ignore[arg-type]
        _drop_roles(admin_url, PLAIN)


def _needs_predefined_roles(admin_url: str, what: str) -> None:
    """pg_read_all_data came with PostgreSQL 14 (README: on 13, grant by schema)."""
    with psycopg.connect(admin_url) as conn:
        if "pg_read_all_data" in what and conn.info.server_version < 140000:
            pytest.skip("PostgreSQL 13 has no pg_read_all_data")


def _no_write_remedy(run: SuiteRun) -> None:
    """Nothing the run printed or wrote about the checks it could not decide tells anyone to write."""
    assert run.certificate is not None and run.run_dir is not None
    erred = [r for r in run.certificate["invariants"] if r["outcome"] == "error" and "cannot see" in r["message"]]
    assert erred
    for row in erred:
        assert "INSERT" not in row["remedy"] and "BYPASSRLS" in row["remedy"], row
    write = re.compile(r"\b(INSERT INTO|UPDATE \w+ SET|DELETE FROM)\b")
    assert not write.search(run.output), write.search(run.output)
    md = (run.run_dir / "certificate.md").read_text()
    blockers = md.split("## Blockers", 1)[1].split("\n## ", 1)[0]
    assert not write.search(blockers)


# The runbook dialect on the reference stack, as the report found it: the checks whose
# evidence lies in app_settings, _migrations, julia_status, job_executions or fila_mensagens.
REFERENCE_HIDDEN = {
    "JC-GUARD-01": "app_settings", "JC-GUARD-02": "app_settings", "JC-GUARD-04": "app_settings",
    "JC-GUARD-05": "app_settings", "JC-HEALTH-04": "app_settings", "JC-MIG-01": "_migrations",
    "JC-MIG-03": "app_settings", "JC-MIG-04": "_migrations", "JC-MIG-05": "_migrations", "JC-MIG-06": "_migrations",
    "JC-PAUSE-01": "julia_status", "JC-PAUSE-02": "fila_mensagens", "JC-QUEUE-01": "fila_mensagens",
    "JC-SCHED-01": "job_executions", "JC-SCHED-03": "job_executions", "JC-JOBS-01": "job_executions",
    "JC-JOBS-02": "job_executions", "JC-MAINT-07": "job_executions", "JC-DRIFT-01": "_migrations",
}


@pytest.mark.parametrize("grants", sorted(GRANTS))
def test_hidden_rows_are_undecidable_never_violations(healthy: NativeStack, tmp_path: Path, grants: str) -> None:
    """The nightly run, read-only against the reference stack (RLS on every table) as a role
    with only SELECT grants, or pg_read_all_data + pg_monitor: no invariant fails; exactly the
    checks reading hidden rows are `error`, naming the role, the relation and the cause; the
    remedies give the role sight."""
    info = healthy.info
    assert info is not None
    _needs_predefined_roles(info.admin_url, grants)
    targets = tmp_path / "targets.toml"
    targets.write_text(
        "[targets.remote]\nlocal = false\n"
        f'api_url = "{info.api_url}"\nenvironment = "local"\nproject_ref = "{LOCAL_REF}"\n'
        'database_url_env = "JC_REMOTE_DB"\nredis_url_env = "JC_REMOTE_REDIS"\n'
        f'migrations_dir = "{MIGRATIONS_DIR}"\njudge_secret_rotation = false\n')
    with plain_reader(info.admin_url, info.database_url, GRANTS[grants]) as url:
        run = run_suite("--target-file", str(targets), "--target", "remote", "-m", "nightly",
                        reports=tmp_path / "reports", env={"JC_REMOTE_DB": url, "JC_REMOTE_REDIS": info.redis_url})
    assert run.outcomes() and {i: o for i, o in run.outcomes().items() if o != "passed"} == {
        **{i: "error" for i in REFERENCE_HIDDEN}, **SKIPPED}, run.output[-4000:]
    for inv, table in REFERENCE_HIDDEN.items():
        assert f"role {PLAIN} cannot see rows of {table}: {NO_POLICY}" in run.message(inv), (inv, run.message(inv))
    _no_write_remedy(run)
    assert run.certificate is not None
    role = run.certificate["connection"]["database_role"]
    assert role["name"] == PLAIN and role["bypassrls"] is False and role["writes"] == []
    assert {b["relation"] for b in role["cannot_see"]} >= set(REFERENCE_HIDDEN.values())
    assert f"julia-conformance: warning: role {PLAIN} cannot see every row of" in run.output


def test_hidden_rows_on_the_deployment_twin(deployed: Deployed, healthy: NativeStack) -> None:
    """The deployment's own schema (RLS everywhere; app_settings behind a PUBLIC policy whose
    condition is the JWT's role): the gate's checks that read hidden rows are `error`, naming
    the policy where one applies with a condition."""
    assert healthy.info is not None
    with plain_reader(healthy.info.admin_url, deployed.database_url, GRANTS["select-grants"]) as url:
        run = deployed.run("deployment", "-m", "postdeploy", database_url=url)
    hidden = {"JC-GUARD-01", "JC-GUARD-02", "JC-GUARD-04", "JC-GUARD-05", "JC-HEALTH-04",
              "JC-MIG-04", "JC-PAUSE-01", "JC-PAUSE-02", "JC-QUEUE-01", "JC-QUEUE-02", "JC-SCHED-02",
              "JC-SCHED-03", "JC-JOBS-01"}
    assert not_passed(run) == {**{i: "error" for i in hidden}, "JC-SCHED-04": "skipped"}, run.output[-4000:]
    assert run.message("JC-GUARD-04") == (
        f"role {PLAIN} may not see every row of app_settings: RLS is on, the role has no BYPASSRLS, and only "
        "policy \"Service role full access\" (USING (auth.role() = 'service_role'::text)) applies to the role: its "
        "condition decides which rows it sees")
    assert run.message("JC-SCHED-03") == f"role {PLAIN} cannot see rows of job_executions: {NO_POLICY}"
    _no_write_remedy(run)


# --- the README's recipes, run as printed ------------------------------------------------------------

RECIPES = {
    "postgresql": "-- julia-conformance read-only role\n",
    "supabase": "-- julia-conformance reader on Supabase\n",
    "policy": "-- julia-conformance reader without BYPASSRLS",
}
SUPABASE_POSTGRES = "jc_supabase_postgres"


def readme_sql(marker: str) -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    [block] = [b for b in re.findall(r"^```sql\n(.*?)^```", readme, re.S | re.M) if b.startswith(marker)]
    return block


@contextmanager
def supabase_shaped(healthy: NativeStack, database_url: str) -> Iterator[str]:
    """The twin's database as Supabase hands it over: its tables, views, sequences and schema
    owned by a `postgres`-like role — no superuser; CREATEROLE and BYPASSRLS; pg_read_all_data
    and pg_monitor without admin option (supabase/postgres migrations) — and an `extensions`
    schema. Yields that role's DSN."""
    assert healthy.info is not None
    _drop_roles(healthy.info.admin_url, SUPABASE_POSTGRES)
    with psycopg.connect(healthy.info.admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {SUPABASE_POSTGRES} LOGIN CREATEROLE BYPASSRLS;"  # type: ignore[arg-type]
                     f" GRANT pg_read_all_data, pg_monitor TO {SUPABASE_POSTGRES}")
    with psycopg.connect(database_url, autocommit=True) as conn:
        owned = conn.execute(
            "SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'S' THEN 'SEQUENCE' WHEN 'm' THEN 'MATERIALIZED VIEW'"
            " ELSE 'TABLE' END, format('%I.%I', n.nspname, c.relname) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')"
            " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('e', 'a', 'i'))"
        ).fetchall()
        for kind, name in owned:
            conn.execute(f"ALTER {kind} {name} OWNER TO {SUPABASE_POSTGRES}")  # type: ignore[arg-type]
        conn.execute(f"ALTER SCHEMA public OWNER TO {SUPABASE_POSTGRES};"  # type: ignore[arg-type]
                     f" CREATE SCHEMA IF NOT EXISTS extensions AUTHORIZATION {SUPABASE_POSTGRES}")
    try:
        yield _url(database_url, user=SUPABASE_POSTGRES)
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f"REASSIGN OWNED BY {SUPABASE_POSTGRES} TO postgres; DROP OWNED BY {SUPABASE_POSTGRES}")  # type: ignore[arg-type]
        _drop_roles(healthy.info.admin_url, SUPABASE_POSTGRES)


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_readme_recipe_role_certifies_the_nightly_run(deployed: Deployed, healthy: NativeStack, recipe: str) -> None:
    """Each README recipe, run as printed (password replaced) by whom it says — a superuser; on
    Supabase its `postgres`, played here by a role shaped like it (on PostgreSQL 16+: before 16
    only a superuser may give BYPASSRLS, which Supabase's supautils stands in for); the tables'
    owner for the policies — makes a role that cannot write, sees every row, and carries the
    whole nightly run against the deployment twin to `certified`."""
    assert healthy.info is not None
    password = "jc-" + secrets.token_hex(8)
    statement = readme_sql(RECIPES[recipe]).replace("'change-me'", f"'{password}'")
    admin = healthy.info.admin_url
    _needs_predefined_roles(admin, statement)
    _drop_roles(admin, "jc_reader")
    shaped = supabase_shaped(healthy, deployed.database_url) if recipe == "supabase" else nullcontext(None)
    with shaped as supabase:
        with psycopg.connect(admin) as conn:
            modern = conn.info.server_version >= 160000
        runner = supabase if supabase is not None and modern else deployed.database_url
        try:
            with psycopg.connect(runner, autocommit=True) as conn:
                conn.execute(statement)  # type: ignore[arg-type]
            if runner == supabase:  # what README says Supabase's postgres cannot do
                with psycopg.connect(supabase, autocommit=True) as conn, \
                        pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute("GRANT pg_read_all_data TO jc_reader")
            url = _url(deployed.database_url, user="jc_reader", password=password)
            with psycopg.connect(url, autocommit=True) as conn:
                with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                    conn.execute("UPDATE app_settings SET value = value")
                row = conn.execute("SELECT rolconnlimit FROM pg_roles WHERE rolname = current_user").fetchone()
                assert row == (3,)
            baseline = deployed.tmp_path / "schema-baseline.json"
            deployed.run("deployment", "-k", "schema_drift", "--write-schema-baseline", str(baseline))
            repo = _app_checkout(deployed.tmp_path)
            with railway_for_the_twin() as (railway, railway_env):
                run = deployed.run("deployment", "-m", "nightly", "--schema-baseline", str(baseline),
                                   profile=railway + f'app_repo = "{repo}"\n', env=railway_env, database_url=url)
            assert not_passed(run) == {}, run.output[-4000:]
            assert run.certificate is not None and run.certificate["verdict"] == "certified"
            role = run.certificate["connection"]["database_role"]
            assert role["name"] == "jc_reader" and role["writes"] == [] and role["cannot_see"] == []
            assert {r["kind"] for r in run.certificate["connection"]["risks"]} <= {"sslmode", "http"}  # loopback twin
        finally:
            with psycopg.connect(deployed.database_url, autocommit=True) as conn:
                conn.execute("DROP OWNED BY jc_reader")
            _drop_roles(admin, "jc_reader")
