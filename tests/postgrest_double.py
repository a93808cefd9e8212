"""A loopback double of the part of PostgREST's ``/rest/v1`` the real Júlia uses, on a real
PostgreSQL.

The real app (rafa77-tech/whats-agents) reaches its database only through Supabase's REST
layer, with supabase-py/postgrest-py 2.25 (whats-agents uv.lock; app/services/supabase.py).
No PostgREST server can be installed here, so the self-test that boots the real app serves
that layer itself: this module answers PostgREST's HTTP protocol by running real SQL on a
real database, the way PostgREST's own query builder does (a read is ``json_agg`` of a
``SELECT`` with correlated sub-selects for embedded resources, a write is ``INSERT/UPDATE/
DELETE … RETURNING`` fed by ``json_populate_recordset`` of the request body, a call is
``fn(arg := …)`` fed by ``json_to_record``), one transaction per request, read-only for GET.
Values always travel as bound parameters (unknown-typed, so PostgreSQL coerces them to the
column's type exactly as it does for PostgREST's literals) and identifiers are quoted with
psycopg.sql — no SQL is built by pasting request text.

What it answers, and the PostgREST behaviour each follows (PostgREST v14 source,
src/library/PostgREST/ApiRequest/QueryParams.hs, Query/QueryBuilder.hs, Response.hs,
Error.hs; docs https://docs.postgrest.org/en/v14/references/api/tables_views.html):

- GET/HEAD ``/rest/v1/<table>``: ``select=`` (columns, ``alias:col``, ``col->k``/``->>k``,
  ``*``, embedded resources ``rel(…)`` / ``alias:rel(…)`` / ``rel!hint(…)`` / ``!inner`` /
  ``!left``, found through the foreign keys in the catalog: many-to-one gives an object,
  one-to-many an array, one-to-one an object), filters ``eq neq gt gte lt lte like ilike
  match imatch is in cs cd ov isdistinct``, each negatable with ``not.``, ``or=(…)`` /
  ``and=(…)`` trees, repeated keys ANDed, ``order=`` (several columns, asc/desc,
  nullsfirst/nullslast), ``limit``/``offset``, ``Prefer: count=exact`` with
  ``Content-Range`` and 206/416 as PostgREST's RangeQuery.hs, and the single-object media
  type ``application/vnd.pgrst.object+json`` (PGRST116, 406, "The result contains N rows").
- POST ``/rest/v1/<table>`` (an object or an array of objects with the same keys, or
  ``columns=``), ``Prefer: return=representation|minimal|headers-only``, upsert with
  ``on_conflict=`` and ``resolution=merge-duplicates|ignore-duplicates`` (201, or 200 when a
  merge inserted nothing); PATCH and DELETE with filters (200 with the rows, or 204).
- POST/GET ``/rest/v1/rpc/<fn>`` with named arguments: a scalar result is the JSON value, a
  composite an object, a set an array, ``void`` 204; PGRST202 (404) when no function takes
  those arguments, PGRST203 (300) when several do.
- Errors are PostgREST's JSON ``{code, message, details, hint}`` (all four keys): PGRST100
  (a query parameter it cannot parse), PGRST102 (bad body), PGRST103 (416), PGRST106 (a
  profile other than ``public``), PGRST116, PGRST125 (a path outside ``/rest/v1``), PGRST200
  / PGRST201 (embedding), PGRST202 / PGRST203, PGRST204 (a body key that is no column),
  PGRST205 (no such table, 404), and every PostgreSQL error with its SQLSTATE as the code and
  the HTTP status of PostgREST's mapSQLtoHTTP (23505/23503 → 409, 42P01/42883 → 404, 25006 →
  405, 42501 → 403, P0001 and other client errors → 400, …).

Deliberate differences, none on the paths the real app takes: no JWT (every request runs
as ``role``, the role the app's service key maps to), no OpenAPI root, no aggregates,
spreads, casts, filters or orders on embedded resources, no embedding through views or
many-to-many junctions, ``count=planned|estimated`` are answered as ``exact``, and the
"Perhaps you meant …" hints come from difflib rather than PostgREST's fuzzy matcher. The
schema cache reloads by itself when a request names a relation or function it lacks
(PostgREST waits for ``NOTIFY pgrst``), so objects created after the double started are
found.
"""

from __future__ import annotations

import difflib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import psycopg
from psycopg import sql

PREFIX = "/rest/v1"
OBJECT_MEDIA = "application/vnd.pgrst.object+json"
RESERVED = {"select", "order", "limit", "offset", "columns", "on_conflict"}
_SIMPLE_OPS = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "like": "LIKE",
               "ilike": "ILIKE", "match": "~", "imatch": "~*", "cs": "@>", "cd": "<@", "ov": "&&",
               "isdistinct": "IS DISTINCT FROM"}
_IS_VALUES = {"null": "IS NULL", "not_null": "IS NOT NULL", "true": "IS TRUE", "false": "IS FALSE",
              "unknown": "IS UNKNOWN"}
_IDLE_TIMEOUT_S = 300   # keep-alive connections live longer than any client's idle pool


# --- errors ------------------------------------------------------------------------------------


class PgrstError(Exception):
    """An answer in PostgREST's error format."""

    def __init__(self, status: int, code: str, message: str, details: str | None = None,
                 hint: str | None = None, headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.details, self.hint = status, code, message, details, hint
        self.headers = headers

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details, "hint": self.hint}


def sqlstate_status(code: str, message: str = "") -> int:
    """PostgREST's mapSQLtoHTTP (src/library/PostgREST/Error.hs) for an authenticated request."""
    exact = {"23503": 409, "23505": 409, "25006": 405, "53400": 500, "57P01": 503, "P0001": 400,
             "42P01": 404, "42P17": 500, "42501": 403}
    if code in exact:
        return exact[code]
    if code == "42883":
        return 406 if message.startswith("function xmlagg(") else 404
    if code == "21000":
        return 400 if message.endswith("requires a WHERE clause") else 500
    if code == "22023":
        return 401 if message.startswith("role") and message.endswith("does not exist") else 400
    prefixes = {"08": 503, "09": 500, "0L": 403, "0P": 403, "25": 500, "28": 403, "2D": 500, "38": 500,
                "39": 500, "3B": 500, "40": 500, "53": 503, "54": 500, "55": 500, "57": 500, "58": 500,
                "F0": 500, "HV": 500, "P0": 500, "XX": 500}
    return prefixes.get(code[:2], 400)


def from_pg(exc: psycopg.Error) -> PgrstError:
    diag = exc.diag
    code = exc.sqlstate
    if code is None:   # the connection itself failed (PostgREST's PGRST000/PGRST001)
        return PgrstError(503, "PGRST000", "Database connection error.", str(exc).strip() or None)
    message = diag.message_primary or str(exc)
    return PgrstError(sqlstate_status(code, message), code, message, diag.message_detail, diag.message_hint)


def parse_error(what: str, value: str, details: str) -> PgrstError:
    """PGRST100 in PostgREST's words: the parser's position as message, its complaint as details."""
    return PgrstError(400, "PGRST100", f'"failed to parse {what} ({value})" (line 1, column 1)', details)


def not_supported(feature: str) -> PgrstError:
    return PgrstError(400, "PGRST100", f"{feature} is not supported by the PostgREST double",
                      "tests/postgrest_double.py answers only the subset of PostgREST the real app uses")


def _close(word: str, choices: list[str]) -> str | None:
    found = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return found[0] if found else None


# --- the schema cache ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ForeignKey:
    name: str
    table: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]


@dataclass(frozen=True)
class Relation:
    name: str
    kind: str                       # pg_class.relkind
    columns: tuple[str, ...]
    unique_sets: tuple[frozenset[str], ...]   # primary key and unique constraints
    pk: tuple[str, ...]


@dataclass(frozen=True)
class Param:
    name: str
    type_sql: sql.Composable
    type_name: str
    has_default: bool


@dataclass(frozen=True)
class Routine:
    name: str
    params: tuple[Param, ...]
    returns_set: bool
    kind: str                       # void | scalar | composite

    def signature(self, schema: str) -> str:
        return f"{schema}.{self.name}({', '.join(f'{p.name} => {p.type_name}' for p in self.params)})"


@dataclass
class SchemaCache:
    schema: str
    relations: dict[str, Relation] = field(default_factory=dict)
    fks: list[ForeignKey] = field(default_factory=list)
    routines: dict[str, list[Routine]] = field(default_factory=dict)

    @classmethod
    def load(cls, conn: psycopg.Connection[Any], schema: str) -> SchemaCache:
        cache = cls(schema)
        cols: dict[str, list[str]] = {}
        for rel, col in conn.execute(
                "SELECT c.relname, a.attname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
                " WHERE n.nspname = %s AND c.relkind IN ('r','v','m','f','p') ORDER BY c.relname, a.attnum",
                (schema,)):
            cols.setdefault(rel, []).append(col)
        uniques: dict[str, list[frozenset[str]]] = {}
        pks: dict[str, tuple[str, ...]] = {}
        for rel, contype, names in conn.execute(
                "SELECT c.relname, k.contype, array_agg(a.attname ORDER BY u.ord)"
                " FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " CROSS JOIN LATERAL unnest(k.conkey) WITH ORDINALITY AS u(attnum, ord)"
                " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = u.attnum"
                " WHERE n.nspname = %s AND k.contype IN ('p', 'u') GROUP BY c.relname, k.oid, k.contype",
                (schema,)):
            uniques.setdefault(rel, []).append(frozenset(names))
            if contype == "p":
                pks[rel] = tuple(names)
        for rel, kind in conn.execute(
                "SELECT c.relname, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %s AND c.relkind IN ('r','v','m','f','p') AND NOT c.relispartition", (schema,)):
            cache.relations[rel] = Relation(rel, kind, tuple(cols.get(rel, ())), tuple(uniques.get(rel, ())),
                                            pks.get(rel, ()))
        for name, table, columns, ref_table, ref_columns in conn.execute(
                "SELECT k.conname, c.relname,"
                " (SELECT array_agg(a.attname ORDER BY u.ord) FROM unnest(k.conkey) WITH ORDINALITY u(n, ord)"
                "   JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n),"
                " f.relname,"
                " (SELECT array_agg(a.attname ORDER BY u.ord) FROM unnest(k.confkey) WITH ORDINALITY u(n, ord)"
                "   JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n)"
                " FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " JOIN pg_class f ON f.oid = k.confrelid JOIN pg_namespace fn ON fn.oid = f.relnamespace"
                " WHERE k.contype = 'f' AND n.nspname = %s AND fn.nspname = %s ORDER BY k.conname", (schema, schema)):
            cache.fks.append(ForeignKey(name, table, tuple(columns), ref_table, tuple(ref_columns)))
        cache._load_routines(conn)
        return cache

    def _load_routines(self, conn: psycopg.Connection[Any]) -> None:
        types: dict[int, tuple[sql.Composable, str]] = {}
        for oid, nsp, name, elem_nsp, elem_name, display in conn.execute(
                "SELECT t.oid, n.nspname, t.typname, en.nspname, e.typname, format_type(t.oid, NULL)"
                " FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
                " LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A'"
                " LEFT JOIN pg_namespace en ON en.oid = e.typnamespace"):
            if elem_name is not None:
                types[oid] = (sql.Composed([sql.Identifier(elem_nsp, elem_name), sql.SQL("[]")]), display)
            else:
                types[oid] = (sql.Identifier(nsp, name), display)
        for (name, retset, nargs, ndefaults, argnames, argmodes, allargtypes, argtypes, rettype, typtype,
             typrelid) in conn.execute(
                "SELECT p.proname, p.proretset, p.pronargs, p.pronargdefaults, p.proargnames,"
                " p.proargmodes::text[], p.proallargtypes::oid[], p.proargtypes::oid[], t.typname, t.typtype::text,"
                " t.typrelid FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
                " JOIN pg_type t ON t.oid = p.prorettype WHERE n.nspname = %s AND p.prokind = 'f'", (self.schema,)):
            names = list(argnames or [])

            def name_at(i: int) -> str:
                return names[i] if i < len(names) else ""

            if allargtypes is None:
                inputs = [(oid, name_at(i)) for i, oid in enumerate(argtypes[:nargs])]
            else:
                inputs = [(oid, name_at(i)) for i, (oid, mode) in enumerate(zip(allargtypes, argmodes))
                          if mode in ("i", "b", "v")]
            params = tuple(Param(pname, types[oid][0], types[oid][1], i >= len(inputs) - ndefaults)
                           for i, (oid, pname) in enumerate(inputs))
            # PostgREST's rule (SchemaCache.hs allFunctions): composite when the type is, or when
            # any TABLE/INOUT/OUT argument is present — RETURNS TABLE(n int) answers [{"n": …}]
            out_args = bool(set(argmodes or ()) & {"t", "b", "o"})
            kind = ("void" if rettype == "void" else
                    "composite" if typrelid != 0 or typtype == "c" or rettype == "record" or out_args else "scalar")
            self.routines.setdefault(name, []).append(Routine(name, params, retset, kind))


# --- parsing the query string --------------------------------------------------------------------


def split_top(text: str, sep: str = ",") -> list[str]:
    """Split at ``sep`` outside double quotes, parentheses and braces."""
    parts, depth, quoted, start, i = [], 0, False, 0, 0
    while i < len(text):
        ch = text[i]
        if quoted:
            if ch == "\\":
                i += 1
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch in "({":
            depth += 1
        elif ch in ")}":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def unquote_value(text: str) -> str:
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


@dataclass(frozen=True)
class FieldRef:
    """A column, with an optional JSON path: ``data->a->>b``."""

    column: str
    path: tuple[tuple[str, str], ...] = ()   # (arrow, key)

    @classmethod
    def parse(cls, text: str, what: str) -> FieldRef:
        pieces = re.split(r"(->>|->)", text.strip())
        column = unquote_value(pieces[0].strip())
        if not column or not re.fullmatch(r"[^.,:()!]+", column):
            raise parse_error(what, text, "unexpected input; expecting field name (* or [a..z0..9_$])")
        path = tuple((pieces[i], unquote_value(pieces[i + 1].strip())) for i in range(1, len(pieces) - 1, 2))
        if any(not key for _, key in path):
            raise parse_error(what, text, "unexpected end of input; expecting a JSON key")
        return cls(column, path)

    @property
    def output_name(self) -> str:
        return self.path[-1][1] if self.path else self.column


@dataclass
class SelectItem:
    kind: str                       # star | column | embed
    ref: FieldRef | None = None
    alias: str | None = None
    name: str = ""                  # embed target (relation or FK column)
    hint: str | None = None
    join: str | None = None         # inner | left
    children: list[SelectItem] = field(default_factory=list)


def parse_select(text: str) -> list[SelectItem]:
    items: list[SelectItem] = []
    for raw in split_top(text):
        item = raw.strip()
        if not item:
            if text.strip():
                raise parse_error("select", text, "unexpected \",\"; expecting field name (* or [a..z0..9_$])")
            continue
        if item == "*":
            items.append(SelectItem("star"))
            continue
        if item.startswith("..."):
            raise not_supported("spread embedding (...)")
        if "::" in item:
            raise not_supported("casting in select (::)")
        paren = _paren_index(item)
        alias: str | None = None
        if paren is not None:
            if not item.endswith(")"):
                raise parse_error("select", text, "unexpected input after ')'")
            head, inner = item[:paren], item[paren + 1:-1]
            if ":" in head:
                alias, head = (s.strip() for s in head.split(":", 1))
            name, *params = head.split("!")
            if "." in name:
                raise not_supported("aggregate functions in select")
            hint, join = None, None
            for p in params:
                if p in ("inner", "left"):
                    join = p
                else:
                    hint = p
            items.append(SelectItem("embed", alias=alias, name=unquote_value(name.strip()), hint=hint, join=join,
                                    children=parse_select(inner) if inner.strip() else []))
            continue
        if re.match(r'^[^"]*?:', item) and not item.startswith('"'):
            alias, item = (s.strip() for s in item.split(":", 1))
        items.append(SelectItem("column", ref=FieldRef.parse(item, "select"), alias=alias))
    return items


def _paren_index(item: str) -> int | None:
    quoted = False
    for i, ch in enumerate(item):
        if ch == '"':
            quoted = not quoted
        elif ch == "(" and not quoted:
            return i
    return None


@dataclass(frozen=True)
class Condition:
    field: FieldRef
    negate: bool
    op: str
    operand: str | tuple[str, ...]


@dataclass(frozen=True)
class Logic:
    op: str                          # AND | OR
    negate: bool
    children: tuple[Condition | Logic, ...]


def parse_opexpr(field_: FieldRef, value: str, *, in_logic: bool, original: str) -> Condition:
    negate = False
    rest = value
    if rest.startswith("not."):
        negate, rest = True, rest[4:]
    op, dot, operand = rest.partition(".")
    if not dot:
        raise parse_error("filter", original, "unexpected end of input; expecting operator (eq, gt, ...)")
    if op == "in":
        if not (operand.startswith("(") and operand.endswith(")")):
            raise parse_error("filter", original, 'unexpected input; expecting "("')
        return Condition(field_, negate, "in", tuple(unquote_value(v.strip()) for v in split_top(operand[1:-1])))
    if op == "is":
        word = operand.lower()
        if word not in _IS_VALUES:
            raise parse_error("filter", original, "unexpected input; expecting isVal: (null, not_null, true, false, "
                                                  "unknown)")
        return Condition(field_, negate, "is", word)
    if op not in _SIMPLE_OPS:
        raise parse_error("filter", original, "unexpected input; expecting operator (eq, gt, ...)")
    return Condition(field_, negate, op, unquote_value(operand) if in_logic else operand)


def parse_logic(op_key: str, value: str) -> Logic:
    """``or=(a.eq.1,b.is.null)`` (op_key ``or``, possibly ``not.or``) as a tree."""
    negate = op_key.startswith("not.")
    op = op_key[4:] if negate else op_key
    if not (value.startswith("(") and value.endswith(")")):
        raise parse_error("logic tree", f"{op}{value}", 'unexpected input; expecting "("')
    children: list[Condition | Logic] = []
    for raw in split_top(value[1:-1]):
        item = raw.strip()
        m = re.fullmatch(r"(not\.)?(and|or)(\(.*\))", item, re.S)
        if m:
            children.append(parse_logic((m.group(1) or "") + m.group(2), m.group(3)))
            continue
        col, dot, expr = item.partition(".")
        if not dot or not col:
            raise parse_error("logic tree", f"{op}{value}", "unexpected input; expecting field name (* or "
                                                            "[a..z0..9_$]), negation operator (not) or logic "
                                                            "operator (and, or)")
        children.append(parse_opexpr(FieldRef.parse(col, "logic tree"), expr, in_logic=True, original=item))
    return Logic(op.upper(), negate, tuple(children))


@dataclass(frozen=True)
class OrderTerm:
    field: FieldRef
    desc: bool
    nulls: str | None                 # FIRST | LAST


def parse_order(text: str) -> list[OrderTerm]:
    terms = []
    for raw in split_top(text):
        term = raw.strip()
        if "(" in term:
            raise not_supported("ordering by an embedded resource")
        column, *mods = term.split(".")
        desc, nulls = False, None
        for m in mods:
            if m in ("asc", "desc"):
                desc = m == "desc"
            elif m in ("nullsfirst", "nullslast"):
                nulls = "FIRST" if m == "nullsfirst" else "LAST"
            else:
                raise parse_error("order", text, "unexpected input; expecting \"asc\", \"desc\", \"nullsfirst\" or "
                                                 "\"nullslast\"")
        terms.append(OrderTerm(FieldRef.parse(column, "order"), desc, nulls))
    return terms


def parse_prefer(values: list[str]) -> dict[str, str]:
    prefs: dict[str, str] = {}
    for value in values:
        for token in value.split(","):
            key, _, val = token.strip().partition("=")
            if key:
                prefs[key.strip().lower()] = val.strip()
    return prefs


@dataclass
class Query:
    """A request's query string, parsed."""

    select: list[SelectItem]
    filters: list[Condition | Logic]
    order: list[OrderTerm]
    limit: int | None
    offset: int
    columns: list[str] | None
    on_conflict: list[str] | None
    args: list[tuple[str, str]]          # the pairs that are neither reserved nor filters (rpc GET)

    @classmethod
    def parse(cls, pairs: list[tuple[str, str]], *, rpc: bool = False) -> Query:
        values: dict[str, str] = {}
        filters: list[Condition | Logic] = []
        args: list[tuple[str, str]] = []
        for key, value in pairs:
            if key in RESERVED:
                values[key] = value
            elif rpc:
                args.append((key, value))
            elif key in ("or", "and", "not.or", "not.and"):
                filters.append(parse_logic(key, value))
            elif "." in key.split("->")[0]:
                raise not_supported("filtering on an embedded resource")
            else:
                filters.append(parse_opexpr(FieldRef.parse(key, "filter"), value, in_logic=False, original=value))
        limit = _int_param("limit", values.get("limit"))
        offset = _int_param("offset", values.get("offset")) or 0
        if limit is not None and limit < 0:
            raise PgrstError(416, "PGRST103", "Requested range not satisfiable",
                             "Limit should be greater than or equal to zero.")
        columns = [unquote_value(c.strip()) for c in split_top(values["columns"])] if "columns" in values else None
        on_conflict = ([unquote_value(c.strip()) for c in split_top(values["on_conflict"])]
                       if values.get("on_conflict") else None)
        return cls(parse_select(values.get("select", "*") or "*"), filters,
                   parse_order(values["order"]) if values.get("order") else [], limit, offset, columns, on_conflict,
                   args)


def _int_param(name: str, value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise parse_error(name, value, "unexpected input; expecting an integer") from None


# --- building SQL ---------------------------------------------------------------------------------


@dataclass
class Builder:
    """Composes one statement: named placeholders, so fragments can be built in any order."""

    cache: SchemaCache
    params: dict[str, Any] = field(default_factory=dict)
    _n: int = 0

    def value(self, v: Any) -> sql.Placeholder:
        name = f"p{len(self.params)}"
        self.params[name] = v
        return sql.Placeholder(name)

    def alias(self, base: str) -> str:
        """An embedded relation's alias, ``<table>_<n>`` as PostgREST's (so messages read alike)."""
        self._n += 1
        return f"{base}_{self._n}"

    def table(self, name: str) -> sql.Identifier:
        return sql.Identifier(self.cache.schema, name)

    # columns and conditions

    def column(self, alias: str, f: FieldRef) -> sql.Composable:
        expr: sql.Composable = sql.Identifier(alias, f.column)
        for arrow, key in f.path:
            cast = sql.SQL("::int") if re.fullmatch(r"-?\d+", key) else sql.SQL("::text")
            expr = sql.Composed([expr, sql.SQL(" " + arrow + " "), self.value(key), cast])
        return expr

    def condition(self, alias: str, c: Condition | Logic) -> sql.Composable:
        if isinstance(c, Logic):
            inner = sql.SQL(f" {c.op} ").join(self.condition(alias, child) for child in c.children)
            expr: sql.Composable = sql.Composed([sql.SQL("("), inner, sql.SQL(")")])
        else:
            col = self.column(alias, c.field)
            if c.op == "in":
                assert isinstance(c.operand, tuple)
                values = sql.SQL(", ").join(self.value(v) for v in c.operand)
                expr = sql.Composed([col, sql.SQL(" IN ("), values, sql.SQL(")")])
            elif c.op == "is":
                expr = sql.Composed([col, sql.SQL(" " + _IS_VALUES[str(c.operand)])])
            else:
                operand = str(c.operand)
                if c.op in ("like", "ilike"):
                    operand = operand.replace("*", "%")
                expr = sql.Composed([col, sql.SQL(" " + _SIMPLE_OPS[c.op] + " "), self.value(operand)])
        return sql.Composed([sql.SQL("NOT ("), expr, sql.SQL(")")]) if c.negate else expr

    def where(self, alias: str, conds: list[Condition | Logic], extra: list[sql.Composable] = ()) -> sql.Composable:
        parts = [self.condition(alias, c) for c in conds] + list(extra)
        if not parts:
            return sql.SQL("")
        return sql.Composed([sql.SQL(" WHERE "), sql.SQL(" AND ").join(parts)])

    def order_by(self, alias: str, terms: list[OrderTerm]) -> sql.Composable:
        if not terms:
            return sql.SQL("")
        parts = [sql.Composed([self.column(alias, t.field), sql.SQL(" DESC" if t.desc else " ASC"),
                               sql.SQL(f" NULLS {t.nulls}" if t.nulls else "")]) for t in terms]
        return sql.Composed([sql.SQL(" ORDER BY "), sql.SQL(", ").join(parts)])

    # select lists with embedded resources

    def select_list(self, rel: str, alias: str, items: list[SelectItem]) -> tuple[sql.Composable, list[sql.Composable]]:
        """The select list of ``rel`` (as ``alias``) and the conditions ``!inner`` embeds add."""
        out: list[sql.Composable] = []
        inner: list[sql.Composable] = []
        for item in items:
            if item.kind == "star":
                out.append(sql.SQL("{}.*").format(sql.Identifier(alias)))
            elif item.kind == "column":
                assert item.ref is not None
                out.append(sql.Composed([self.column(alias, item.ref), sql.SQL(" AS "),
                                         sql.Identifier(item.alias or item.ref.output_name)]))
            else:
                expr, exists = self.embed(rel, alias, item)
                if expr is not None:
                    out.append(sql.Composed([expr, sql.SQL(" AS "), sql.Identifier(item.alias or item.name)]))
                if item.join == "inner":
                    inner.append(exists)
        if not out:
            out.append(sql.SQL("{}.*").format(sql.Identifier(alias)) if not items else sql.SQL("NULL AS pgrst_empty"))
        return sql.SQL(", ").join(out), inner

    def embed(self, parent: str, parent_alias: str, item: SelectItem) -> tuple[sql.Composable | None, sql.Composable]:
        cardinality, fk, target = self.relationship(parent, item.name, item.hint)
        child = self.alias(target)
        if cardinality == "many-to-one":
            pairs = zip(fk.ref_columns, fk.columns)
        else:
            pairs = zip(fk.columns, fk.ref_columns)
        join = sql.SQL(" AND ").join(
            sql.SQL("{} = {}").format(sql.Identifier(child, c), sql.Identifier(parent_alias, p)) for c, p in pairs)
        cols, child_inner = self.select_list(target, child, item.children or [SelectItem("star")])
        # rel() (no columns) filters with !inner but shows nothing (PostgREST's rsEmptyEmbed)
        cond = sql.SQL(" AND ").join([join, *child_inner])
        sub = sql.SQL("SELECT {cols} FROM {table} AS {alias} WHERE {cond}").format(
            cols=cols, table=self.table(target), alias=sql.Identifier(child), cond=cond)
        exists = sql.SQL("EXISTS ({})").format(sub)
        if not item.children:
            return None, exists
        if cardinality == "one-to-many":
            expr = sql.SQL("COALESCE((SELECT json_agg(pgrst_e) FROM ({sub}) AS pgrst_e), '[]'::json)").format(sub=sub)
        else:
            expr = sql.SQL("(SELECT row_to_json(pgrst_e) FROM ({sub} LIMIT 1) AS pgrst_e)").format(sub=sub)
        return expr, exists

    def relationship(self, parent: str, name: str, hint: str | None) -> tuple[str, ForeignKey, str]:
        """PostgREST's relationship resolution through the FK catalog (Plan.hs findRel):
        ``name`` is a table (either direction) or, many-to-one, an FK column of ``parent``;
        ``hint`` names the FK constraint or one of its columns."""
        cands: list[tuple[str, ForeignKey, str]] = []
        for fk in self.cache.fks:
            if fk.table == parent and (name == fk.ref_table or fk.columns == (name,)):
                cands.append(("many-to-one", fk, fk.ref_table))
            if fk.ref_table == parent and name == fk.table:
                rel = self.cache.relations.get(fk.table)
                one = rel is not None and frozenset(fk.columns) in rel.unique_sets
                cands.append(("one-to-one" if one else "one-to-many", fk, fk.table))
        if hint is not None:
            cands = [c for c in cands if hint == c[1].name or hint in c[1].columns or
                     (c[0] == "many-to-one" and hint in c[1].ref_columns)]
        if not cands:
            tables = sorted(self.cache.relations)
            parent_known = parent in self.cache.relations
            near = _close(name, [f.ref_table for f in self.cache.fks if f.table == parent] +
                          [f.table for f in self.cache.fks if f.ref_table == parent]) if parent_known else \
                _close(parent, tables)
            raise PgrstError(
                400, "PGRST200", f"Could not find a relationship between '{parent}' and '{name}' in the schema cache",
                f"Searched for a foreign key relationship between '{parent}' and '{name}"
                + (f"' using the hint '{hint}" if hint else "")
                + f"' in the schema '{self.cache.schema}', but no matches were found.",
                (f"Perhaps you meant '{near}' instead of '{name if parent_known else parent}'." if near and near != name
                 else None))
        if len(cands) > 1:
            details = json.dumps([{
                "cardinality": card, "embedding": f"{parent} with {target}",
                "relationship": f"{fk.name} using {fk.table}({', '.join(fk.columns)}) and "
                                f"{fk.ref_table}({', '.join(fk.ref_columns)})"} for card, fk, target in cands])
            raise PgrstError(300, "PGRST201",
                             f"Could not embed because more than one relationship was found for '{parent}' and "
                             f"'{name}'", details,
                             f"Try changing '{name}' to one of the following: "
                             + ", ".join(f"'{target}!{fk.name}'" for _, fk, target in cands)
                             + ". Find the desired relationship in the 'details' key.")
        return cands[0]


# --- executing requests ---------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)


def _json_answer(status: int, text: str | None, single: bool, headers: list[tuple[str, str]]) -> Answer:
    if text is None:
        return Answer(status, b"", None, headers)
    media = OBJECT_MEDIA if single else "application/json"
    return Answer(status, text.encode("utf-8"), f"{media}; charset=utf-8", headers)


def content_range(lower: int, upper: int, total: int | None) -> str:
    """PostgREST's contentRangeH (RangeQuery.hs)."""
    rng = f"{lower}-{upper}" if total != 0 and lower <= upper else "*"
    return f"{rng}/{'*' if total is None else total}"


@dataclass
class Request:
    method: str
    path: str                        # after /rest/v1
    pairs: list[tuple[str, str]]
    headers: dict[str, str]          # lower-case names; Prefer values joined
    body: bytes

    @property
    def prefer(self) -> dict[str, str]:
        return parse_prefer([self.headers.get("prefer", "")])

    @property
    def single(self) -> bool:
        return OBJECT_MEDIA in self.headers.get("accept", "")


class PostgrestDouble:
    """Serve ``/rest/v1`` over loopback from ``database_url`` (see the module docstring).

    ``role``: the role each request runs as (``SET LOCAL ROLE``), the one the app's key maps
    to on Supabase (``service_role``); None runs as the connecting user. ``max_rows``:
    PostgREST's ``db-max-rows``, the most rows a read returns whatever its ``limit`` (Supabase
    projects default to 1000); None for no cap.
    """

    def __init__(self, database_url: str, *, schema: str = "public", role: str | None = None,
                 max_rows: int | None = None, host: str = "127.0.0.1") -> None:
        self.database_url = database_url
        self.schema = schema
        self.role = role
        self.max_rows = max_rows
        self.log: list[tuple[str, str, int, str | None]] = []    # method, path?query, status, error code
        self._cache: SchemaCache | None = None
        self._lock = threading.Lock()
        self._idle: list[psycopg.Connection[Any]] = []
        self._server = _Server((host, 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, name="postgrest-double", daemon=True)

    # lifecycle

    @property
    def url(self) -> str:
        """The Supabase URL to give the app (the client appends /rest/v1)."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> PostgrestDouble:
        self.reload()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.close_all()
        self._server.server_close()
        self._thread.join(timeout=10)
        self.stop_pool()

    def stop_pool(self) -> None:
        """Close the idle database connections (the next request opens a new one)."""
        with self._lock:
            for conn in self._idle:
                conn.close()
            self._idle.clear()

    def __enter__(self) -> PostgrestDouble:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def errors(self) -> list[tuple[str, str, int, str | None]]:
        return [entry for entry in list(self.log) if entry[2] >= 400]

    # the schema cache and connections

    def reload(self) -> SchemaCache:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            cache = SchemaCache.load(conn, self.schema)
        self._cache = cache
        return cache

    @property
    def cache(self) -> SchemaCache:
        return self._cache or self.reload()

    def _connect(self) -> psycopg.Connection[Any]:
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed:
                    return conn
        # Supabase's databases run in UTC: timestamps come back as +00:00.
        return psycopg.connect(self.database_url, options="-c TimeZone=UTC")

    def _release(self, conn: psycopg.Connection[Any]) -> None:
        if conn.closed or conn.broken:
            return
        with self._lock:
            if len(self._idle) < 8:
                self._idle.append(conn)
                return
        conn.close()

    def _relation(self, name: str) -> Relation:
        rel = self.cache.relations.get(name) or self.reload().relations.get(name)
        if rel is None:
            near = _close(name, sorted(self.cache.relations))
            raise PgrstError(404, "PGRST205", f"Could not find the table '{self.schema}.{name}' in the schema cache",
                             None, f"Perhaps you meant the table '{self.schema}.{near}'" if near else None)
        return rel

    # dispatch

    def handle(self, req: Request) -> Answer:
        profile = req.headers.get("accept-profile") or req.headers.get("content-profile")
        if profile and profile != self.schema:
            raise PgrstError(406, "PGRST106", f"Invalid schema: {profile}", None,
                             f"Only the following schemas are exposed: {self.schema}")
        if not (req.path.startswith("/") and len(req.path) > 1):
            raise PgrstError(404, "PGRST125", "Invalid path specified in request URL")
        parts = req.path[1:].split("/")
        if parts[0] == "rpc" and len(parts) == 2 and parts[1]:
            if req.method not in ("GET", "HEAD", "POST"):
                raise PgrstError(405, "PGRST101", f"Cannot use the {req.method} method on RPC")
            return self._transaction(req, lambda conn: self._call(conn, req, unquote(parts[1])))
        if len(parts) != 1:
            raise PgrstError(404, "PGRST125", "Invalid path specified in request URL")
        name = unquote(parts[0])
        handlers = {"GET": self._read, "HEAD": self._read, "POST": self._insert, "PATCH": self._update,
                    "DELETE": self._delete}
        if req.method not in handlers:
            raise PgrstError(405, "PGRST117", f"Unsupported HTTP method: {req.method}")
        rel = self._relation(name)
        return self._transaction(req, lambda conn: handlers[req.method](conn, req, rel))

    def _transaction(self, req: Request, work: Any) -> Answer:
        """One transaction per request (read-only for GET/HEAD), as the given role; a
        PgrstError raised inside rolls it back."""
        conn = self._connect()
        try:
            with conn.transaction():
                if req.method in ("GET", "HEAD"):
                    conn.execute("SET TRANSACTION READ ONLY")
                if self.role:
                    conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(self.role)))
                answer: Answer = work(conn)
            return answer
        except psycopg.Error as exc:
            raise from_pg(exc) from None
        finally:
            self._release(conn)

    # GET / HEAD

    def _read(self, conn: psycopg.Connection[Any], req: Request, rel: Relation) -> Answer:
        q = Query.parse(req.pairs)
        if self.max_rows is not None:
            q.limit = self.max_rows if q.limit is None else min(q.limit, self.max_rows)
        b = Builder(self.cache)
        # the relation is its own alias, so PostgreSQL's messages name it as PostgREST's do
        # ("column clientes.x does not exist")
        a = rel.name
        cols, inner = b.select_list(rel.name, a, q.select)
        where = b.where(a, q.filters, inner)
        page = sql.SQL("SELECT {cols} FROM {table} AS {a}{where}{order}{limit} OFFSET {offset}").format(
            cols=cols, table=b.table(rel.name), a=sql.Identifier(a), where=where, order=b.order_by(a, q.order),
            limit=sql.SQL(" LIMIT {}").format(b.value(q.limit)) if q.limit is not None else sql.SQL(""),
            offset=b.value(q.offset))
        stmt = sql.SQL("SELECT count(*), coalesce(json_agg(pgrst_r), '[]')::text, (json_agg(pgrst_r) -> 0)::text"
                       " FROM ({page}) AS pgrst_r").format(page=page)
        page_total, body, first = conn.execute(stmt, b.params).fetchone()  # type: ignore[misc]
        total = None
        if "count" in req.prefer:
            cb = Builder(self.cache)
            _, cinner = cb.select_list(rel.name, a, q.select)
            ctext = sql.SQL("SELECT count(*) FROM {table} AS {a}{where}").format(
                table=cb.table(rel.name), a=sql.Identifier(a), where=cb.where(a, q.filters, cinner))
            total = conn.execute(ctext, cb.params).fetchone()[0]  # type: ignore[index]
        lower, upper = q.offset, q.offset + page_total - 1
        headers = [("Content-Range", content_range(lower, upper, total))]
        if total is not None and lower > total:
            raise PgrstError(416, "PGRST103", "Requested range not satisfiable",
                             f"An offset of {lower} was requested, but there are only {total} rows.")
        if req.single:
            if page_total != 1:
                raise _singular(page_total)
            return _json_answer(200, None if req.method == "HEAD" else first, True, headers)
        status = 206 if total is not None and (1 + upper - lower) < total else 200
        return _json_answer(status, None if req.method == "HEAD" else body, False, headers)

    # writes

    def _body(self, req: Request) -> Any:
        try:
            return json.loads(req.body.decode("utf-8")) if req.body.strip() else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise PgrstError(400, "PGRST102", "Empty or invalid json") from None

    def _mutation_result(self, conn: psycopg.Connection[Any], req: Request, rel: Relation, mutate: sql.Composable,
                         b: Builder, q: Query) -> tuple[int, int, str, str | None]:
        """Run ``mutate`` (RETURNING the whole row as pgrst_row, and pgrst_inserted) and read
        back (inserted, affected, body array, first object) through ``select``."""
        cols, _ = b.select_list(rel.name, rel.name, q.select)
        stmt = sql.SQL(
            "WITH pgrst_mut AS ({mutate}), pgrst_rows AS (SELECT (pgrst_row).* FROM pgrst_mut)"
            " SELECT (SELECT count(*) FROM pgrst_mut WHERE pgrst_inserted), count(*),"
            " coalesce(json_agg(pgrst_r), '[]')::text, (json_agg(pgrst_r) -> 0)::text"
            " FROM (SELECT {cols} FROM pgrst_rows AS {a}) AS pgrst_r").format(mutate=mutate, cols=cols,
                                                                               a=sql.Identifier(rel.name))
        return conn.execute(stmt, b.params).fetchone()  # type: ignore[return-value]

    def _mutation_answer(self, req: Request, status: int, affected: int, body: str, first: str | None,
                         range_header: str, *, minimal_status: int) -> Answer:
        """PostgREST's Response.hs: the rows with ``return=representation``, else no body and
        ``minimal_status`` (POST keeps 201/200, PATCH and DELETE answer 204)."""
        prefer = req.prefer
        headers = [("Content-Range", range_header)]
        applied = [f"{k}={prefer[k]}" for k in ("return", "resolution", "count") if k in prefer]
        if applied:
            headers.append(("Preference-Applied", ", ".join(applied)))
        if req.single and affected != 1:
            raise _singular(affected)
        if prefer.get("return") == "representation":
            return _json_answer(status, first if req.single else body, req.single, headers)
        return Answer(minimal_status, b"", None, headers)

    def _check_columns(self, rel: Relation, keys: list[str]) -> None:
        for key in keys:
            if key not in rel.columns:
                raise PgrstError(400, "PGRST204",
                                 f"Could not find the '{key}' column of '{rel.name}' in the schema cache")

    def _insert(self, conn: psycopg.Connection[Any], req: Request, rel: Relation) -> Answer:
        q = Query.parse(req.pairs)
        payload = self._body(req)
        rows = payload if isinstance(payload, list) else [payload] if isinstance(payload, dict) else None
        if rows is None or not all(isinstance(r, dict) for r in rows):
            raise PgrstError(400, "PGRST102", "Empty or invalid json")
        if q.columns is not None:
            keys = q.columns
        else:
            keys = list(rows[0]) if rows else []
            if any(set(r) != set(keys) for r in rows):
                raise PgrstError(400, "PGRST102", "All object keys must match")
        self._check_columns(rel, keys)
        b = Builder(self.cache)
        target = b.table(rel.name)
        names = sql.SQL(", ").join(sql.Identifier(k) for k in keys)
        resolution = req.prefer.get("resolution")
        conflict_cols = q.on_conflict or list(rel.pk)
        if keys:
            source = sql.SQL(
                "({names}) SELECT {names} FROM json_populate_recordset(NULL::{target}, {body}::json)").format(
                names=names, target=target, body=b.value(json.dumps(rows)))
        else:
            source = sql.SQL("SELECT FROM generate_series(1, {n})").format(n=b.value(len(rows)))
        conflict = sql.SQL("")
        if resolution in ("merge-duplicates", "ignore-duplicates") and conflict_cols:
            action = (sql.SQL("DO NOTHING") if resolution == "ignore-duplicates" or not keys else
                      sql.SQL("DO UPDATE SET ") + sql.SQL(", ").join(
                          sql.SQL("{k} = EXCLUDED.{k}").format(k=sql.Identifier(k)) for k in keys))
            conflict = sql.SQL(" ON CONFLICT ({cols}) {action}").format(
                cols=sql.SQL(", ").join(sql.Identifier(c) for c in conflict_cols), action=action)
        # xmax = 0 tells an inserted row from one an upsert updated (tables only; views have no xmax)
        a = sql.Identifier(rel.name)
        inserted = sql.SQL("({a}.xmax = 0)").format(a=a) if rel.kind in ("r", "p") else sql.SQL("true")
        mutate = sql.SQL("INSERT INTO {target} AS {a} {source}{conflict}"
                         " RETURNING {row} AS pgrst_row, {inserted} AS pgrst_inserted").format(
            target=target, a=a, source=source, conflict=conflict, inserted=inserted, row=_whole_row(rel, b))
        n_inserted, affected, body, first = self._mutation_result(conn, req, rel, mutate, b, q)
        status = 200 if resolution == "merge-duplicates" and n_inserted == 0 else 201
        total = affected if "count" in req.prefer else None
        return self._mutation_answer(req, status, affected, body, first, content_range(1, 0, total),
                                     minimal_status=status)

    def _update(self, conn: psycopg.Connection[Any], req: Request, rel: Relation) -> Answer:
        q = Query.parse(req.pairs)
        payload = self._body(req)
        if not isinstance(payload, dict):
            raise PgrstError(400, "PGRST102", "Empty or invalid json")
        keys = q.columns if q.columns is not None else list(payload)
        self._check_columns(rel, keys)
        b = Builder(self.cache)
        if not keys:
            mutate = sql.SQL("SELECT {row} AS pgrst_row, false AS pgrst_inserted FROM {t} AS {a} WHERE false").format(
                row=_whole_row(rel, b), t=b.table(rel.name), a=sql.Identifier(rel.name))
        else:
            sets = sql.SQL(", ").join(sql.SQL("{k} = pgrst_body.{k}").format(k=sql.Identifier(k)) for k in keys)
            mutate = sql.SQL("UPDATE {t} AS {a} SET {sets} FROM json_populate_record(NULL::{t}, {body}::json)"
                             " AS pgrst_body{where} RETURNING {row} AS pgrst_row, false AS pgrst_inserted").format(
                t=b.table(rel.name), a=sql.Identifier(rel.name), sets=sets, body=b.value(json.dumps(payload)),
                where=b.where(rel.name, q.filters), row=_whole_row(rel, b))
        _, affected, body, first = self._mutation_result(conn, req, rel, mutate, b, q)
        total = affected if "count" in req.prefer else None
        return self._mutation_answer(req, 200, affected, body, first, content_range(0, affected - 1, total),
                                     minimal_status=204)

    def _delete(self, conn: psycopg.Connection[Any], req: Request, rel: Relation) -> Answer:
        q = Query.parse(req.pairs)
        b = Builder(self.cache)
        mutate = sql.SQL("DELETE FROM {t} AS {a}{where} RETURNING {row} AS pgrst_row, false AS pgrst_inserted").format(
            t=b.table(rel.name), a=sql.Identifier(rel.name), where=b.where(rel.name, q.filters), row=_whole_row(rel, b))
        _, affected, body, first = self._mutation_result(conn, req, rel, mutate, b, q)
        total = affected if "count" in req.prefer else None
        return self._mutation_answer(req, 200, affected, body, first, content_range(1, 0, total),
                                     minimal_status=204)

    # rpc

    def _routine(self, name: str, keys: list[str], post: bool) -> Routine:
        found = self.cache.routines.get(name) or self.reload().routines.get(name, [])
        matches = [r for r in found if all(k in {p.name for p in r.params} for k in keys)
                   and all(p.name in keys for p in r.params if not p.has_default)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise PgrstError(300, "PGRST203", "Could not choose the best candidate function between: "
                             + ", ".join(r.signature(self.schema) for r in matches), None,
                             "Try renaming the parameters or the function itself in the database so function "
                             "overloading can be resolved")
        func = f"{self.schema}.{name}"
        args = sorted(keys)
        listed = f"({', '.join(args)})" if args else " without parameters"
        searched = (f" with parameter{'s' if len(args) > 1 else ''} {', '.join(args)}" if args
                    else " without parameters")
        if found:
            lists = ["(" + ", ".join(sorted(p.name for p in r.params)) + ")" for r in found]
            near = _close("(" + ", ".join(args) + ")", lists) or lists[0]
            hint: str | None = f"Perhaps you meant to call the function {func}{near}"
        else:
            near = _close(name, sorted(self.cache.routines))
            hint = f"Perhaps you meant to call the function {self.schema}.{near}" if near else None
        raise PgrstError(404, "PGRST202", f"Could not find the function {func}{listed} in the schema cache",
                         f"Searched for the function {func}{searched}"
                         + (" or with a single unnamed json/jsonb parameter" if post else "")
                         + ", but no matches were found in the schema cache.", hint)

    def _call(self, conn: psycopg.Connection[Any], req: Request, name: str) -> Answer:
        q = Query.parse(req.pairs, rpc=True)
        if req.method == "POST":
            payload = self._body(req)
            if payload is None:
                payload = {}
            if not isinstance(payload, dict):
                raise PgrstError(400, "PGRST102", "Empty or invalid json")
        else:
            payload = dict(q.args)
        routine = self._routine(name, list(payload), req.method == "POST")
        b = Builder(self.cache)
        fn = b.table(routine.name)
        given = [p for p in routine.params if p.name in payload]
        named = sql.SQL(", ").join(sql.SQL("{n} := pgrst_body.{n}").format(n=sql.Identifier(p.name)) for p in given)
        call = sql.SQL("{fn}({args})").format(fn=fn, args=named)
        if routine.kind in ("scalar", "void"):
            source = sql.SQL("(SELECT {call} AS pgrst_scalar) AS pgrst_call").format(call=call)
        else:   # a sub-select, so the row is a record of the result's columns even for one OUT column
            source = sql.SQL("(SELECT * FROM {call}) AS pgrst_call").format(call=call)
        if given:
            typed = sql.SQL(", ").join(sql.Composed([sql.Identifier(p.name), sql.SQL(" "), p.type_sql]) for p in given)
            source = sql.SQL("json_to_record({body}::json) AS pgrst_body({typed}), LATERAL {source}").format(
                body=b.value(json.dumps(payload)), typed=typed, source=source)
        agg = {("scalar", False): "coalesce((json_agg(pgrst_call.pgrst_scalar) -> 0)::text, 'null')",
               ("scalar", True): "coalesce(json_agg(pgrst_call.pgrst_scalar), '[]')::text",
               ("void", False): "NULL::text", ("void", True): "NULL::text",
               ("composite", False): "coalesce((json_agg(pgrst_call) -> 0)::text, 'null')",
               ("composite", True): "coalesce(json_agg(pgrst_call), '[]')::text"}[(routine.kind, routine.returns_set)]
        stmt = sql.SQL("SELECT count(*), " + agg + " FROM {source}").format(source=source)
        rows, body = conn.execute(stmt, b.params).fetchone()  # type: ignore[misc]
        if routine.kind == "void":
            return Answer(204, b"", None, [("Content-Range", content_range(0, rows - 1, None))])
        if req.single and (routine.returns_set and rows != 1):
            raise _singular(rows)
        headers = [("Content-Range", content_range(0, rows - 1, None))]
        return _json_answer(200, None if req.method == "HEAD" else body, req.single, headers)


def _whole_row(rel: Relation, b: Builder) -> sql.Composable:
    """The affected row as the relation's row type (``ROW(t.*)``: a column named like its
    table cannot shadow it, as a bare ``t`` could)."""
    return sql.SQL("ROW({a}.*)::{t}").format(a=sql.Identifier(rel.name), t=b.table(rel.name))


def _singular(rows: int) -> PgrstError:
    return PgrstError(406, "PGRST116", "Cannot coerce the result to a single JSON object",
                      f"The result contains {rows} rows")


# --- HTTP ---------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    """A thread per connection; remembers its sockets so stop() closes idle keep-alives."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.open: set[socket.socket] = set()
        self.open_lock = threading.Lock()

    def close_all(self) -> None:
        with self.open_lock:
            for sock in list(self.open):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def _handler(double: PostgrestDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = _IDLE_TIMEOUT_S
        server: _Server

        def setup(self) -> None:
            super().setup()
            with self.server.open_lock:
                self.server.open.add(self.connection)

        def finish(self) -> None:
            with self.server.open_lock:
                self.server.open.discard(self.connection)
            super().finish()

        def _serve(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            code: str | None = None
            try:
                if not (split.path == PREFIX or split.path.startswith(PREFIX + "/")):
                    raise PgrstError(404, "PGRST125", "Invalid path specified in request URL")
                headers = {k.lower(): ", ".join(self.headers.get_all(k) or []) for k in set(self.headers.keys())}
                req = Request(self.command, split.path[len(PREFIX):], parse_qsl(split.query, keep_blank_values=True),
                              headers, body)
                answer = double.handle(req)
            except (PgrstError, psycopg.Error) as exc:   # psycopg: e.g. the database is unreachable
                err = exc if isinstance(exc, PgrstError) else from_pg(exc)
                code = err.code
                answer = Answer(err.status, json.dumps(err.body()).encode(), "application/json; charset=utf-8",
                                list(err.headers))
            except Exception as exc:  # noqa: BLE001 - a bug in the double answers 500, never hangs the app
                code = "PGRSTX00"
                err = PgrstError(500, "PGRSTX00", f"PostgREST double failed: {type(exc).__name__}: {exc}")
                answer = Answer(500, json.dumps(err.body()).encode(), "application/json; charset=utf-8")
            double.log.append((self.command, self.path, answer.status, code))
            del double.log[:-5000]
            self.send_response(answer.status)
            for name, value in answer.headers:
                self.send_header(name, value)
            if answer.content_type:
                self.send_header("Content-Type", answer.content_type)
            if answer.status not in (204, 304):
                self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if self.command != "HEAD" and answer.status not in (204, 304):
                self.wfile.write(answer.body)

        do_GET = do_HEAD = do_POST = do_PATCH = do_DELETE = do_PUT = do_OPTIONS = _serve  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    return Handler

