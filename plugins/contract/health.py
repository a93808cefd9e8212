"""runbook.toml `[health]`: how to read the health endpoints beyond the deep gate.

The runbook documents /health/ready, /health/schema, /health/rate and /health/circuit by
example only, and deployments spell their JSON their own way; every path and word the
health checks read comes from this section, validated strictly before any test runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Any

from pydantic import Field, model_validator

from plugins.contract.toml_schema import Table, fail, got, join, validate, within, within_table

SECTION = "health"


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


# --- how [health] is written: the endpoints' own vocabulary, each key read strictly ---------
#
# Read key by key, as the health checks read the endpoints: a key is missing, or wrong, when
# it is read (HealthSection.contract), each with the rule of what it names.


def _string(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise fail(f"must be a non-empty string, {got(value)}")
    return value


def _dotted(value: str) -> str:
    if any(not step for step in value.split(".")):
        raise fail(f"{value!r} is not a dotted JSON path")
    return value


def _path(value: Any) -> str:
    return _dotted(_string(value))


def _optional_path(value: Any) -> str | None:
    """A dotted JSON path; "" means "not reported" (None)."""
    return None if value == "" else _path(value)


def _strings(value: Any, *, allow_empty: bool = False) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise fail(f"must be a list of strings, {got(value)}")
    if not value and not allow_empty:
        raise fail("must not be empty")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise fail(f"must be a non-empty string, got {item!r}", at=i)
    return tuple(value)


def _paths(value: Any) -> tuple[str, ...]:
    values = _strings(value, allow_empty=True)
    for i, item in enumerate(values):
        if any(not step for step in item.split(".")):
            raise fail(f"{item!r} is not a dotted JSON path", at=i)
    return values


def _http_codes(value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise fail(f"must be a non-empty list of HTTP status codes, {got(value)}")
    for i, code in enumerate(value):
        if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
            raise fail(f"must be an HTTP status code, got {code!r}", at=i)
    return tuple(value)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise fail(f"must be true or false, {got(value)}")
    return value


def _words(value: Any) -> tuple[str, ...]:
    return _strings(value, allow_empty=True)


class _Sub(Table):
    """A table below [health]: it is "a table" or nothing, and its keys are read one by one
    by HealthSection.contract() (a key is missing, or wrong, when it is read)."""

    NOT_A_TABLE = "must be a table"
    SHAPE_FIRST = False


class _Schema(_Sub):
    version_path: Any = None
    settings_version_path: Any = None
    expected_path: Any = None
    up_to_date_path: Any = None
    error_path: Any = None
    status_path: Any = None
    status_ok: Any = None


class _Namespace(_Sub):
    name: Any = None
    used_path: Any = None
    limit_path: Any = None


class _Rate(_Sub):
    namespaces_path: Any = None
    used_field: Any = None
    limit_field: Any = None
    namespaces: Any = None


class _Circuit(_Sub):
    integrations_path: Any = None
    state_field: Any = None
    protected: Any = None
    closed: Any = None
    open: Any = None
    half_open: Any = None
    per_process: Any = None


class _Reader:
    """Reads one key of a table with its rule, naming it below [health] when it fails."""

    def __init__(self, table: Table, prefix: str = "") -> None:
        self.table, self.prefix = table, prefix

    def __call__(self, key: str, rule: Callable[[Any], Any], *, required: bool = True, default: Any = None) -> Any:
        at = join(self.prefix, key)
        if not self.table.given(key):
            if required:
                raise fail("missing required key", at=at)
            return default
        return within(at, rule, getattr(self.table, key))


class HealthSection(Table):
    """[health]: its three tables are looked for first, then every key is read in turn."""

    SHAPE_FIRST = False

    schema_: _Schema = Field(alias="schema")
    rate: _Rate
    circuit: _Circuit
    ready_redis_path: Any = None
    ready_ok: Any = None
    ready_status_path: Any = None
    ready_status_ok: Any = None
    liveness_status_path: Any = None
    liveness_ok: Any = None
    ready_dependencies: Any = None
    part_unknown: Any = None
    part_skipped: Any = None
    unhealthy_http_status: Any = None
    deploy_flag_paths: Any = None
    db_environment_path: Any = None
    db_project_ref_path: Any = None

    @model_validator(mode="after")
    def _read(self) -> HealthSection:
        self.contract()
        return self

    def contract(self) -> HealthContract:
        """Every key read with its rule, in this order, as the contract object."""
        top, schema, rate, circuit = (_Reader(self), _Reader(self.schema_, "schema"), _Reader(self.rate, "rate"),
                                      _Reader(self.circuit, "circuit"))
        closed, open_, half = circuit("closed", _strings), circuit("open", _strings), circuit("half_open", _strings)
        seen: dict[str, str] = {}
        for key, words in (("closed", closed), ("open", open_), ("half_open", half)):
            for word in words:
                if word in seen:
                    raise fail(f"{word!r} is also listed under {SECTION}.circuit.{seen[word]}", at=f"circuit.{key}")
                seen[word] = key
        status_path = top("ready_status_path", _optional_path, required=False)
        status_ok = top("ready_status_ok", _words, required=False, default=())
        if status_path and not status_ok:
            raise fail(f"must not be empty when {SECTION}.ready_status_path is set", at="ready_status_ok")
        live_path = top("liveness_status_path", _optional_path, required=False)
        live_ok = top("liveness_ok", _words, required=False, default=())
        if live_path and not live_ok:
            raise fail(f"must not be empty when {SECTION}.liveness_status_path is set", at="liveness_ok")
        schema_word = schema("status_path", _optional_path, required=False)
        schema_ok = schema("status_ok", _words, required=False, default=())
        if schema_word and not schema_ok:
            raise fail(f"must not be empty when {SECTION}.schema.status_path is set", at="schema.status_ok")
        unknown = top("part_unknown", _words)
        skipped = top("part_skipped", _words, required=False, default=())
        for word in skipped:
            if word not in unknown:
                raise fail(f"{word!r} is not listed under {SECTION}.part_unknown", at="part_skipped")
        per_process = circuit("per_process", _flag, required=False, default=False)
        return HealthContract(
            ready_redis_path=top("ready_redis_path", _path),
            ready_ok=top("ready_ok", _strings),
            ready_status_path=status_path,
            ready_status_ok=status_ok,
            liveness_status_path=live_path,
            liveness_ok=live_ok,
            ready_dependencies=top("ready_dependencies", _paths, required=False, default=()),
            part_unknown=unknown,
            part_skipped=skipped,
            unhealthy_http_status=top("unhealthy_http_status", _http_codes),
            deploy_flag_paths=top("deploy_flag_paths", _paths),
            db_environment_path=top("db_environment_path", _optional_path, required=False),
            db_project_ref_path=top("db_project_ref_path", _optional_path, required=False),
            schema=SchemaEndpoint(
                version_path=schema("version_path", _path),
                settings_version_path=schema("settings_version_path", _optional_path, required=False),
                expected_path=schema("expected_path", _optional_path, required=False),
                up_to_date_path=schema("up_to_date_path", _optional_path, required=False),
                error_path=schema("error_path", _optional_path, required=False),
                status_path=schema_word,
                status_ok=schema_ok,
            ),
            rate=RateEndpoint(
                namespaces_path=rate("namespaces_path", _path),
                used_field=rate("used_field", _string),
                limit_field=rate("limit_field", _string),
                namespaces=rate("namespaces", _namespaces, required=False, default=()),
            ),
            circuit=CircuitEndpoint(
                integrations_path=circuit("integrations_path", _path),
                state_field=circuit("state_field", _string),
                protected=circuit("protected", _strings),
                closed=closed,
                open=open_,
                half_open=half,
                per_process=per_process,
            ),
        )


def _namespaces(value: Any) -> tuple[RateNamespace, ...]:
    """`health.rate.namespaces`: a list of {name, used_path, limit_path}, unique names."""
    if not isinstance(value, list):
        raise fail(f"must be a list of tables, {got(value)}")
    found: list[RateNamespace] = []
    for i, item in enumerate(value):
        entry = _Reader(within_table(i, _Namespace, item), f"[{i}]")
        name = entry("name", _string)
        if name in {n.name for n in found}:
            raise fail(f"{name!r} is listed twice", at=f"[{i}].name")
        found.append(RateNamespace(name, entry("used_path", _path), entry("limit_path", _path)))
    return tuple(found)


def parse(path: Path, table: dict[str, Any]) -> HealthContract:
    """Parse `[health]` (a section of plugins.contract.runbook.RunbookFile)."""
    return validate(HealthSection, table, path, SECTION).contract()
