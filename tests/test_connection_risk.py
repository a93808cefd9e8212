"""Issue 17 item 6: risky connections never pass silently.

Against a non-local target (a profile with ``local = false``, pointed here at the local stack's
loopback servers) a database role that can write, a database connection whose sslmode does not
demand TLS, and an http:// API URL are each a warning on the terminal and a row of the
certificate's ``connection.risks``; with ``--strict-connection`` each is a usage error: exit 4,
one line naming the profile key, no certificate.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from fixtures.stack.backends.native import NativeStack
from plugins.connection_risk import connection_markdown, static_risks, tls_of
from plugins.contract.targets import load_targets, resolve_target
from tests.conftest import LOCAL_REF, ROOT, SuiteRun, run_suite

READER, WRITER, APP = "jc_risk_reader", "jc_risk_writer", "jc_risk_app"
SYNTHETIC = ("tests/synthetic_checks/check_verdict.py",)  # JC-VERDICT-01 alone (-k holds): certified unless refused


# --- units ---------------------------------------------------------------------------------


@pytest.fixture
def no_libpq_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("PGSSLMODE", "PGHOST", "PGHOSTADDR", "PGSSLROOTCERT"):
        monkeypatch.delenv(var, raising=False)


def test_tls_is_read_as_libpq_resolves_it(no_libpq_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert tls_of("postgresql://u@db.example.com/x?sslmode=verify-full") == (
        "db.example.com", "verify-full", "in the URL")
    assert tls_of("postgresql://u@db.example.com/x") == ("db.example.com", "prefer", "libpq's default: not in the URL")
    assert tls_of("host=db.example.com hostaddr=10.0.0.5 sslmode=disable dbname=x")[1:] == ("disable", "in the URL")  # type: ignore[index]
    # a Unix socket crosses no network (and libpq ignores sslmode there)
    assert tls_of("postgresql://u@/x?host=/var/run/postgresql") is None
    assert tls_of("dbname=x") is None
    monkeypatch.setenv("PGSSLMODE", "allow")
    assert tls_of("postgresql://u@db.example.com/x") == ("db.example.com", "allow", "from PGSSLMODE")


def _target(tmp_path: Path, profile: str, env: dict[str, str]) -> Any:
    path = tmp_path / "targets.toml"
    path.write_text(profile)
    return resolve_target(path, load_targets(path), "t", environ=env)


def test_static_risks_name_the_profile_key(tmp_path: Path, no_libpq_env: None) -> None:
    head = '[targets.t]\nenvironment = "e"\nproject_ref = "r"\ndatabase_url_env = "JC_T_DB"\n'
    remote = _target(tmp_path, head + 'local = false\napi_url = "http://api.example.com"\n',
                     {"JC_T_DB": "postgresql://u:pw@db.example.com/x?sslmode=prefer"})
    risks = static_risks(remote)
    assert [(r.key, r.kind) for r in risks] == [("targets.t.database_url_env", "sslmode"), ("targets.t.api_url", "http")]
    assert "pw" not in " ".join(r.message for r in risks)
    safe = _target(tmp_path, head + 'local = false\napi_url = "https://api.example.com"\n',
                   {"JC_T_DB": "postgresql://u:pw@db.example.com/x?sslmode=require"})
    assert static_risks(safe) == []
    local = _target(tmp_path, head + 'local = true\napi_url = "http://127.0.0.1:8000"\n', {})
    assert static_risks(local) == []  # the local stack is the suite's own


def test_certificate_md_lists_the_risks() -> None:
    cert = {"connection": {"risks": [{"key": "targets.p.api_url", "kind": "http", "message": "m"}],
                           "database_role": {"name": "r", "cannot_see": [
                               {"relation": "app_settings", "sees": "none", "cause": "c"}]}}}
    assert connection_markdown(cert) == ["## Connection", "", "- **risk** `targets.p.api_url` (http): m",
                                         "- role r cannot see the rows of `app_settings`: c", ""]
    assert connection_markdown({"connection": {"risks": [], "database_role": None}}) == []


# --- real runs against loopback servers under a non-local profile -----------------------------------


@dataclass
class Roles:
    socket_url: dict[str, str]  # role -> DSN over the stack's Unix socket (no TLS question)
    tcp_url: dict[str, str]  # role -> DSN over TCP to 127.0.0.1
    api_url: str


@pytest.fixture
def roles(healthy: NativeStack) -> Iterator[Roles]:
    """A read-only role (BYPASSRLS, pg_read_all_data), one that writes through a group role
    (INSERT and UPDATE on two tables), and the stack's superuser."""
    info = healthy.info
    assert info is not None and info.tmpdir is not None
    admin, url = info.admin_url, info.database_url

    def drop() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            for role in (READER, WRITER, APP):
                if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                    conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        with psycopg.connect(admin, autocommit=True) as conn:
            for role in (READER, WRITER, APP):
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))

    drop()
    with psycopg.connect(admin, autocommit=True) as conn:
        for role in (READER, WRITER):
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN BYPASSRLS").format(sql.Identifier(role)))
            conn.execute(sql.SQL("GRANT pg_read_all_data TO {}").format(sql.Identifier(role)))
        conn.execute(f"CREATE ROLE {APP} NOLOGIN; GRANT {APP} TO {WRITER}")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"GRANT INSERT, UPDATE ON app_settings, job_executions TO {APP}")
    info_dsn = psycopg.conninfo.conninfo_to_dict(url)
    socket_dir = str(Path(info.tmpdir) / "pg")

    def dsn(user: str, **extra: str) -> str:
        return psycopg.conninfo.make_conninfo(**{**{k: str(v) for k, v in info_dsn.items() if v is not None},
                                                 "user": user, **extra})

    users = {"reader": READER, "writer": WRITER, "superuser": "postgres"}
    try:
        yield Roles({k: dsn(u, host=socket_dir) for k, u in users.items()},
                    {k: dsn(u) for k, u in users.items()}, info.api_url)
    finally:
        drop()


def _closed_https() -> str:
    """An https:// API URL nothing listens on: never asked before a refusal, and the probe
    run below does not need the API."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"https://127.0.0.1:{s.getsockname()[1]}"


# risk -> (role, how the DSN reaches it, API URL kind, the profile key, the message's start)
CASES = {
    "superuser": ("superuser", "socket", "https", "database_url_env",
                  "JC_RISKY_DB connects as role 'postgres', a superuser: it could write anything"),
    "writable-role": ("writer", "socket", "https", "database_url_env",
                      f"JC_RISKY_DB connects as role '{WRITER}', which may write 2 table(s) of public on non-local "
                      f"target 'risky': app_settings (INSERT, UPDATE via {APP}); job_executions (INSERT, UPDATE via {APP})"),
    "sslmode-disable": ("reader", "named-host:disable", "https", "database_url_env",
                        "JC_RISKY_DB reaches db.jc-risk.invalid with sslmode=disable (in the URL), not one of require, "
                        "verify-ca, verify-full"),
    "sslmode-prefer": ("reader", "named-host:", "https", "database_url_env",
                       "JC_RISKY_DB reaches db.jc-risk.invalid with sslmode=prefer (libpq's default: not in the URL)"),
    "http": ("reader", "socket", "http", "api_url", "http://127.0.0.1:"),
    "none": ("reader", "socket", "https", "", ""),
}


def _run(roles: Roles, tmp_path: Path, case: str, *args: str) -> tuple[SuiteRun, Path]:
    role, how, api, _, _ = CASES[case]
    if how == "socket":
        url = roles.socket_url[role]
    else:  # a host *name* that is not local, reached on loopback through hostaddr (no DNS asked)
        mode = how.split(":", 1)[1]
        info = psycopg.conninfo.conninfo_to_dict(roles.tcp_url[role])
        info.update(host="db.jc-risk.invalid", hostaddr="127.0.0.1", **({"sslmode": mode} if mode else {}))
        url = psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in info.items() if v is not None})
    api_url = roles.api_url if api == "http" else _closed_https()
    targets = tmp_path / "targets.toml"
    targets.write_text(
        "[targets.risky]\nlocal = false\n"
        f'api_url = "{api_url}"\nenvironment = "local"\nproject_ref = "{LOCAL_REF}"\n'
        'database_url_env = "JC_RISKY_DB"\n')
    run = run_suite("--target-file", str(targets), "--target", "risky", "-k", "holds", *args, paths=SYNTHETIC,
                    reports=tmp_path / "reports", env={"JC_RISKY_DB": url})
    return run, targets


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_risk_is_a_warning_and_a_certificate_field(roles: Roles, tmp_path: Path, case: str) -> None:
    """By default the run goes on, certified on its own merits; the risk is in the certificate
    (key, kind, message), in certificate.md and on the terminal, at the start and at the end."""
    run, _ = _run(roles, tmp_path, case)
    assert run.exitcode == 0, run.output[-3000:]
    assert run.certificate is not None and run.certificate["verdict"] == "certified"
    section = run.certificate["connection"]
    assert section["judged"] is True and section["strict"] is False and section["problem"] is None
    _, _, _, key, start = CASES[case]
    if case == "none":
        assert section["risks"] == [] and "risky connection" not in run.output
        return
    [risk] = section["risks"]
    assert (risk["key"], risk["kind"]) == (f"targets.risky.{key}", case.split("-")[0] if "sslmode" in case else case)
    assert risk["message"].startswith(start), risk["message"]
    assert run.output.count(f"julia-conformance: warning: risky connection — targets.risky.{key}: {start}") == 2
    assert run.run_dir is not None
    assert f"- **risk** `targets.risky.{key}`" in (run.run_dir / "certificate.md").read_text()
    role = section["database_role"]
    assert role["name"] == {"superuser": "postgres", "writable-role": WRITER}.get(case, READER)
    assert role["cannot_see"] == []  # BYPASSRLS (or superuser): every row
    assert bool(role["writes"]) is (case in ("superuser", "writable-role"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_strict_connection_refuses_a_risk(roles: Roles, tmp_path: Path, case: str) -> None:
    """--strict-connection: exit 4, one line naming the file and the profile key, nothing judged,
    no certificate. Without a risk it changes nothing."""
    run, targets = _run(roles, tmp_path, case, "--strict-connection")
    if case == "none":
        assert run.exitcode == 0 and run.certificate is not None, run.output[-3000:]
        assert run.certificate["connection"]["strict"] is True
        return
    _, _, _, key, start = CASES[case]
    assert run.exitcode == 4, run.output[-3000:]
    assert run.certificate is None
    lines = [ln for ln in run.output.splitlines() if "--strict-connection" in ln]
    assert len(lines) == 1, run.output[-3000:]
    assert re.match(rf"ERROR: {re.escape(str(targets))}: targets\.risky\.{key}: {re.escape(start)}", lines[0]), lines[0]
    assert lines[0].endswith("(--strict-connection)")
    assert "Traceback" not in run.output and "passed" not in run.output


def test_reports_readme_documents_the_connection_section(roles: Roles, tmp_path: Path) -> None:
    """Every field of `connection` the certificate carries, nested ones included."""
    run, _ = _run(roles, tmp_path, "writable-role")
    assert run.certificate is not None
    text = (ROOT / "reports" / "README.md").read_text()
    documented = set(re.findall(r"`([a-z_0-9-]+)`", text))
    section = run.certificate["connection"]
    keys = set(section) | {k for r in section["risks"] for k in r} | set(section["database_role"])
    assert keys - documented == set()
    # every kind of risk, and the fields of what the role cannot see
    assert {"superuser", "writable-role", "sslmode", "http", "relation", "sees", "cause"} <= documented
