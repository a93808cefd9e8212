"""Loading and validating the two contract files: targets.toml (where) and runbook.toml (what).

Both are validated completely before any test runs or any process starts: a wrong file must
cost the operator one clear line, not a half-started stack or a traceback. Every problem is a
``ConfigError`` whose message names the file and the dotted key at fault.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plugins.contract.dialects import RUNBOOK_DIALECT, Drift, dialect_path, respelled
from plugins.contract.toml_schema import ConfigError, _Spec, _check_table, _join, _str_list


# --- runbook.toml -------------------------------------------------------------------------

# Sections an area adds to runbook.toml, each parsed (and validated) by the area's own
# function: "module:function", called as fn(path: Path, table: dict) -> object, raising
# ConfigError naming `<section>.<key>`. Access the parsed object with Runbook.section(name).
# Adding an area = one line here; nothing else in this module changes.
EXTRA_SECTIONS: dict[str, str] = {
    "schema": "plugins.contract.schema:parse",
    "runbook_lint": "plugins.contract.runbook_lint:parse",
    "health": "plugins.contract.health:parse",
    "maintenance": "plugins.contract.maintenance:parse",
    "security": "plugins.contract.security:parse",
    "report": "plugins.contract.report:parse_report",
    "waivers": "plugins.contract.report:parse_waivers",
    "runtime": "plugins.contract.runtime:parse",
}


@dataclass(frozen=True)
class HttpPolicy:
    connect_timeout_s: float
    read_timeout_s: float
    liveness_budget_ms: int
    # Retries of an idempotent read whose connection dropped mid-answer (0 = none).
    retries: int = 1


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
        from plugins.contract.runbook_links import anchor

        return f"{self.runbook_url}#{anchor(section, self.runbook_headings)}"

    @property
    def migration_log(self) -> str:
        """What the applied migrations are read from, as an operator would name it."""
        if self.migrations_source == "settings":
            return f"{self.settings_table}.{self.schema_version_key}"
        return f"{self.schema}.{self.migrations_table}"

    def section(self, name: str) -> Any:
        """The parsed object of an extension section (see EXTRA_SECTIONS)."""
        try:
            return self.extras[name]
        except KeyError:
            raise ConfigError(f"{self.path}: {name}: missing required section") from None


_RUNBOOK_SPEC: _Spec = {
    "contract": (dict, True),
    "database": (dict, True),
    "guards": (dict, True),
    "endpoints": (dict, True),
    "deep": (dict, True),
    "http": (dict, True),
    "thresholds": (dict, True),
    "database_session": (dict, True),
}
def _runbook_headings(path: Path, value: list[Any]) -> tuple[str, ...]:
    from plugins.contract.runbook_links import parse_heading

    headings = _str_list(path, "contract.runbook_headings", value, nonempty=False)
    for i, entry in enumerate(headings):
        if parse_heading(entry) is None:
            raise ConfigError(f"{path}: contract.runbook_headings[{i}]: must look like '## Heading text', got {entry!r}")
    return tuple(headings)


_CONTRACT_SPEC: _Spec = {"name": (str, True), "version": (str, True), "runbook_url": (str, True),
                         "runbook_headings": (list, False)}
_DATABASE_SPEC: _Spec = {
    "schema": (str, True),
    "critical_tables": (list, True),
    "critical_views": (list, True),
    "settings_table": (str, True),
    "migrations_table": (str, True),
    "migrations_source": (str, False),
}
MIGRATION_SOURCES = ("table", "settings")
_GUARDS_SPEC: _Spec = {
    "environment_key": (str, True),
    "project_ref_key": (str, True),
    "schema_version_key": (str, True),
    "schema_applied_at_key": (str, False),
}
_DEEP_SPEC: _Spec = {
    "status_path": (str, True),
    "healthy": (list, True),
    "part_ok": (list, True),
    "environment_path": (str, True),
    "project_ref_path": (str, True),
    "parts": (dict, True),
    "part_warning": (list, False),
    "other_parts": (list, False),
    "migrations_behind": (list, False),
}
DEEP_PARTS = ("redis", "supabase", "tables", "views", "migrations", "hard_guards")
REQUIRED_ENDPOINTS = ("health", "ready", "deep", "schema", "rate", "circuit")
_HTTP_SPEC: _Spec = {
    "connect_timeout_s": ((int, float), True),
    "read_timeout_s": ((int, float), True),
    "liveness_budget_ms": (int, True),
    "retries": (int, False),
}
_DB_SESSION_SPEC: _Spec = {
    "statement_timeout_ms": (int, True),
    "lock_timeout_ms": (int, True),
    "connect_timeout_s": (int, True),
    "application_name": (str, True),
    "retries": (int, False),
}
MAX_RETRIES = 3


def _positive(path: Path, key: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(f"{path}: {key}: must be greater than 0, got {value!r}")


def _import_parser(ref: str) -> Any:
    import importlib

    module, _, func = ref.partition(":")
    return getattr(importlib.import_module(module), func)


def load_runbook(path: Path, dialect: str | None = None) -> Runbook:
    path = Path(path)
    spec = {**_RUNBOOK_SPEC, **{name: (dict, True) for name in EXTRA_SECTIONS}}
    raw, drift, path_for_errors = respelled(path, dialect)
    data = _check_table(path_for_errors, "", raw, spec)
    path_real, path = path, path_for_errors
    extras = {name: _import_parser(ref)(path, data[name]) for name, ref in EXTRA_SECTIONS.items()}
    contract = _check_table(path, "contract", data["contract"], _CONTRACT_SPEC)
    db = _check_table(path, "database", data["database"], _DATABASE_SPEC)
    guards = _check_table(path, "guards", data["guards"], _GUARDS_SPEC)
    http = _check_table(path, "http", data["http"], _HTTP_SPEC)
    dbs = _check_table(path, "database_session", data["database_session"], _DB_SESSION_SPEC)
    deep = _check_table(path, "deep", data["deep"], _DEEP_SPEC)
    parts: dict[str, tuple[str, ...]] = {}
    for part, value in deep["parts"].items():
        if part not in DEEP_PARTS:
            raise ConfigError(
                f"{path}: deep.parts.{part}: unknown part (allowed: {', '.join(DEEP_PARTS)})"
            )
        if isinstance(value, list):
            parts[part] = tuple(_str_list(path, f"deep.parts.{part}", value))
        elif isinstance(value, str) and value:
            parts[part] = (value,)
        else:
            raise ConfigError(f"{path}: deep.parts.{part}: must be a JSON path string or a list of them")
    for part in DEEP_PARTS:
        if part not in parts:
            raise ConfigError(f"{path}: deep.parts.{part}: missing required key")
    warn_words = _str_list(path, "deep.part_warning", deep.get("part_warning", []), nonempty=False)
    for word in warn_words:
        if word in deep["part_ok"]:
            raise ConfigError(f"{path}: deep.part_warning: {word!r} is also listed under deep.part_ok")
    other_parts = tuple(_str_list(path, "deep.other_parts", deep.get("other_parts", []), nonempty=False))
    for i, other in enumerate(other_parts):
        if any(not step for step in other.split(".")):
            raise ConfigError(f"{path}: deep.other_parts[{i}]: {other!r} is not a dotted JSON path")
        if other in {p for paths in parts.values() for p in paths}:
            raise ConfigError(f"{path}: deep.other_parts[{i}]: {other!r} is already a part of deep.parts")
    behind = tuple(_str_list(path, "deep.migrations_behind", deep.get("migrations_behind", []), nonempty=False))
    for word in behind:
        if word in deep["part_ok"]:
            raise ConfigError(f"{path}: deep.migrations_behind: {word!r} is also listed under deep.part_ok")
    source = db.get("migrations_source", "table")
    if source not in MIGRATION_SOURCES:
        raise ConfigError(
            f"{path}: database.migrations_source: must be one of {', '.join(MIGRATION_SOURCES)}, got {source!r}"
        )

    endpoints_raw = data["endpoints"]
    endpoints: dict[str, tuple[str, ...]] = {}
    for name, paths in endpoints_raw.items():
        key = f"endpoints.{name}"
        if not isinstance(paths, list):
            raise ConfigError(f"{path}: {key}: must be a list of paths")
        for i, p in enumerate(_str_list(path, key, paths)):
            if not p.startswith("/"):
                raise ConfigError(f"{path}: {key}[{i}]: path must start with '/', got {p!r}")
        endpoints[name] = tuple(paths)
    for name in REQUIRED_ENDPOINTS:
        if name not in endpoints:
            raise ConfigError(f"{path}: endpoints.{name}: missing required key")

    thresholds: dict[str, float] = {}
    for key, value in data["thresholds"].items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: thresholds.{key}: must be a number, got {value!r}")
        thresholds[key] = float(value)

    for key in ("connect_timeout_s", "read_timeout_s", "liveness_budget_ms"):
        _positive(path, f"http.{key}", http[key])
    for key in ("statement_timeout_ms", "lock_timeout_ms", "connect_timeout_s"):
        _positive(path, f"database_session.{key}", dbs[key])
    for section, table in (("http", http), ("database_session", dbs)):
        retries = table.get("retries", 1)
        if not 0 <= retries <= MAX_RETRIES:
            raise ConfigError(f"{path}: {section}.retries: must be between 0 and {MAX_RETRIES}, got {retries!r}")

    digest = hashlib.sha256(path_real.read_bytes())
    if drift:
        digest.update(dialect_path(path_real, dialect or "").read_bytes())
    return Runbook(
        path=path_real,
        sha256=digest.hexdigest(),
        dialect=dialect or RUNBOOK_DIALECT,
        drift=tuple(drift),
        name=contract["name"],
        version=contract["version"],
        runbook_url=contract["runbook_url"],
        runbook_headings=_runbook_headings(path, contract.get("runbook_headings", [])),
        schema=db["schema"],
        critical_tables=tuple(_str_list(path, "database.critical_tables", db["critical_tables"])),
        critical_views=tuple(_str_list(path, "database.critical_views", db["critical_views"])),
        settings_table=db["settings_table"],
        migrations_table=db["migrations_table"],
        environment_key=guards["environment_key"],
        project_ref_key=guards["project_ref_key"],
        schema_version_key=guards["schema_version_key"],
        endpoints=endpoints,
        deep=DeepContract(
            status_path=deep["status_path"],
            healthy=tuple(_str_list(path, "deep.healthy", deep["healthy"])),
            part_ok=tuple(_str_list(path, "deep.part_ok", deep["part_ok"])),
            environment_path=deep["environment_path"],
            project_ref_path=deep["project_ref_path"],
            parts=parts,
            part_warning=tuple(warn_words),
            other_parts=other_parts,
            migrations_behind=behind,
        ),
        http=HttpPolicy(
            connect_timeout_s=float(http["connect_timeout_s"]),
            read_timeout_s=float(http["read_timeout_s"]),
            liveness_budget_ms=int(http["liveness_budget_ms"]),
            retries=int(http.get("retries", 1)),
        ),
        thresholds=thresholds,
        db_session=DbSessionPolicy(**dbs),
        extras=extras,
        migrations_source=source,
        schema_applied_at_key=guards.get("schema_applied_at_key", ""),
    )


