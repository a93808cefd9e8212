"""runbook.toml: the runbook as data — what must hold, in the names the checks read.

``load_runbook`` validates the whole file (respelled by a dialect, plugins.contract.dialects)
before any test runs or any process starts: a wrong file costs the operator one clear line,
not a half-started stack or a traceback. ``RunbookFile`` is the file's model: the core tables
here (names, endpoints, the deep report, timeouts), and one section per area in the area's
own module (``[health]`` in plugins.contract.health, ``[runtime]`` in .runtime, …), whose
parsed object ``Runbook.section(name)`` returns. Adding a section = a module whose ``Table``
model's ``contract()`` returns the parsed object, one field of ``RunbookFile`` and one line of
``RunbookFile.sections``; adding a key = a field of its table (and of the object it becomes).
(A little over the ~450-line budget: the runbook object and the core tables it is read from
are one subject.)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, model_validator

from plugins.contract.dialects import RUNBOOK_DIALECT, Drift, dialect_path, respelled
from plugins.contract.health import HealthSection
from plugins.contract.maintenance import MaintenanceSection
from plugins.contract.report import ReportSection, WaiverTable, waivers_of
from plugins.contract.runbook_links import anchor, parse_heading
from plugins.contract.runbook_lint import LintSection
from plugins.contract.runtime import RuntimeSection
from plugins.contract.schema import SchemaSection
from plugins.contract.security import SecuritySection
from plugins.contract.toml_schema import (
    AnyList,
    AnyTable,
    ConfigError,
    Int,
    Number,
    Str,
    Table,
    fail,
    load_toml,
    one_of,
    positive,
    str_list,
    validate,
    within,
)

MIGRATION_SOURCES = ("table", "settings")
DEEP_PARTS = ("redis", "supabase", "tables", "views", "migrations", "hard_guards")
REQUIRED_ENDPOINTS = ("health", "ready", "deep", "schema", "rate", "circuit")
MAX_RETRIES = 3


@dataclass(frozen=True)
class HttpPolicy:
    connect_timeout_s: float
    read_timeout_s: float
    liveness_budget_ms: int
    # Retries of an idempotent read whose connection dropped mid-answer (0 = none).
    retries: int = 1
    # The whole of one GET (connect, every read, its retries) ends by then, however slowly the
    # server trickles its answer; the per-read timeout alone cannot bound that.
    total_timeout_s: float = 15.0
    # A body is read until this many MB, decoded (a gzip bomb is stopped there), never further.
    max_body_mb: float = 4.0


@dataclass(frozen=True)
class DbSessionPolicy:
    statement_timeout_ms: int
    lock_timeout_ms: int
    connect_timeout_s: int
    application_name: str
    # Retries of a READ ONLY statement whose (previously working) connection dropped.
    retries: int = 1


@dataclass(frozen=True)
class DeepContract:
    """How a deployment's /health/deep report is read (paths and words).

    A part is one JSON path, or several (a deployment may split the runbook's hard guards
    into ``checks.environment`` and ``checks.project_ref``): every one must be ok.
    ``part_warning`` words mean "ok, but look" (the part passes with a warning).
    """

    status_path: str
    healthy: tuple[str, ...]
    part_ok: tuple[str, ...]
    environment_path: str
    project_ref_path: str
    parts: dict[str, tuple[str, ...]]
    part_warning: tuple[str, ...] = ()
    # Parts the deployment reports beyond the runbook's six (dotted paths; the name is the
    # last step): not judged one by one, but a failing one explains a 503 (JC-DEEP-01) and
    # counts in the report's consistency (JC-DEEP-08).
    other_parts: tuple[str, ...] = ()
    # Words of the migrations part that mean "the schema is behind the code" (Case 4) although
    # the deployment does not count them as a failure of its own (e.g. a 'warning').
    migrations_behind: tuple[str, ...] = ()

    @property
    def part_fine(self) -> tuple[str, ...]:
        """Words of a part that does not fail (ok, or ok with a warning)."""
        return self.part_ok + self.part_warning


@dataclass(frozen=True)
class Runbook:
    """The runbook as data. Every name a check reads comes from here."""

    path: Path
    sha256: str
    dialect: str
    drift: tuple[Drift, ...]
    name: str
    version: str
    runbook_url: str
    schema: str
    critical_tables: tuple[str, ...]
    critical_views: tuple[str, ...]
    settings_table: str
    migrations_table: str
    environment_key: str
    project_ref_key: str
    schema_version_key: str
    endpoints: dict[str, tuple[str, ...]]
    deep: DeepContract
    http: HttpPolicy
    thresholds: dict[str, float]
    db_session: DbSessionPolicy
    extras: dict[str, Any] = field(default_factory=dict)
    # Where the applied migrations are recorded: "table" (the runbook's _migrations log) or
    # "settings" (only the app_settings row schema_version_key, kept by hand; the row
    # schema_applied_at_key, when not "", says when it was applied).
    migrations_source: str = "table"
    schema_applied_at_key: str = ""
    # The runbook document's outline ("## Heading" lines, in order): invariant links point at
    # the deepest heading their section names (plugins.contract.runbook_links).
    runbook_headings: tuple[str, ...] = ()

    def runbook_link(self, section: str) -> str:
        """The URL of the runbook heading a runbook section names."""
        return f"{self.runbook_url}#{anchor(section, self.runbook_headings)}"

    @property
    def migration_log(self) -> str:
        """What the applied migrations are read from, as an operator would name it."""
        if self.migrations_source == "settings":
            return f"{self.settings_table}.{self.schema_version_key}"
        return f"{self.schema}.{self.migrations_table}"

    def section(self, name: str) -> Any:
        """The parsed object of a section of its own module (see RunbookFile)."""
        try:
            return self.extras[name]
        except KeyError:
            raise ConfigError(f"{self.path}: {name}: missing required section") from None


# --- how runbook.toml is written: the core tables --------------------------------------------
#
# The core tables declare their keys and types; their values are checked by
# RunbookFile.core(), in the order an operator has always been told about them (after every
# area's section, whose module checks its own).


class ContractTable(Table):
    name: Str
    version: Str
    runbook_url: Str
    runbook_headings: AnyList = []


class DatabaseTable(Table):
    """The database names /health/deep and the checks look at (the reference app too)."""

    schema_: Str = Field(alias="schema")
    critical_tables: AnyList
    critical_views: AnyList
    settings_table: Str
    migrations_table: Str
    migrations_source: Str = "table"


class GuardsTable(Table):
    """The app_settings keys of the hard guards and of the schema version."""

    environment_key: Str
    project_ref_key: Str
    schema_version_key: Str
    schema_applied_at_key: Str = ""


class DeepTable(Table):
    status_path: Str
    healthy: AnyList
    part_ok: AnyList
    environment_path: Str
    project_ref_path: Str
    parts: AnyTable
    part_warning: AnyList = []
    other_parts: AnyList = []
    migrations_behind: AnyList = []


class HttpTable(Table):
    connect_timeout_s: Number
    read_timeout_s: Number
    liveness_budget_ms: Int
    retries: Int = 1
    total_timeout_s: Number = HttpPolicy.total_timeout_s
    max_body_mb: Number = HttpPolicy.max_body_mb

    # Each must be greater than 0 (RunbookFile.core).
    POSITIVE: ClassVar[tuple[str, ...]] = ("connect_timeout_s", "read_timeout_s", "liveness_budget_ms", "total_timeout_s", "max_body_mb")

    def policy(self) -> HttpPolicy:
        return HttpPolicy(connect_timeout_s=float(self.connect_timeout_s), read_timeout_s=float(self.read_timeout_s),
                          liveness_budget_ms=int(self.liveness_budget_ms), retries=int(self.retries),
                          total_timeout_s=float(self.total_timeout_s), max_body_mb=float(self.max_body_mb))


class DatabaseSessionTable(Table):
    statement_timeout_ms: Int
    lock_timeout_ms: Int
    connect_timeout_s: Int
    application_name: Str
    retries: Int = 1

    def policy(self) -> DbSessionPolicy:
        return DbSessionPolicy(statement_timeout_ms=self.statement_timeout_ms, lock_timeout_ms=self.lock_timeout_ms,
                               connect_timeout_s=self.connect_timeout_s, application_name=self.application_name,
                               retries=self.retries)


def _headings(value: list[Any]) -> tuple[str, ...]:
    headings = str_list(value, nonempty=False)
    for i, entry in enumerate(headings):
        if parse_heading(entry) is None:
            raise fail(f"must look like '## Heading text', got {entry!r}", at=i)
    return tuple(headings)


def _parts(value: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    parts: dict[str, tuple[str, ...]] = {}
    for part, paths in value.items():
        if part not in DEEP_PARTS:
            raise fail(f"unknown part (allowed: {', '.join(DEEP_PARTS)})", at=part)
        if isinstance(paths, list):
            parts[part] = tuple(within(part, str_list, paths))
        elif isinstance(paths, str) and paths:
            parts[part] = (paths,)
        else:
            raise fail("must be a JSON path string or a list of them", at=part)
    for part in DEEP_PARTS:
        if part not in parts:
            raise fail("missing required key", at=part)
    return parts


def _not_ok(part_ok: list[Any]) -> Any:
    def rule(words: list[Any]) -> tuple[str, ...]:
        found = tuple(str_list(words, nonempty=False))
        for word in found:
            if word in part_ok:
                raise fail(f"{word!r} is also listed under deep.part_ok")
        return found

    return rule


def _other_parts(parts: dict[str, tuple[str, ...]]) -> Any:
    def rule(value: list[Any]) -> tuple[str, ...]:
        others = tuple(str_list(value, nonempty=False))
        named = {p for paths in parts.values() for p in paths}
        for i, other in enumerate(others):
            if any(not step for step in other.split(".")):
                raise fail(f"{other!r} is not a dotted JSON path", at=i)
            if other in named:
                raise fail(f"{other!r} is already a part of deep.parts", at=i)
        return others

    return rule


def _endpoints(value: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    endpoints: dict[str, tuple[str, ...]] = {}
    for name, paths in value.items():
        if not isinstance(paths, list):
            raise fail("must be a list of paths", at=name)
        for i, p in enumerate(within(name, str_list, paths)):
            if not p.startswith("/"):
                raise fail(f"path must start with '/', got {p!r}", at=f"{name}[{i}]")
        endpoints[name] = tuple(paths)
    for name in REQUIRED_ENDPOINTS:
        if name not in endpoints:
            raise fail("missing required key", at=name)
    return endpoints


def _thresholds(value: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, number in value.items():
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise fail(f"must be a number, got {number!r}", at=key)
        out[key] = float(number)
    return out


def _retries(value: int) -> int:
    if not 0 <= value <= MAX_RETRIES:
        raise fail(f"must be between 0 and {MAX_RETRIES}, got {value!r}")
    return value


@dataclass(frozen=True)
class _Core:
    """The core tables' values, checked (RunbookFile.core)."""

    headings: tuple[str, ...]
    critical_tables: tuple[str, ...]
    critical_views: tuple[str, ...]
    endpoints: dict[str, tuple[str, ...]]
    thresholds: dict[str, float]
    deep: DeepContract
    http: HttpPolicy
    db_session: DbSessionPolicy


@dataclass(frozen=True)
class RunbookNames:
    """The database names of ``[database]`` and ``[guards]``: what /health/deep and
    /health/schema look at (all the reference app reads of runbook.toml, load_names)."""

    schema: str
    critical_tables: tuple[str, ...]
    critical_views: tuple[str, ...]
    settings_table: str
    migrations_table: str
    environment_key: str
    project_ref_key: str
    schema_version_key: str


def _names(db: DatabaseTable, guards: GuardsTable) -> RunbookNames:
    return RunbookNames(
        schema=db.schema_,
        critical_tables=tuple(within("database.critical_tables", str_list, db.critical_tables)),
        critical_views=tuple(within("database.critical_views", str_list, db.critical_views)),
        settings_table=db.settings_table, migrations_table=db.migrations_table,
        environment_key=guards.environment_key, project_ref_key=guards.project_ref_key,
        schema_version_key=guards.schema_version_key,
    )


class RunbookFile(Table):
    """runbook.toml (respelled by its dialect): every table, in the order they are checked —
    each area's section, then the core tables."""

    KEY_ORDER = ("contract", "database", "guards", "endpoints", "deep", "http", "thresholds", "database_session",
                 "schema", "runbook_lint", "health", "maintenance", "security", "report", "waivers", "runtime")

    schema_: SchemaSection = Field(alias="schema")
    runbook_lint: LintSection
    health: HealthSection
    maintenance: MaintenanceSection
    security: SecuritySection
    report: ReportSection
    waivers: WaiverTable
    runtime: RuntimeSection
    contract: ContractTable
    database: DatabaseTable
    guards: GuardsTable
    http: HttpTable
    database_session: DatabaseSessionTable
    deep: DeepTable
    endpoints: AnyTable
    thresholds: AnyTable

    @model_validator(mode="after")
    def _core_values(self) -> RunbookFile:
        self.core()
        return self

    def core(self) -> _Core:
        """The core tables' values, each checked, in this order."""
        deep, http, dbs = self.deep, self.http, self.database_session
        parts = within("deep.parts", _parts, deep.parts)
        part_warning = within("deep.part_warning", _not_ok(deep.part_ok), deep.part_warning)
        other_parts = within("deep.other_parts", _other_parts(parts), deep.other_parts)
        behind = within("deep.migrations_behind", _not_ok(deep.part_ok), deep.migrations_behind)
        within("database.migrations_source", lambda v: one_of(MIGRATION_SOURCES, v), self.database.migrations_source)
        endpoints = within("endpoints", _endpoints, self.endpoints)
        thresholds = within("thresholds", _thresholds, self.thresholds)
        for key in HttpTable.POSITIVE:
            within(f"http.{key}", positive, getattr(http, key))
        for key in ("statement_timeout_ms", "lock_timeout_ms", "connect_timeout_s"):
            within(f"database_session.{key}", positive, getattr(dbs, key))
        within("http.retries", _retries, http.retries)
        within("database_session.retries", _retries, dbs.retries)
        headings = within("contract.runbook_headings", _headings, self.contract.runbook_headings)
        names = _names(self.database, self.guards)
        return _Core(
            headings=headings,
            critical_tables=names.critical_tables,
            critical_views=names.critical_views,
            endpoints=endpoints,
            thresholds=thresholds,
            deep=DeepContract(
                status_path=deep.status_path,
                healthy=tuple(within("deep.healthy", str_list, deep.healthy)),
                part_ok=tuple(within("deep.part_ok", str_list, deep.part_ok)),
                environment_path=deep.environment_path,
                project_ref_path=deep.project_ref_path,
                parts=parts,
                part_warning=part_warning,
                other_parts=other_parts,
                migrations_behind=behind,
            ),
            http=http.policy(),
            db_session=dbs.policy(),
        )

    def sections(self) -> dict[str, Any]:
        """Each area's parsed section, by its name in the file (Runbook.section)."""
        return {
            "schema": self.schema_.contract(),
            "runbook_lint": self.runbook_lint.contract(),
            "health": self.health.contract(),
            "maintenance": self.maintenance.contract(),
            "security": self.security.contract(),
            "report": self.report.contract(),
            "waivers": waivers_of(self.waivers),
            "runtime": self.runtime.contract(),
        }


def load_runbook(path: Path, dialect: str | None = None) -> Runbook:
    path = Path(path)
    raw, drift, path_for_errors = respelled(path, dialect)
    rb = validate(RunbookFile, raw, path_for_errors)
    core = rb.core()
    digest = hashlib.sha256(path.read_bytes())
    if drift:
        digest.update(dialect_path(path, dialect or "").read_bytes())
    db, guards = rb.database, rb.guards
    return Runbook(
        path=path,
        sha256=digest.hexdigest(),
        dialect=dialect or RUNBOOK_DIALECT,
        drift=tuple(drift),
        name=rb.contract.name,
        version=rb.contract.version,
        runbook_url=rb.contract.runbook_url,
        runbook_headings=core.headings,
        schema=db.schema_,
        critical_tables=core.critical_tables,
        critical_views=core.critical_views,
        settings_table=db.settings_table,
        migrations_table=db.migrations_table,
        environment_key=guards.environment_key,
        project_ref_key=guards.project_ref_key,
        schema_version_key=guards.schema_version_key,
        endpoints=core.endpoints,
        deep=core.deep,
        http=core.http,
        thresholds=core.thresholds,
        db_session=core.db_session,
        extras=rb.sections(),
        migrations_source=db.migrations_source,
        schema_applied_at_key=guards.schema_applied_at_key,
    )


class _NamesFile(Table):
    """The two tables of runbook.toml the reference app reads."""

    database: DatabaseTable
    guards: GuardsTable

    @model_validator(mode="after")
    def _names_listed(self) -> _NamesFile:
        _names(self.database, self.guards)
        return self


def load_names(path: Path) -> RunbookNames:
    """The names of runbook.toml's ``[database]`` and ``[guards]``, as written (no dialect),
    checked as load_runbook checks them; the file's other tables are not read."""
    raw = load_toml(Path(path))
    tables = validate(_NamesFile, {k: raw[k] for k in ("database", "guards") if k in raw}, path)
    return _names(tables.database, tables.guards)
