"""Security checks (JC-SEC-*), each proven to fail on its fault — and only it.

The faults are the real ones: RLS switched off on a table, a view turned back into a
security-definer view, a grant too many to anon, a secret past its rotation date, a fake
API key committed to the application's repository. No secret value may appear anywhere
the suite writes.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.stack.backends.native import NativeStack
from tests.area_helpers import AREA, ROOT, area, clean_app_repo, git, runbook_copy  # noqa: F401 - fixtures
from tests.conftest import LOCAL_REF, run_suite

SEC = ("checks/test_security.py",)
# A fake key of Anthropic's shape; detect-secrets must find it by keyword and entropy.
FAKE_KEY = "sk-ant-api03-" + "Zx9QpL2mW7vR4tYb8NcK3hJ5dF6gS1aE0uIoPzXcVbNmLkJhGfDsAq" + "-" + "Q7wE2rT9yU4iO1pA"  # pragma: allowlist secret


@pytest.mark.smoke
def test_rls_disabled_on_a_table(healthy: NativeStack, sql, area) -> None:  # type: ignore[no-untyped-def]
    sql("ALTER TABLE clientes DISABLE ROW LEVEL SECURITY")
    run = area(paths=SEC)
    assert run.exitcode == 1
    assert run.not_passed() == {"JC-SEC-01"}
    assert run.message("JC-SEC-01") == (
        "expected row-level security on every table of public, found 1 without: public.clientes")


def test_view_turned_security_definer(healthy: NativeStack, sql, area) -> None:  # type: ignore[no-untyped-def]
    sql("ALTER VIEW metricas_conversa RESET (security_invoker)")
    run = area(paths=SEC)
    assert run.not_passed() == {"JC-SEC-02"}
    msg = run.message("JC-SEC-02")
    assert "public.metricas_conversa (owner postgres: superuser; readable by anon, authenticated; " \
           "bypasses RLS of public.conversations, public.interacoes)" in msg


def test_view_owned_by_table_owner_without_force(healthy: NativeStack, sql, area) -> None:  # type: ignore[no-untyped-def]
    """Not a superuser: a role that owns the table bypasses its RLS unless it is FORCEd."""
    sql("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'jc_report_owner') THEN "
        "CREATE ROLE jc_report_owner NOLOGIN; END IF; END $$")
    sql("ALTER TABLE health_incidents OWNER TO jc_report_owner")
    sql("CREATE VIEW incidentes_abertos AS SELECT id, componente FROM health_incidents WHERE resolvido_em IS NULL")
    sql("ALTER VIEW incidentes_abertos OWNER TO jc_report_owner")
    sql("GRANT SELECT ON incidentes_abertos TO authenticated")
    run = area(paths=SEC)
    assert run.not_passed() == {"JC-SEC-02"}
    assert "public.incidentes_abertos (owner jc_report_owner: owner of the tables; readable by authenticated; " \
           "bypasses RLS of public.health_incidents)" in run.message("JC-SEC-02")
    # FORCE ROW LEVEL SECURITY puts the owner under the policies too: no longer a bypass.
    sql("ALTER TABLE health_incidents FORCE ROW LEVEL SECURITY")
    assert area(paths=SEC).not_passed() == set()


def test_definer_views_through_views_private_schemas_and_materialized(  # type: ignore[no-untyped-def]
        healthy: NativeStack, sql, area) -> None:
    """Four bypasses that a one-level look at base tables misses, in one run: a definer view
    over the (security_invoker) view metricas_conversa reads its RLS tables as the outer
    owner; a definer view publishes a table of a schema the API does not expose, which has
    no RLS; a materialized view never applies RLS, nor a definer view over one. A definer view over a catalog PUBLIC may
    read anyway is no finding, nor the table an INSTEAD rule of that view writes to."""
    sql("CREATE VIEW public.resumo AS SELECT * FROM metricas_conversa")
    sql("GRANT SELECT ON resumo TO anon")
    sql("CREATE SCHEMA interno")
    sql("CREATE TABLE interno.notas_medicas (id bigint PRIMARY KEY, cliente_id bigint, nota text)")
    sql("CREATE VIEW public.notas AS SELECT id, nota FROM interno.notas_medicas")
    sql("GRANT SELECT ON notas TO anon")
    sql("CREATE MATERIALIZED VIEW public.clientes_resumo AS SELECT id FROM clientes")
    sql("GRANT SELECT ON clientes_resumo TO authenticated")
    # a definer view hands anon a materialized view anon may not read itself
    sql("CREATE VIEW public.clientes_contagem AS SELECT count(*) AS n FROM clientes_resumo")
    sql("GRANT SELECT ON clientes_contagem TO anon")
    # not a finding: a catalog every role may read anyway (SELECT granted to PUBLIC)
    sql("CREATE VIEW public.tabelas AS SELECT relname FROM pg_catalog.pg_class")
    sql("GRANT SELECT ON tabelas TO anon")
    # not a finding either: what an INSTEAD rule writes to is not what the view reads
    sql("CREATE RULE tabelas_insert AS ON INSERT TO public.tabelas DO INSTEAD "
        "INSERT INTO interno.notas_medicas (id, nota) VALUES (1, NEW.relname::text)")
    run = area(paths=SEC)
    assert run.exitcode == 1
    assert run.not_passed() == {"JC-SEC-02"}
    assert run.message("JC-SEC-02").startswith(
        "expected no view that bypasses row-level security, found 4: "
        "public.clientes_contagem (owner postgres: superuser; readable by anon; publishes the materialized "
        "view(s) public.clientes_resumo (never RLS)); "
        "public.clientes_resumo (materialized view: never applies RLS; owner postgres; readable by authenticated); ")
    full = " ".join(run.output.split())  # the certificate keeps one line; the report the whole message
    assert ("public.notas (owner postgres: superuser; readable by anon; exposes interno.notas_medicas "
            "(no RLS, outside public)); ") in full
    assert ("public.resumo (owner postgres: superuser; readable by anon; bypasses RLS of public.conversations via "
            "public.metricas_conversa, public.interacoes via public.metricas_conversa)") in full


@pytest.mark.parametrize("grant", ["GRANT SELECT ON app_settings TO anon",
                                   "GRANT SELECT (key) ON app_settings TO PUBLIC"],
                         ids=["table-grant-to-anon", "column-grant-to-public"])
def test_settings_readable_by_anon(healthy: NativeStack, sql, area, grant: str) -> None:  # type: ignore[no-untyped-def]
    sql(grant)
    run = area(paths=SEC)
    assert run.not_passed() == {"JC-SEC-03"}
    assert run.message("JC-SEC-03").startswith("expected anon to have no SELECT on public.app_settings")


def test_skipped_where_the_api_roles_do_not_exist(healthy: NativeStack, area) -> None:  # type: ignore[no-untyped-def]
    run = area(('anon_role = "anon"', 'anon_role = "jc_no_such_role"'),
               ('api_roles = ["anon", "authenticated"]', 'api_roles = ["jc_no_such_role", "authenticated"]'),
               paths=SEC)
    outcomes = run.outcomes()
    assert {i: outcomes[i] for i in ("JC-SEC-01", "JC-SEC-02", "JC-SEC-03")} == dict.fromkeys(
        ("JC-SEC-01", "JC-SEC-02", "JC-SEC-03"), "skipped")
    assert run.not_passed() == {"JC-SEC-01", "JC-SEC-02", "JC-SEC-03"}
    assert "no role 'jc_no_such_role' on this server" in run.message("JC-SEC-01")


def test_secret_past_its_rotation_date(healthy: NativeStack, area) -> None:  # type: ignore[no-untyped-def]
    today = dt.datetime.now(dt.UTC).date()
    old = today - dt.timedelta(days=200)
    run = area((f'secret = "ANTHROPIC_API_KEY"\ninterval_days = 90\nlast_rotated = {today.isoformat()}',
                f'secret = "ANTHROPIC_API_KEY"\ninterval_days = 90\nlast_rotated = {old.isoformat()}'),
               paths=SEC)
    assert run.not_passed() == {"JC-SEC-04"}
    due = old + dt.timedelta(days=90)
    assert run.message("JC-SEC-04") == (
        f"expected every secret rotated within its interval (today {today.isoformat()}), found 1 overdue: "
        f"ANTHROPIC_API_KEY last rotated {old.isoformat()}, every 90 days → due {due.isoformat()} "
        f"({(today - due).days} days overdue)")


@pytest.mark.parametrize("where", ["committed-code", "ignored-env-file", "deleted-but-in-history"])
def test_fake_api_key_in_app_repository(healthy: NativeStack, area, tmp_path: Path, where: str) -> None:  # type: ignore[no-untyped-def]
    repo = tmp_path / "scratch"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "main.py").write_text("import os\n\nDEBUG = False\n")
    if where == "ignored-env-file":
        (repo / ".gitignore").write_text(".env\n")
        (repo / ".env").write_text(f"APP_ENV=production\nANTHROPIC_API_KEY={FAKE_KEY}\n")
        expected = ".env:2"
    else:
        (repo / "settings.py").write_text(f'import os\nANTHROPIC_API_KEY = "{FAKE_KEY}"\n')
        expected = "settings.py:2"
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "wip")
    if where == "deleted-but-in-history":
        # "fixed" by the next commit: the key is still in the repository's history
        leaked = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
        (repo / "settings.py").write_text("import os\nANTHROPIC_API_KEY = os.environ['ANTHROPIC_API_KEY']\n")
        git(repo, "commit", "-qam", "read the key from the environment")
        expected = f"settings.py:2 in commit {leaked[:12]} (history)"
    run = area(paths=SEC, app_repo=repo)
    assert run.not_passed() == {"JC-SEC-05"}
    msg = run.message("JC-SEC-05")
    # grouped by path class (runbook.toml security.secret_scan.path_classes): a .env file is config
    cls = "config" if where == "ignored-env-file" else "code"
    assert f"found 1 secret-looking value(s) (values not shown) — {cls} (1): {expected} (" in msg
    # never the value: not in the output, the certificate, nor any file of the run
    assert FAKE_KEY not in run.output and FAKE_KEY[:20] not in run.output
    assert run.run_dir is not None
    for path in run.run_dir.rglob("*"):
        if path.is_file():
            assert FAKE_KEY[:20] not in path.read_text(errors="replace"), path


def test_local_profile_scans_the_reference_app_by_default(healthy: NativeStack, area) -> None:  # type: ignore[no-untyped-def]
    run = area(paths=SEC, app_repo=None)
    assert run.not_passed() == set(), run.output[-3000:]


def test_read_only_remote_profile_without_app_repo(healthy: NativeStack, tmp_path: Path) -> None:
    """As against production: a non-local profile, every transaction READ ONLY. Every
    maintenance and security check still decides; only the scan, with no checkout named, is
    skipped."""
    info = healthy.info
    assert info is not None
    targets = tmp_path / "targets.toml"
    targets.write_text(
        "[targets.remote]\nlocal = false\n"
        f'api_url = "{info.api_url}"\nenvironment = "local"\nproject_ref = "{LOCAL_REF}"\n'
        'database_url_env = "JC_REMOTE_DB"\n'
    )
    run = run_suite(
        "--target-file", str(targets), "--target", "remote", "--runbook", str(runbook_copy(tmp_path)),
        paths=AREA, reports=tmp_path / "reports", env={"JC_REMOTE_DB": info.database_url},
    )
    assert run.outcomes()["JC-SEC-05"] == "skipped"
    assert run.not_passed() == {"JC-SEC-05"}, run.output[-3000:]
    assert "no --app-repo given" in run.message("JC-SEC-05")


@pytest.mark.parametrize("how", ["option", "profile"])
def test_app_repo_not_a_directory_is_a_usage_error(tmp_path: Path, how: str) -> None:
    nowhere = tmp_path / "nowhere"
    targets = tmp_path / "targets.toml"
    targets.write_text(
        '[targets.local]\nlocal = true\nenvironment = "local"\nproject_ref = "localjuliaref0000000"\n'
        f'database_url_env = "JC_LOCAL_DATABASE_URL"\napp_repo = "{nowhere}"\n'
    )
    args = ("--app-repo", str(nowhere)) if how == "option" else ("--target-file", str(targets))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *SEC, "-q", "-p", "no:cacheprovider",
         "--reports-dir", str(tmp_path / "reports"), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env=dict(os.environ),
    )
    assert proc.returncode == 4, proc.stdout + proc.stderr
    expected = f"--app-repo {nowhere}" if how == "option" else f"{targets}: targets.local.app_repo"
    assert f"ERROR: {expected}: not a directory" in proc.stderr
    assert not (tmp_path / "reports").exists()
