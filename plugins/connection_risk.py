"""Risky connections: said on every run against a non-local target, refused on demand.

The suite only reads a target that is not local (plugins.safety; the clients refuse writes),
but what it is handed may do more, and a certificate should say so:

- a database role that can write — a superuser, or any INSERT/UPDATE/DELETE/TRUNCATE on the
  contract's tables, its own, inherited, or of a role it may ``SET ROLE`` to (Supabase's
  ``postgres`` owns them all): a mistake or a leaked DSN writes to production;
- a database connection whose ``sslmode`` does not demand TLS (``disable``, ``allow``,
  ``prefer`` — libpq's default), over TCP: the password and the rows may cross the network in
  clear;
- an ``http://`` API URL: the app's answers, the gate's evidence, can be read or changed on the
  way.

"Non-local" is the line plugins.safety draws: a profile with ``local = false``. Each risk is a
warning on the terminal and in the certificate's ``connection`` section (reports/README.md);
``--strict-connection`` makes it a usage error instead — exit 4, one line naming the profile
key, before anything is judged (the URL and TLS risks before any connection, the role's
before any check).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

import pytest

from plugins.contract.targets import Target
from plugins.contract.verdict import Undecidable, one_line
from plugins.target import redactor, run_context

SAFE_SSLMODES = ("require", "verify-ca", "verify-full")
_REPORT = pytest.StashKey["ConnectionReport"]()
_ROLE_ADVICE = "connect as the read-only role of README \"The read-only database role\""


@dataclass(frozen=True)
class Risk:
    key: str  # the profile key it comes from, e.g. targets.prod.database_url_env
    kind: str  # superuser | writable-role | sslmode | http
    message: str


@dataclass
class ConnectionReport:
    judged: bool  # false on a local target: its own throwaway stack
    strict: bool
    risks: list[Risk] = field(default_factory=list)
    database_role: dict[str, Any] | None = None
    problem: str | None = None

    def section(self) -> dict[str, Any]:
        return {"judged": self.judged, "strict": self.strict, "risks": [asdict(r) for r in self.risks],
                "database_role": self.database_role, "problem": self.problem}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("julia-conformance", "Agente Júlia conformance")
    group.addoption("--strict-connection", dest="jc_strict_connection", action="store_true", default=False,
                    help="refuse a non-local target reached by a role that can write, without TLS to the database "
                         "(sslmode other than require/verify-ca/verify-full) or over http:// (exit 4)")


# --- what the profile says (no network) ------------------------------------------------------------


def _libpq_defaults() -> dict[str, str | None]:
    from psycopg import pq

    return {o.keyword.decode(): (o.val.decode() if o.val is not None else None) for o in pq.Conninfo.get_defaults()}


def tls_of(url: str) -> tuple[str, str, str] | None:
    """(host, sslmode, where the mode comes from) of a DSN's connection, as libpq resolves it
    (the DSN, else PGSSLMODE, else its default ``prefer``); None over a Unix socket, where
    there is no network to cross (and libpq ignores sslmode)."""
    from psycopg import conninfo, pq

    opts = conninfo.conninfo_to_dict(url)
    defaults = _libpq_defaults()
    host = str(opts.get("host") or defaults.get("host") or "")
    hostaddr = str(opts.get("hostaddr") or defaults.get("hostaddr") or "")
    hosts = [h for h in host.split(",") if h]
    if not hostaddr and (not hosts or all(h.startswith(("/", "@")) for h in hosts)):
        return None
    shown = host or hostaddr
    if opts.get("sslmode"):
        return shown, str(opts["sslmode"]), "in the URL"
    if os.environ.get("PGSSLMODE"):
        return shown, os.environ["PGSSLMODE"], "from PGSSLMODE"
    rootcert = opts.get("sslrootcert") or defaults.get("sslrootcert")
    if rootcert == "system" and pq.version() >= 160000:
        return shown, "verify-full", "implied by sslrootcert=system"
    return shown, str(defaults.get("sslmode") or "prefer"), "libpq's default: not in the URL"


def static_risks(target: Target) -> list[Risk]:
    """The risks the profile and its URLs show without connecting (non-local targets only)."""
    if target.local:
        return []
    prefix = f"targets.{target.name}"
    risks = []
    if target.database_url:
        tls = tls_of(target.database_url)
        if tls is not None and tls[1] not in SAFE_SSLMODES:
            host, mode, source = tls
            risks.append(Risk(f"{prefix}.database_url_env", "sslmode", (
                f"{target.database_url_env} reaches {host} with sslmode={mode} ({source}), not one of "
                f"{', '.join(SAFE_SSLMODES)}: the password and the rows may cross the network unencrypted "
                "— add sslmode=require (or verify-full) to the URL")))
    if target.api_url and target.api_url.lower().startswith("http://"):
        risks.append(Risk(f"{prefix}.api_url", "http", (
            f"{target.api_url} is plain http:// on non-local target '{target.name}': the app's answers, "
            "the gate's evidence, can be read or changed on the way — use https://")))
    return risks


def _refuse(target: Target, risks: list[Risk]) -> pytest.UsageError:
    first = risks[0]
    more = f"; also {', '.join(r.key for r in risks[1:])}" if len(risks) > 1 else ""
    return pytest.UsageError(f"{target.path}: {first.key}: {first.message} (--strict-connection{more})")


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    if config.option.help or getattr(config.option, "version", False) or _is_worker(config):
        return
    try:
        ctx = run_context(config)
    except pytest.UsageError:
        return
    strict = bool(config.getoption("jc_strict_connection"))
    report = ConnectionReport(judged=not ctx.target.local, strict=strict)
    report.risks = static_risks(ctx.target)
    if strict and report.risks:
        raise _refuse(ctx.target, report.risks)
    config.stash[_REPORT] = report


# --- what the database role may do (one catalog read before the checks) -------------------------


def _role_risks(target: Target, schema: str, writes: Any) -> list[Risk]:
    key, var = f"targets.{target.name}.database_url_env", target.database_url_env
    if writes.superuser:
        return [Risk(key, "superuser", (
            f"{var} connects as role '{writes.role}', a superuser: it could write anything on non-local target "
            f"'{target.name}' (the suite only reads; a mistake or a leaked URL would not) — {_ROLE_ADVICE}"))]
    if writes.tables:
        shown = "; ".join(w.describe() for w in writes.tables[:3]) + (", …" if len(writes.tables) > 3 else "")
        return [Risk(key, "writable-role", (
            f"{var} connects as role '{writes.role}', which may write {len(writes.tables)} table(s) of {schema} on "
            f"non-local target '{target.name}': {shown} — {_ROLE_ADVICE}"))]
    return []


def _inspect_role(config: pytest.Config, report: ConnectionReport) -> None:
    import psycopg

    from fixtures.probes import role as probes_role
    from plugins.run_database import run_database
    from fixtures.row_gate import RowGate

    ctx = run_context(config)
    db = run_database(config)
    if db is None:
        report.problem = "no database configured"
        return
    schema = ctx.runbook.schema
    try:
        writes = probes_role.role_writes(db, schema)
        gate = db.row_gate
        sight = gate.sight() if isinstance(gate, RowGate) else probes_role.row_sight(db)
    except Undecidable as exc:
        report.problem = f"the database role was not inspected: {exc.message}"
        return
    except psycopg.Error as exc:
        report.problem = one_line(f"the database role was not inspected: {exc}", 300)
        return
    report.database_role = {
        "name": writes.role, "superuser": writes.superuser, "bypassrls": sight.bypassrls if sight else None,
        "writes": [w.describe() for w in writes.tables],
        "cannot_see": [b.entry(schema) for b in (sight.blind.values() if sight else ())],
    }
    report.risks += _role_risks(ctx.target, schema, writes)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    report = config.stash.get(_REPORT, None)
    if report is None or not report.judged or _is_worker(config) or config.option.collectonly:
        return
    from plugins.run_database import close_run_database

    _inspect_role(config, report)
    # Under xdist the workers open their own connections: the controller's is not kept.
    if config.pluginmanager.has_plugin("dsession") or (report.strict and report.risks):
        close_run_database(config)
    if report.strict and report.risks:
        raise _refuse(run_context(config).target, report.risks)
    _say(config, report)


def pytest_unconfigure(config: pytest.Config) -> None:
    # A run whose checks never asked for the database (the db fixture closes it otherwise).
    if config.stash.get(_REPORT, None) is not None:
        from plugins.run_database import close_run_database

        close_run_database(config)


def _lines(config: pytest.Config, report: ConnectionReport) -> list[str]:
    red = redactor(config)
    out = [f"julia-conformance: warning: risky connection — {r.key}: {red.scrub(r.message)}" for r in report.risks]
    role = report.database_role or {}
    blind = role.get("cannot_see") or []
    if blind:
        names = ", ".join(b["relation"] for b in blind[:8]) + (", …" if len(blind) > 8 else "")
        out.append(f"julia-conformance: warning: role {role.get('name')} cannot see every row of {len(blind)} "
                   f"relation(s) ({names}): the checks that read them cannot decide")
    if report.problem:
        out.append(f"julia-conformance: {red.scrub(report.problem)}")
    return out


def _say(config: pytest.Config, report: ConnectionReport) -> None:
    tr = config.pluginmanager.get_plugin("terminalreporter")
    if tr is None:
        return
    for line in _lines(config, report):
        tr.write_line(line, yellow=True)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    report = config.stash.get(_REPORT, None)
    if report is not None and report.judged and not _is_worker(config):
        for line in _lines(config, report):
            terminalreporter.write_line(line, yellow=True)


def connection_section(config: pytest.Config) -> dict[str, Any] | None:
    """The certificate's ``connection`` (reports/README.md)."""
    report = config.stash.get(_REPORT, None)
    return report.section() if report is not None else None


def connection_markdown(cert: dict[str, Any]) -> list[str]:
    """certificate.md's "Connection" section: the risks, and what the role cannot see."""
    section = cert.get("connection") or {}
    risks = section.get("risks") or []
    role = section.get("database_role") or {}
    blind = role.get("cannot_see") or []
    if not risks and not blind:
        return []
    out = ["## Connection", ""]
    out += [f"- **risk** `{r['key']}` ({r['kind']}): {r['message']}" for r in risks]
    out += [f"- role {role.get('name')} cannot see {'every row' if b['sees'] == 'some' else 'the rows'} of "
            f"`{b['relation']}`: {b['cause']}" for b in blind]
    out.append("")
    return out
