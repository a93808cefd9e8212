"""JC-SEC-01 judges what the row-level security policies allow (issue 16, point 4).

A table with RLS on is only as private as its policies: a permissive policy for an API role
whose USING / WITH CHECK is always true hands that role every row. The pure parts — the
constancy of a policy expression, what a set of policies allows a role — are proven here
without a server; the faults are injected into both stacks (the reference stack in the
runbook's dialect, the deployment's twin in its own) and every finding is proven against the
role itself: a session that becomes ``anon`` or ``authenticated`` (SET ROLE, as PostgREST
does) counts the rows it can read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest

from fixtures.probes import security as ps
from fixtures.stack.backends.native import NativeStack
from plugins.contract.runbook import load_runbook
from plugins.contract.security import parse
from plugins.contract.toml_schema import ConfigError
from tests.area_helpers import ROOT, area, clean_app_repo
from tests.test_dialect_deployment import Deployed, deployed, not_passed, variant_template
from tests.test_security_units import TODAY, shipped

SEC = ("checks/test_security.py",)
OPERATOR_CLAIMS = json.dumps({"role": "authenticated", "app_metadata": {"papel": "operador"}})


# --- always true: read with PostgreSQL's parser, evaluated on constants -----------------------


@pytest.mark.parametrize("expression", [
    "true", "(1 = 1)", "'t'::boolean", "(NOT false)", "(true AND (NOT false))", "(COALESCE(a, true) OR true)",
    "((x IS NULL) OR true)", "(1 = ANY (ARRAY[1, 2]))", "(2 <> ALL (ARRAY[1, 3]))", "((1 >= 0) AND (1 <= 2))",
    "(true IS NOT FALSE)", "(NULLIF(1, 2) = 1)", "((1)::numeric = 1.0)", "('a'::text = 'a'::text)",
    "(1 OPERATOR(pg_catalog.=) 1)", "\nCASE\n    WHEN a THEN true\n    ELSE true\nEND", "((1 + 1) = 2)",
    "'yes'::boolean", "(NULL::boolean IS NOT TRUE)",
])
def test_constant_true_expressions(expression: str) -> None:
    """The forms pg_get_expr prints for `true`, `1 = 1`, `1 IN (1, 2)`, `'t'`, a CASE whose
    every branch is true, `x OR true` (true whatever x is)…"""
    assert ps.always_true(expression)


@pytest.mark.parametrize("expression", [
    None, "false", "(1 = 2)", "NULL::boolean", "(cliente_id = 42)", "((x = 1) AND true)",
    "(auth.role() = 'service_role'::text)", "(auth.uid() IS NOT NULL)",
    "(((current_setting('request.jwt.claims'::text, true))::jsonb -> 'app_metadata'::text) ->> 'papel'::text)"
    " = 'operador'::text", "(EXISTS ( SELECT 1 FROM operadores))", "(x = ANY (ARRAY[1]))", "'maybe'::boolean",
    "('b'::text > 'a'::text)", "(1 = 1", "1", "(x OPERATOR(myschema.=) x)",
])
def test_not_constant_true(expression: str | None) -> None:
    """A column, a function (auth.role(), current_setting), a subquery, a user's operator,
    a collation-dependent comparison, what does not parse — and an absent expression, which
    PostgreSQL reads as admitting no row."""
    assert not ps.always_true(expression)


# --- what the policies allow, per role and command --------------------------------------------

ROLES = ("anon", "authenticated")
ALL_PRIVILEGES = frozenset(ps.COMMANDS)


def policy(name: str, command: str = "SELECT", using: str | None = "true", check: str | None = None, *,
           to: tuple[str, ...] = ("anon",), permissive: bool = True) -> ps.Policy:
    applies = ROLES if "PUBLIC" in to else tuple(r for r in ROLES if r in to)
    return ps.Policy(name, command, permissive, to, using, check, applies)


def table(*policies: ps.Policy, privileges: dict[str, frozenset[str]] | None = None,
          rls: bool = True) -> ps.TablePolicies:
    granted = privileges if privileges is not None else dict.fromkeys(ROLES, ALL_PRIVILEGES)
    return ps.TablePolicies("public", "clientes", rls, policies, tuple(granted.items()))


def judged(t: ps.TablePolicies, *, public: bool = False) -> set[tuple[str, str, str, bool]]:
    return {(a.role, a.command, a.policy.name, a.effective) for a in ps.open_access(t, ROLES, public=public)}


def test_an_always_true_read_policy_opens_the_table_to_its_role_only() -> None:
    assert judged(table(policy("p", using="(1 = 1)"))) == {("anon", "SELECT", "p", True)}


def test_public_and_all_open_every_command_for_every_api_role() -> None:
    assert judged(table(policy("p", "ALL", to=("PUBLIC",)))) == {
        (r, c, "p", True) for r in ROLES for c in ps.COMMANDS}


def test_all_without_with_check_checks_new_rows_with_using() -> None:
    """An ALL / UPDATE policy with USING only applies USING to new rows too (PostgreSQL)."""
    assert {c for _r, c, _p, _e in judged(table(policy("p", "ALL", using="true")))} == set(ps.COMMANDS)
    assert judged(table(policy("p", "UPDATE", using="true", check="(owner = auth.uid())"))) == set()


def test_update_needs_every_row_reachable() -> None:
    assert judged(table(policy("p", "UPDATE", using="(owner = auth.uid())", check="true"))) == set()


def test_insert_reads_with_check() -> None:
    assert judged(table(policy("p", "INSERT", using=None, check="true"))) == {("anon", "INSERT", "p", True)}


def test_no_expression_admits_nothing() -> None:
    assert judged(table(policy("p", "SELECT", using=None), policy("q", "INSERT", using=None))) == set()


def test_a_restrictive_policy_narrows_and_one_without_expression_does_not() -> None:
    scoped = policy("r", using="(cliente_id = 1)", permissive=False)
    assert judged(table(policy("p"), scoped)) == set()
    assert judged(table(policy("p"), policy("r", using=None, permissive=False))) == {("anon", "SELECT", "p", True)}
    assert judged(table(policy("p"), policy("r", using="true", permissive=False))) == {("anon", "SELECT", "p", True)}


def test_without_the_privilege_the_policy_is_latent() -> None:
    assert judged(table(policy("p", "ALL", to=("authenticated",)),
                        privileges={"authenticated": frozenset({"SELECT"})})) == {
        ("authenticated", "SELECT", "p", True), ("authenticated", "INSERT", "p", False),
        ("authenticated", "UPDATE", "p", False), ("authenticated", "DELETE", "p", False)}


def test_published_reference_data_may_be_read_not_written() -> None:
    t = table(policy("p", "ALL", to=("authenticated",)))
    assert {c for _r, c, _p, _e in judged(t, public=True)} == {"INSERT", "UPDATE", "DELETE"}


def test_a_table_without_rls_is_the_other_finding() -> None:
    assert judged(table(policy("p"), rls=False)) == set()


def test_the_clause_reads_like_create_policy() -> None:
    assert policy("p", "ALL", "(1 = 1)", "true", to=("PUBLIC",)).clause() == \
        "FOR ALL TO PUBLIC USING (1 = 1) WITH CHECK (true)"
    assert replace(policy("p"), permissive=False, using="\nCASE\n  WHEN a THEN true\nEND").clause() == \
        "AS RESTRICTIVE FOR SELECT TO anon USING (CASE WHEN a THEN true END)"
    assert policy("p", using="((a = 1) AND (b = 2))").clause().endswith("USING ((a = 1) AND (b = 2))")


# --- the contract: which tables are published reference data ----------------------------------


def test_public_tables_in_both_dialects() -> None:
    assert load_runbook(ROOT / "runbook.toml").section("security").public_tables == ()
    deployment = load_runbook(ROOT / "runbook.toml", "deployment").section("security")
    assert deployment.public_tables == ("especialidades", "formas_recebimento", "hospitais", "periodos",
                                        "setores", "tipos_vaga")
    assert deployment.is_public("public", "hospitais") and not deployment.is_public("public", "clientes")


@pytest.mark.parametrize(("value", "message"), [
    ("hospitais", "security.public_tables: must be"),
    (["hospitais", "hospitais"], "security.public_tables: a name is listed twice"),
    ([""], "security.public_tables[0]: must be a non-empty string"),
    (["a.b.c"], "security.public_tables[0]: a table or schema.table"),
])
def test_bad_public_tables_name_the_key(value: Any, message: str) -> None:
    data = shipped()
    data["public_tables"] = value
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        parse(ROOT / "runbook.toml", data, today=TODAY)


# --- proven against the role ------------------------------------------------------------------


@contextmanager
def as_role(database_url: str, role: str, claims: str | None = None) -> Iterator[psycopg.Connection[Any]]:
    """A session that is ``role`` (SET ROLE, as PostgREST switches to the request's role), with
    the request's JWT claims when given; rolled back."""
    with psycopg.connect(database_url) as conn:
        conn.execute(f"SET ROLE {role}")  # type: ignore[arg-type]
        if claims is not None:
            conn.execute("SELECT set_config('request.jwt.claims', %s, true)", (claims,))
        yield conn
        conn.rollback()


def rows_as(database_url: str, role: str, table_name: str, claims: str | None = None) -> int | str:
    """How many rows ``role`` reads from the table, or the SQLSTATE that refused it."""
    with as_role(database_url, role, claims) as conn:
        try:
            return int(conn.execute(f"SELECT count(*) FROM {table_name}").fetchone()[0])  # type: ignore[arg-type,index]
        except psycopg.errors.InsufficientPrivilege as exc:
            return str(exc.sqlstate)


def total_rows(database_url: str, table_name: str) -> int:
    with psycopg.connect(database_url) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table_name}").fetchone()[0])  # type: ignore[arg-type,index]


PERSONAL = ("clientes", "conversations", "interacoes", "fila_mensagens", "julia_status", "job_executions",
            "health_incidents", "campanhas", "envios", "business_events", "mensagens_grupo")


def test_healthy_reference_stack_anon_reads_no_row(healthy: NativeStack, area) -> None:  # type: ignore[no-untyped-def]
    """The reference stack grants the API roles every table (Supabase's default) and keeps
    the rows with RLS: anon reads none, a signed-in user none, an operator (the claim its
    policies ask for) the operational state — and JC-SEC-01 passes with no warning."""
    assert healthy.info is not None
    url = healthy.info.database_url
    for name in PERSONAL:
        assert total_rows(url, name) > 0, name
        assert rows_as(url, "anon", name) == 0, name
        assert rows_as(url, "authenticated", name) == 0, name
    assert rows_as(url, "authenticated", "julia_status", OPERATOR_CLAIMS) == total_rows(url, "julia_status")
    assert rows_as(url, "authenticated", "clientes", OPERATOR_CLAIMS) == 0
    run = area(paths=SEC)
    assert run.not_passed() == set(), run.output[-3000:]
    row = next(r for r in run.certificate["invariants"] if r["id"] == "JC-SEC-01")  # type: ignore[index]
    assert row.get("warnings", []) == []
    assert run.run_dir is not None
    evidence = json.loads((run.run_dir / "evidence" / "rls-policies.json").read_text())
    assert evidence["open_policies"] == [] and evidence["public_tables"] == []


def test_a_policy_that_lets_anon_read_the_doctors(healthy: NativeStack, sql, area) -> None:  # type: ignore[no-untyped-def]
    """`USING (1 = 1)` for anon on clientes: anon now reads every doctor. Beside it, what is
    no finding: a scoped policy, a restrictive one that narrows an open one, an always-true
    policy on a table anon holds no privilege on (latent: counted, not failed)."""
    assert healthy.info is not None
    url = healthy.info.database_url
    sql("CREATE POLICY leitura_anonima ON clientes FOR SELECT TO anon USING (1 = 1)")
    sql("CREATE POLICY conversa_propria ON conversations FOR SELECT TO anon USING (cliente_id = 1)")
    sql("CREATE POLICY todas ON interacoes FOR SELECT TO anon USING (true)")
    sql("CREATE POLICY so_uma ON interacoes AS RESTRICTIVE FOR SELECT TO anon USING (cliente_id = 1)")
    sql("CREATE POLICY configuracao ON app_settings FOR SELECT TO anon USING (true)")
    run = area(paths=SEC)
    assert run.exitcode == 1
    assert run.not_passed() == {"JC-SEC-01"}
    assert run.message("JC-SEC-01") == (
        "expected no policy that gives an API role every row of personal or operational data, found 1 that do "
        "(the role holds the privilege): public.clientes: policy leitura_anonima (FOR SELECT TO anon USING "
        "(1 = 1)) lets anon SELECT every row; 1 more always-true polic(ies) are latent: the role holds no "
        "privilege for the command (see the evidence)")
    # proven against the role: anon reads every doctor, and only what the scoped policies admit elsewhere
    assert rows_as(url, "anon", "clientes") == total_rows(url, "clientes") > 0
    assert rows_as(url, "anon", "interacoes") < total_rows(url, "interacoes")
    assert rows_as(url, "anon", "app_settings") == "42501"


def test_a_policy_for_public_opens_every_command_to_both_roles(healthy: NativeStack, sql, area) -> None:  # type: ignore[no-untyped-def]
    """A policy that names no role is PUBLIC's: anon and authenticated may read, add, change
    and delete every interaction."""
    assert healthy.info is not None
    sql("CREATE POLICY todos ON interacoes USING (true)")
    run = area(paths=SEC)
    assert run.not_passed() == {"JC-SEC-01"}
    assert run.message("JC-SEC-01").endswith(
        "found 1 that do (the role holds the privilege): public.interacoes: policy todos (FOR ALL TO PUBLIC "
        "USING (true)) lets anon SELECT, INSERT, UPDATE, DELETE and authenticated SELECT, INSERT, UPDATE, DELETE "
        "every row")
    url = healthy.info.database_url
    assert rows_as(url, "anon", "interacoes") == rows_as(url, "authenticated", "interacoes") == total_rows(
        url, "interacoes")


# --- the deployment's twin, in its own dialect --------------------------------------------------

TWIN_READ_POLICIES = ("campanhas", "conversations", "envios", "interacoes")


def test_deployment_always_true_policies_are_latent(deployed: Deployed) -> None:
    """The twin has the dump's policies (authenticated may INSERT/SELECT/UPDATE campanhas,
    conversations, envios, interacoes — always true) and its privileges (service_role only):
    no API role reaches a row, so JC-SEC-01 passes with no warning and keeps the twelve
    latent policies in its evidence."""
    for name in TWIN_READ_POLICIES:
        assert rows_as(deployed.database_url, "authenticated", name) == "42501", name
        assert rows_as(deployed.database_url, "anon", name) == "42501", name
    run = deployed.run("deployment", paths=SEC)
    assert not_passed(run) == {"JC-SEC-05": "skipped"}, run.output[-3000:]
    row = next(r for r in run.certificate["invariants"] if r["id"] == "JC-SEC-01")  # type: ignore[index]
    assert row.get("warnings", []) == []
    assert run.run_dir is not None
    evidence = json.loads((run.run_dir / "evidence" / "rls-policies.json").read_text())
    latent = {(p["table"], p["command"]) for p in evidence["open_policies"] if not p["effective"]}
    assert latent == {(f"public.{t}", c) for t in TWIN_READ_POLICIES for c in ("SELECT", "INSERT", "UPDATE")}
    assert all(p["role"] == "authenticated" for p in evidence["open_policies"])


def test_deployment_grant_to_the_api_roles_exposes_what_the_policies_allow(deployed: Deployed) -> None:
    """Supabase's default grant (every table to anon and authenticated) on the deployment:
    its always-true read policies now hand every signed-in user the conversations, the
    interactions, the sends and the campaigns — JC-SEC-01 names each — while anon, granted
    the same, still reads nothing (no policy is for it). The same grant hands the API roles
    app_settings (JC-SEC-03) and the twin's views, which run as their owner (JC-SEC-02)."""
    deployed.sql("GRANT SELECT ON ALL TABLES IN SCHEMA public TO anon, authenticated")
    run = deployed.run("deployment", paths=SEC)
    assert not_passed(run) == {"JC-SEC-01": "failed", "JC-SEC-02": "failed", "JC-SEC-03": "failed",
                               "JC-SEC-05": "skipped"}, run.output[-3000:]
    assert run.message("JC-SEC-01").startswith(
        "expected no policy that gives an API role every row of personal or operational data, found 4 that do (the "
        "role holds the privilege): public.campanhas: policy Authenticated users can read campanhas")
    msg = " ".join(run.output.split())  # the certificate keeps one line; the report the whole message
    for name in TWIN_READ_POLICIES:
        assert (f"public.{name}: policy Authenticated users can read {name} (FOR SELECT TO authenticated "
                "USING (true)) lets authenticated SELECT every row") in msg
    assert "; 8 more always-true polic(ies) are latent: the role holds no privilege for the command " \
           "(see the evidence)" in msg
    url = deployed.database_url
    for name in TWIN_READ_POLICIES:
        assert rows_as(url, "authenticated", name) == total_rows(url, name) > 0, name
        assert rows_as(url, "anon", name) == 0, name
    assert rows_as(url, "authenticated", "clientes") == 0  # the service role's policy only


def test_deployment_published_reference_data_may_be_read(deployed: Deployed) -> None:
    """A lookup table the deployment publishes (hospitais: FOR SELECT TO authenticated USING
    (true), granted) passes; the same policy on a table of doctors does not."""
    deployed.sql("CREATE TABLE hospitais (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), nome text NOT NULL,"
                 " cidade text NOT NULL, estado text NOT NULL)")
    deployed.sql("INSERT INTO hospitais (nome, cidade, estado) VALUES ('Hospital Central', 'São Paulo', 'SP')")
    deployed.sql("ALTER TABLE hospitais ENABLE ROW LEVEL SECURITY")
    deployed.sql("CREATE POLICY hospitais_select_authenticated ON hospitais FOR SELECT TO authenticated USING (true)")
    deployed.sql("GRANT SELECT ON hospitais, doctor_state TO authenticated")
    deployed.sql("CREATE POLICY leitura ON doctor_state FOR SELECT TO authenticated USING (true)")
    run = deployed.run("deployment", paths=SEC)
    assert not_passed(run) == {"JC-SEC-01": "failed", "JC-SEC-05": "skipped"}, run.output[-3000:]
    msg = run.message("JC-SEC-01")
    assert "public.doctor_state: policy leitura (FOR SELECT TO authenticated USING (true)) lets authenticated " \
           "SELECT every row" in msg and "hospitais" not in msg
    assert rows_as(deployed.database_url, "authenticated", "hospitais") == 1


def test_runbook_dialect_on_the_deployment_names_no_public_table(deployed: Deployed, tmp_path: Path) -> None:
    """In the runbook's words no table is published: the same lookup table read by every
    signed-in user is a finding there."""
    deployed.sql("CREATE TABLE hospitais (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), nome text NOT NULL)")
    deployed.sql("INSERT INTO hospitais (nome) VALUES ('Hospital Central')")
    deployed.sql("ALTER TABLE hospitais ENABLE ROW LEVEL SECURITY")
    deployed.sql("CREATE POLICY hospitais_select_authenticated ON hospitais FOR SELECT TO authenticated USING (true)")
    deployed.sql("GRANT SELECT ON hospitais TO authenticated")
    run = deployed.run(None, paths=SEC)
    assert not_passed(run).get("JC-SEC-01") == "failed", run.output[-3000:]
    assert "public.hospitais: policy hospitais_select_authenticated" in run.message("JC-SEC-01")
