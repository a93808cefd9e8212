"""Load the real Júlia's production schema dump into a local PostgreSQL, skipping only what
this machine cannot have.

The real app's ``bootstrap/01-schema.sql`` is a ``supabase db dump`` (whats-agents
bootstrap/README.md): it assumes Supabase's platform — the roles ``anon``, ``authenticated``
and ``service_role``, the schema ``extensions`` its extensions live in, ``auth.role()`` used by
its RLS policies, the ``supabase_realtime`` publication — and four extensions a plain Debian
PostgreSQL does not ship (pg_net, pg_graphql, supabase_vault, vector; no Debian package of
pgvector exists on this machine's mirror). The dump is read from the checkout at run time,
never copied into this project.

Every statement is parsed with PostgreSQL's own parser (pglast) and, right before it runs,
checked against the catalog: a statement is skipped only when it needs an object that an
unavailable extension would have provided (a type or function that neither the dump has
created so far nor the server has), an unavailable extension itself, or a column dropped
for that reason. A ``CREATE TABLE`` whose only such need is a column type (``clientes``,
``doctor_context``, ``conhecimento_julia`` carry ``embedding vector(N)``) keeps the table and
leaves that column out. Everything else must run: an unexpected failure stops the load
naming the dump's line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from pglast import ast, parse_sql
from pglast.stream import RawStream
from psycopg import sql

# The Supabase platform's own roles and objects the dump refers to but does not create.
# service_role bypasses RLS on Supabase (it is the role the app's service key maps to).
SUPABASE_ROLES: dict[str, str] = {
    "anon": "NOLOGIN NOINHERIT",
    "authenticated": "NOLOGIN NOINHERIT",
    "service_role": "NOLOGIN NOINHERIT BYPASSRLS",
}
# auth.role() as Supabase's auth schema defines it: the role claim of the request's JWT,
# as PostgREST exposes it in the request.jwt.* settings.
_AUTH_ROLE_BODY = ("SELECT coalesce(nullif(current_setting('request.jwt.claim.role', true), ''),"
                   " (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role'))::text")


@dataclass(frozen=True)
class Skipped:
    """One statement of the dump left out, and why."""

    line: int
    kind: str      # the parse node, e.g. GrantStmt
    reason: str    # e.g. "needs type public.vector (extension not available)"


@dataclass
class LoadReport:
    """What the load did: statements run, skipped (by kind and reason), columns left out."""

    executed: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    dropped_columns: list[str] = field(default_factory=list)   # "table.column (type)"
    missing_extensions: list[str] = field(default_factory=list)

    def summary(self) -> str:
        by_kind = Counter(s.kind for s in self.skipped)
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(by_kind.items(), key=lambda kv: (-kv[1], kv[0])))
        return (f"{self.executed} statements run, {len(self.skipped)} skipped ({kinds or 'none'}) for the "
                f"extensions this server lacks ({', '.join(self.missing_extensions) or 'none'}); columns left "
                f"out: {', '.join(self.dropped_columns) or 'none'}")


class BootstrapError(RuntimeError):
    """The dump failed where nothing explains it (names the dump's line)."""


def create_platform_roles(admin_url: str) -> list[str]:
    """Create the Supabase roles that do not exist yet; returns the ones created (the caller
    drops exactly those at the end: roles are per cluster, not per database)."""
    created = []
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for role, options in SUPABASE_ROLES.items():
            row = conn.execute("SELECT rolbypassrls FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            if row is None:
                create = sql.SQL("CREATE ROLE {} " + options)  # type: ignore[arg-type]  # options are ours
                conn.execute(create.format(sql.Identifier(role)))
                created.append(role)
            elif "BYPASSRLS" in options and not row[0]:
                # the dump enables RLS on tables with no policy: without it the app would read nothing
                raise BootstrapError(f"role {role} exists without BYPASSRLS (Supabase's {role} bypasses RLS)")
    return created


def drop_roles(admin_url: str, roles: list[str]) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for role in roles:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def prepare_platform(conn: psycopg.Connection[Any]) -> None:
    """The per-database parts of Supabase's platform the dump assumes (see module docstring)."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS extensions")
    conn.execute("CREATE SCHEMA IF NOT EXISTS auth")
    conn.execute(sql.SQL("CREATE OR REPLACE FUNCTION auth.role() RETURNS text LANGUAGE sql STABLE AS {}").format(
        sql.Literal(_AUTH_ROLE_BODY)))
    conn.execute("GRANT USAGE ON SCHEMA extensions, auth TO anon, authenticated, service_role")
    if conn.execute("SELECT 1 FROM pg_publication WHERE pubname = 'supabase_realtime'").fetchone() is None:
        conn.execute("CREATE PUBLICATION supabase_realtime")
    # Supabase's databases search "extensions" after public, so unqualified extension
    # functions (uuid_generate_v4, …) resolve as in production.
    dbname = conn.execute("SELECT current_database()").fetchone()[0]  # type: ignore[index]
    conn.execute(sql.SQL('ALTER DATABASE {} SET search_path = "$user", public, extensions').format(
        sql.Identifier(dbname)))


# --- the AST walk ----------------------------------------------------------------------------


def _walk(node: Any) -> Iterator[ast.Node]:
    if isinstance(node, ast.Node):
        yield node
        for attr in node.__slots__:
            yield from _walk(getattr(node, attr, None))
    elif isinstance(node, tuple | list):
        for item in node:
            yield from _walk(item)


def _names(nodes: Any) -> tuple[str, ...]:
    return tuple(n.sval for n in nodes or () if isinstance(n, ast.String))


def _type_ref(type_name: ast.TypeName) -> str | None:
    """A TypeName as to_regtype() reads it (quoted parts), None for %TYPE references."""
    if type_name.pct_type or not type_name.names:
        return None
    return ".".join('"' + part.replace('"', '""') + '"' for part in _names(type_name.names))


def _proc_ref(obj: ast.ObjectWithArgs) -> str | None:
    if obj.args_unspecified or obj.objargs is None:
        return None
    args = []
    for arg in obj.objargs:
        ref = _type_ref(arg)
        if ref is None:
            return None
        args.append(ref + "[]" * len(arg.arrayBounds or ()))
    name = ".".join('"' + p.replace('"', '""') + '"' for p in _names(obj.objname))
    return f"{name}({', '.join(args)})"


@dataclass
class _Catalog:
    """Existence checks against the database as the load proceeds (cached when positive)."""

    conn: psycopg.Connection[Any]
    known: set[str] = field(default_factory=set)

    def has_type(self, ref: str) -> bool:
        if ref in self.known:
            return True
        found = self.conn.execute("SELECT to_regtype(%s) IS NOT NULL", (ref,)).fetchone()[0]  # type: ignore[index]
        if found:
            self.known.add(ref)
        return bool(found)

    def has_proc(self, ref: str) -> bool:
        key = "proc:" + ref
        if key in self.known:
            return True
        found = self.conn.execute("SELECT to_regprocedure(%s) IS NOT NULL", (ref,)).fetchone()[0]  # type: ignore[index]
        if found:
            self.known.add(key)
        return bool(found)

    def access_methods(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT amname FROM pg_am")}


def _relation_key(rv: ast.RangeVar | None) -> str | None:
    if rv is None:
        return None
    return f"{rv.schemaname or 'public'}.{rv.relname}"


def _missing_type(node: ast.Node, catalog: _Catalog) -> str | None:
    for sub in _walk(node):
        if isinstance(sub, ast.TypeName):
            ref = _type_ref(sub)
            if ref is not None and not catalog.has_type(ref):
                return ".".join(_names(sub.names))
    return None


def _missing_proc(node: ast.Node, catalog: _Catalog) -> str | None:
    for sub in _walk(node):
        if isinstance(sub, ast.ObjectWithArgs):
            ref = _proc_ref(sub)
            if ref is not None and not catalog.has_proc(ref):
                return ref.replace('"', "")
    return None


def _statements(text: str) -> Iterator[tuple[int, ast.RawStmt, str]]:
    """(line, parsed statement, its text) for each statement of the dump."""
    # pglast reports locations in characters of ``text`` (not bytes of its UTF-8)
    for raw in parse_sql(text):
        start = raw.stmt_location or 0
        end = start + raw.stmt_len if raw.stmt_len else len(text)
        chunk = text[start:end]
        lead = len(chunk) - len(chunk.lstrip())
        line = text.count("\n", 0, start) + chunk[:lead].count("\n") + 1
        yield line, raw, chunk.strip()


def load_dump(conn: psycopg.Connection[Any], text: str, *, source: str) -> LoadReport:
    """Run the dump statement by statement on ``conn`` (one transaction, the caller's),
    skipping what needs an unavailable extension; returns the report."""
    report = LoadReport()
    catalog = _Catalog(conn)
    available = {r[0] for r in conn.execute("SELECT name FROM pg_available_extensions")}
    methods = catalog.access_methods()
    dropped: dict[str, set[str]] = {}      # relation -> columns left out
    left_out: set[str] = set()             # relations (indexes, views) whose CREATE was skipped

    def skip(line: int, stmt: ast.Node, reason: str) -> None:
        report.skipped.append(Skipped(line, type(stmt).__name__, reason))
        if isinstance(stmt, ast.IndexStmt) and stmt.idxname:
            left_out.add(f"{stmt.relation.schemaname or 'public'}.{stmt.idxname}")
        elif isinstance(stmt, ast.ViewStmt):
            left_out.add(_relation_key(stmt.view) or "")

    for line, raw, text_ in _statements(text):
        stmt = raw.stmt
        run_text = text_
        if isinstance(stmt, ast.CreateExtensionStmt):
            if stmt.extname not in available:
                report.missing_extensions.append(stmt.extname)
                skip(line, stmt, f"extension {stmt.extname} not available")
                continue
        elif isinstance(stmt, ast.CreateStmt) and stmt.tableElts:
            keep, lost = [], []
            for elt in stmt.tableElts:
                if isinstance(elt, ast.ColumnDef) and elt.typeName is not None:
                    ref = _type_ref(elt.typeName)
                    if ref is not None and not catalog.has_type(ref):
                        lost.append(f"{stmt.relation.relname}.{elt.colname} ({'.'.join(_names(elt.typeName.names))})")
                        dropped.setdefault(_relation_key(stmt.relation) or "", set()).add(elt.colname)
                        continue
                keep.append(elt)
            if lost:
                stmt.tableElts = tuple(keep)
                report.dropped_columns.extend(lost)
                run_text = RawStream()(stmt)
        else:
            reason = None
            if isinstance(stmt, ast.IndexStmt) and stmt.accessMethod not in methods:
                reason = f"access method {stmt.accessMethod} not available"
            elif isinstance(stmt, ast.IndexStmt) and dropped.get(_relation_key(stmt.relation) or ""):
                cols = {p.name for p in stmt.indexParams or () if isinstance(p, ast.IndexElem)}
                if cols & dropped[_relation_key(stmt.relation) or ""]:
                    reason = "indexes a column left out"
            elif isinstance(stmt, ast.CommentStmt) and isinstance(stmt.object, tuple):
                parts = _names(stmt.object)
                if len(parts) >= 2 and parts[-1] in dropped.get(".".join(parts[-3:-1]) if len(parts) >= 3
                                                                else f"public.{parts[-2]}", set()):
                    reason = "comments a column left out"
            if reason is None and left_out:
                refs = {_relation_key(n) for n in _walk(stmt) if isinstance(n, ast.RangeVar)}
                if isinstance(stmt, ast.CommentStmt) and isinstance(stmt.object, tuple):
                    parts = _names(stmt.object)
                    refs.add(".".join(parts) if len(parts) == 2 else f"public.{parts[-1]}" if parts else None)
                if hit := sorted(r for r in refs & left_out if r):
                    reason = f"refers to {hit[0]}, left out"
            if reason is None and (missing := _missing_type(stmt, catalog)) is not None:
                reason = f"needs type {missing} (from an extension this server lacks)"
            if reason is None and (missing := _missing_proc(stmt, catalog)) is not None:
                reason = f"needs function {missing} (from an extension this server lacks)"
            if reason is not None:
                skip(line, stmt, reason)
                continue
        try:
            conn.execute(run_text.encode("utf-8"))  # type: ignore[arg-type]
        except psycopg.Error as exc:
            first = text_.splitlines()[0][:120] if text_ else ""
            raise BootstrapError(f"{source}:{line}: {type(exc).__name__}: "
                                 f"{(exc.diag.message_primary or str(exc)).strip()} — in: {first}") from None
        report.executed += 1
    return report


def load_dump_file(database_url: str, path: Path) -> LoadReport:
    """Prepare the platform and load ``path`` into ``database_url`` (one transaction)."""
    text = path.read_text(encoding="utf-8")
    with psycopg.connect(database_url) as conn:
        prepare_platform(conn)
        report = load_dump(conn, text, source=str(path))
        conn.commit()
    return report


def apply_sql_files(database_url: str, paths: list[Path], *, root: Path) -> LoadReport:
    """Apply migration files the same way (one transaction each, in the given order), on a
    fresh session (the database's own search_path). Their statements need the same
    extensions the dump does, and are skipped by the same rule."""
    total = LoadReport()
    for path in paths:
        with psycopg.connect(database_url) as conn:
            report = load_dump(conn, path.read_text(encoding="utf-8"), source=str(path.relative_to(root)))
            conn.commit()
        total.executed += report.executed
        total.skipped += report.skipped
        total.dropped_columns += report.dropped_columns
        total.missing_extensions += [e for e in report.missing_extensions if e not in total.missing_extensions]
    return total
