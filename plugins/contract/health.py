"""runbook.toml `[health]`: how to read the health endpoints beyond the deep gate.

The runbook documents /health/ready, /health/schema, /health/rate and /health/circuit by
example only, and deployments spell their JSON their own way; every path and word the
health checks read comes from this section, validated strictly before any test runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plugins.contract.toml_schema import ConfigError


@dataclass(frozen=True)
class SchemaEndpoint:
    """/health/schema: where the app says which version it sees."""

    version_path: str  # newest applied migration, as the app read it from _migrations
    settings_version_path: str | None  # app_settings.schema_version, as the app read it
    # The version the app's code expects, and the app's own verdict "current >= expected"
    # (None = the endpoint does not report it).
    expected_path: str | None = None
    up_to_date_path: str | None = None
    # Where an endpoint that answers 200 even when it failed puts its error (None = nowhere).
    error_path: str | None = None
    # The endpoint's own status word and the words meaning "up to date" (None = no word).
    status_path: str | None = None
    status_ok: tuple[str, ...] = ()


@dataclass(frozen=True)
class RateNamespace:
    """One namespace of a body that is not a map: where its usage and its limit are."""

    name: str
    used_path: str  # relative to RateEndpoint.namespaces_path
    limit_path: str


@dataclass(frozen=True)
class RateEndpoint:
    """/health/rate: one object per namespace with its usage and its limit (the runbook's
    "usage statistics per namespace"), or — when ``namespaces`` lists them — a fixed set of
    counters under ``namespaces_path`` (a deployment answering ``{"rate_limit":
    {"msgs_hora", "limite_hora", …}}``)."""

    namespaces_path: str
    used_field: str
    limit_field: str
    namespaces: tuple[RateNamespace, ...] = ()


@dataclass(frozen=True)
class CircuitEndpoint:
    """/health/circuit: the state of each protected integration (Scenario 5)."""

    integrations_path: str
    state_field: str
    protected: tuple[str, ...]
    closed: tuple[str, ...]
    open: tuple[str, ...]
    half_open: tuple[str, ...]
    # The states are the API process's own in-memory breakers (each process keeps its own),
    # not a state shared by every process (e.g. in Redis).
    per_process: bool = False


@dataclass(frozen=True)
class HealthContract:
    """Everything a health check reads that [deep] and [endpoints] do not already say."""

    ready_redis_path: str
    ready_ok: tuple[str, ...]
    # /health/ready's own status word and the words meaning ready (None / () = the HTTP code
    # is the only verdict), and the dependencies it reports (paths to their words).
    ready_status_path: str | None
    ready_status_ok: tuple[str, ...]
    # /health's own status word and the words meaning alive (None: the contract reads no word)
    liveness_status_path: str | None
    liveness_ok: tuple[str, ...]
    ready_dependencies: tuple[str, ...]
    part_unknown: tuple[str, ...]
    # The part_unknown words meaning "deliberately not run" (a guard without its variable, a
    # dev check in production): compatible with a healthy report, unlike "could not check".
    part_skipped: tuple[str, ...]
    unhealthy_http_status: tuple[int, ...]
    deploy_flag_paths: tuple[str, ...]
    db_environment_path: str | None
    db_project_ref_path: str | None
    schema: SchemaEndpoint
    rate: RateEndpoint
    circuit: CircuitEndpoint


def _where(section: str, key: str) -> str:
    return f"{section}.{key}"


class _Table:
    """Strict reader of one TOML table: every key known, every value of its type."""

    def __init__(self, path: Path, section: str, table: Any, known: set[str]) -> None:
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {section}: must be a table")
        for key in table:
            if key not in known:
                allowed = ", ".join(sorted(known))
                raise ConfigError(f"{path}: {_where(section, key)}: unknown key (allowed: {allowed})")
        self.path, self.section, self.table = path, section, table

    def _fail(self, key: str, what: str, value: Any) -> ConfigError:
        return ConfigError(
            f"{self.path}: {_where(self.section, key)}: must be {what}, got {type(value).__name__} {value!r}"
        )

    def _missing(self, key: str) -> ConfigError:
        return ConfigError(f"{self.path}: {_where(self.section, key)}: missing required key")

    def string(self, key: str, *, required: bool = True) -> str | None:
        if key not in self.table:
            if required:
                raise self._missing(key)
            return None
        value = self.table[key]
        if not isinstance(value, str) or not value:
            raise self._fail(key, "a non-empty string", value)
        return value

    def path_string(self, key: str, *, required: bool = True) -> str | None:
        """A dotted JSON path; "" is accepted for an optional one and means "not reported"."""
        if not required and self.table.get(key) == "":
            return None
        value = self.string(key, required=required)
        if value is not None and any(not step for step in value.split(".")):
            raise ConfigError(f"{self.path}: {_where(self.section, key)}: {value!r} is not a dotted JSON path")
        return value

    def strings(self, key: str, *, allow_empty: bool = False) -> tuple[str, ...]:
        if key not in self.table:
            raise self._missing(key)
        value = self.table[key]
        if not isinstance(value, list):
            raise self._fail(key, "a list of strings", value)
        if not value and not allow_empty:
            raise ConfigError(f"{self.path}: {_where(self.section, key)}: must not be empty")
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item:
                raise ConfigError(
                    f"{self.path}: {_where(self.section, key)}[{i}]: must be a non-empty string, got {item!r}"
                )
        return tuple(value)

    def paths(self, key: str) -> tuple[str, ...]:
        values = self.strings(key, allow_empty=True)
        for i, value in enumerate(values):
            if any(not step for step in value.split(".")):
                raise ConfigError(
                    f"{self.path}: {_where(self.section, key)}[{i}]: {value!r} is not a dotted JSON path"
                )
        return values

    def http_codes(self, key: str) -> tuple[int, ...]:
        if key not in self.table:
            raise self._missing(key)
        value = self.table[key]
        if not isinstance(value, list) or not value:
            raise self._fail(key, "a non-empty list of HTTP status codes", value)
        for i, code in enumerate(value):
            if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
                raise ConfigError(
                    f"{self.path}: {_where(self.section, key)}[{i}]: must be an HTTP status code, got {code!r}"
                )
        return tuple(value)

    def sub(self, key: str, known: set[str]) -> _Table:
        if key not in self.table:
            raise self._missing(key)
        return _Table(self.path, _where(self.section, key), self.table[key], known)


def _rate_namespaces(path: Path, rate: _Table) -> tuple[RateNamespace, ...]:
    """`health.rate.namespaces`: optional list of {name, used_path, limit_path}, unique names."""
    raw = rate.table.get("namespaces", [])
    if not isinstance(raw, list):
        raise rate._fail("namespaces", "a list of tables", raw)
    found: list[RateNamespace] = []
    for i, item in enumerate(raw):
        entry = _Table(path, f"health.rate.namespaces[{i}]", item, _RATE_NAMESPACE)
        name = entry.string("name") or ""
        if name in {n.name for n in found}:
            raise ConfigError(f"{path}: health.rate.namespaces[{i}].name: {name!r} is listed twice")
        found.append(RateNamespace(name, entry.path_string("used_path") or "", entry.path_string("limit_path") or ""))
    return tuple(found)


_TOP = {
    "ready_redis_path", "ready_ok", "ready_status_path", "ready_status_ok", "ready_dependencies",
    "liveness_status_path", "liveness_ok",
    "part_unknown", "part_skipped", "unhealthy_http_status", "deploy_flag_paths",
    "db_environment_path", "db_project_ref_path", "schema", "rate", "circuit",
}
_SCHEMA = {"version_path", "settings_version_path", "expected_path", "up_to_date_path", "error_path",
           "status_path", "status_ok"}
_RATE = {"namespaces_path", "used_field", "limit_field", "namespaces"}
_RATE_NAMESPACE = {"name", "used_path", "limit_path"}
_CIRCUIT = {"integrations_path", "state_field", "protected", "closed", "open", "half_open", "per_process"}


def parse(path: Path, table: dict[str, Any]) -> HealthContract:
    """Parse `[health]` (registered in plugins.config.EXTRA_SECTIONS)."""
    top = _Table(path, "health", table, _TOP)
    schema = top.sub("schema", _SCHEMA)
    rate = top.sub("rate", _RATE)
    circuit = top.sub("circuit", _CIRCUIT)
    closed, open_, half = circuit.strings("closed"), circuit.strings("open"), circuit.strings("half_open")
    seen: dict[str, str] = {}
    for key, words in (("closed", closed), ("open", open_), ("half_open", half)):
        for word in words:
            if word in seen:
                raise ConfigError(
                    f"{path}: health.circuit.{key}: {word!r} is also listed under health.circuit.{seen[word]}"
                )
            seen[word] = key
    status_path = top.path_string("ready_status_path", required=False)
    status_ok = top.strings("ready_status_ok", allow_empty=True) if "ready_status_ok" in table else ()
    if status_path and not status_ok:
        raise ConfigError(f"{path}: health.ready_status_ok: must not be empty when health.ready_status_path is set")
    live_path = top.path_string("liveness_status_path", required=False)
    live_ok = top.strings("liveness_ok", allow_empty=True) if "liveness_ok" in table else ()
    if live_path and not live_ok:
        raise ConfigError(f"{path}: health.liveness_ok: must not be empty when health.liveness_status_path is set")
    schema_word = schema.path_string("status_path", required=False) or None
    schema_ok = schema.strings("status_ok", allow_empty=True) if "status_ok" in schema.table else ()
    if schema_word and not schema_ok:
        raise ConfigError(f"{path}: health.schema.status_ok: must not be empty when health.schema.status_path is set")
    unknown = top.strings("part_unknown", allow_empty=True)
    skipped = top.strings("part_skipped", allow_empty=True) if "part_skipped" in table else ()
    for word in skipped:
        if word not in unknown:
            raise ConfigError(f"{path}: health.part_skipped: {word!r} is not listed under health.part_unknown")
    per_process = circuit.table.get("per_process", False)
    if not isinstance(per_process, bool):
        raise circuit._fail("per_process", "true or false", per_process)
    return HealthContract(
        ready_redis_path=top.path_string("ready_redis_path") or "",
        ready_ok=top.strings("ready_ok"),
        ready_status_path=status_path,
        ready_status_ok=status_ok,
        liveness_status_path=live_path,
        liveness_ok=live_ok,
        ready_dependencies=top.paths("ready_dependencies") if "ready_dependencies" in table else (),
        part_unknown=unknown,
        part_skipped=skipped,
        unhealthy_http_status=top.http_codes("unhealthy_http_status"),
        deploy_flag_paths=top.paths("deploy_flag_paths"),
        db_environment_path=top.path_string("db_environment_path", required=False),
        db_project_ref_path=top.path_string("db_project_ref_path", required=False),
        schema=SchemaEndpoint(
            version_path=schema.path_string("version_path") or "",
            settings_version_path=schema.path_string("settings_version_path", required=False),
            expected_path=schema.path_string("expected_path", required=False) or None,
            up_to_date_path=schema.path_string("up_to_date_path", required=False) or None,
            error_path=schema.path_string("error_path", required=False) or None,
            status_path=schema_word,
            status_ok=schema_ok,
        ),
        rate=RateEndpoint(
            namespaces_path=rate.path_string("namespaces_path") or "",
            used_field=rate.string("used_field") or "",
            limit_field=rate.string("limit_field") or "",
            namespaces=_rate_namespaces(path, rate),
        ),
        circuit=CircuitEndpoint(
            integrations_path=circuit.path_string("integrations_path") or "",
            state_field=circuit.string("state_field") or "",
            protected=circuit.strings("protected"),
            closed=closed,
            open=open_,
            half_open=half,
            per_process=per_process,
        ),
    )
