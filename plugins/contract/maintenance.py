"""runbook.toml `[maintenance]`: the runbook's "Database Maintenance" section as data.

The high-volume tables and their maintenance cadence, the thresholds the weekly and monthly
queries use, and the runbook's list of indices that must exist ("Creating Missing
Indices"), kept as table + columns so the indices are judged by what they index, never by
the name a deployment happened to give them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pglast import keywords

from plugins.contract.toml_schema import ConfigError, _check_table, _Spec

SECTION = "maintenance"


@dataclass(frozen=True)
class HighVolumeTable:
    """A table of the runbook's "High-Volume Tables" with its maintenance window.

    ``None`` windows mean the runbook gives no fixed cadence (e.g. "after purge"): only the
    dead-tuple ratio is judged there.
    """

    table: str
    vacuum_within_days: int | None
    analyze_within_days: int | None
    # The runbook's "Rows/Day" and the indexed column that dates a row; a table with both
    # is judged on its last day's rows (JC-MAINT-07).
    rows_per_day: float | None = None
    time_column: str | None = None


@dataclass(frozen=True)
class RequiredIndex:
    """An index the runbook requires; ``name`` is the runbook's name, for messages only."""

    name: str
    table: str
    columns: tuple[str, ...]

    def create_statement(self, schema: str) -> str:
        """The runbook's own remedy: CREATE INDEX CONCURRENTLY (no write lock)."""
        return create_index_statement(schema, self.table, self.columns, self.name)


@dataclass(frozen=True)
class MaintenanceContract:
    high_volume_tables: tuple[HighVolumeTable, ...]
    dead_tuple_max_ratio: float
    dead_tuple_min_count: int
    table_bloat_max_ratio: float
    index_bloat_max_ratio: float
    bloat_min_bytes: int
    unused_index_min_bytes: int
    unused_index_max_scans: int
    slow_query_mean_ms: float
    slow_query_min_calls: int
    growth_top_tables: int
    required_indices: tuple[RequiredIndex, ...]
    growth_max_factor: float = 3.0
    # JC-MAINT-05: "fewer than N scans" says an index is unused only on statistics at least
    # this many days old (0: whatever their age, the runbook's query as written).
    unused_index_window_days: float = 30.0


_SPEC: _Spec = {
    "high_volume_tables": (list, True),
    "dead_tuple_max_ratio": ((int, float), True),
    "dead_tuple_min_count": (int, True),
    "table_bloat_max_ratio": ((int, float), True),
    "index_bloat_max_ratio": ((int, float), True),
    "bloat_min_bytes": (int, True),
    "unused_index_min_bytes": (int, True),
    "unused_index_max_scans": (int, True),
    "slow_query_mean_ms": ((int, float), True),
    "slow_query_min_calls": (int, True),
    "growth_top_tables": (int, True),
    "growth_max_factor": ((int, float), False),
    "unused_index_window_days": ((int, float), False),
    "required_indices": (list, True),
}
_TABLE_SPEC: _Spec = {
    "table": (str, True),
    "vacuum_within_days": (int, False),
    "analyze_within_days": (int, False),
    "rows_per_day": ((int, float), False),
    "time_column": (str, False),
}
_INDEX_SPEC: _Spec = {"name": (str, True), "table": (str, True), "columns": (list, True)}


def _ratio(path: Path, key: str, value: float) -> float:
    if not 0 < value <= 1:
        raise ConfigError(f"{path}: {SECTION}.{key}: must be a ratio in (0, 1], got {value!r}")
    return float(value)


def _positive(path: Path, key: str, value: float, *, zero_ok: bool = False) -> None:
    if value < 0 or (value == 0 and not zero_ok):
        raise ConfigError(f"{path}: {SECTION}.{key}: must be greater than {'or equal to ' if zero_ok else ''}0, got {value!r}")


def _name(path: Path, key: str, value: str) -> str:
    if not value.strip():
        raise ConfigError(f"{path}: {key}: must not be empty")
    return value


def parse(path: Path, table: dict[str, Any]) -> MaintenanceContract:
    data = _check_table(path, SECTION, table, _SPEC)

    tables: list[HighVolumeTable] = []
    seen: set[str] = set()
    for i, raw in enumerate(data["high_volume_tables"]):
        key = f"{SECTION}.high_volume_tables[{i}]"
        entry = _check_table(path, key, raw, _TABLE_SPEC)
        name = _name(path, f"{key}.table", entry["table"])
        if name in seen:
            raise ConfigError(f"{path}: {key}.table: {name!r} is listed twice")
        seen.add(name)
        for window in ("vacuum_within_days", "analyze_within_days"):
            if window in entry and entry[window] <= 0:
                raise ConfigError(f"{path}: {key}.{window}: must be greater than 0, got {entry[window]!r}")
        if ("rows_per_day" in entry) != ("time_column" in entry):
            raise ConfigError(f"{path}: {key}: rows_per_day and time_column go together (the last day's rows "
                              "are counted on the column that dates them)")
        if "rows_per_day" in entry and entry["rows_per_day"] <= 0:
            raise ConfigError(f"{path}: {key}.rows_per_day: must be greater than 0, got {entry['rows_per_day']!r}")
        time_column = _name(path, f"{key}.time_column", entry["time_column"]) if "time_column" in entry else None
        tables.append(HighVolumeTable(name, entry.get("vacuum_within_days"), entry.get("analyze_within_days"),
                                      float(entry["rows_per_day"]) if "rows_per_day" in entry else None,
                                      time_column))
    if not tables:
        raise ConfigError(f"{path}: {SECTION}.high_volume_tables: must not be empty")

    indices: list[RequiredIndex] = []
    defined: set[tuple[str, tuple[str, ...]]] = set()
    for i, raw in enumerate(data["required_indices"]):
        key = f"{SECTION}.required_indices[{i}]"
        entry = _check_table(path, key, raw, _INDEX_SPEC)
        columns = entry["columns"]
        if not columns:
            raise ConfigError(f"{path}: {key}.columns: must not be empty")
        for j, col in enumerate(columns):
            if not isinstance(col, str) or not col.strip():
                raise ConfigError(f"{path}: {key}.columns[{j}]: must be a non-empty string, got {col!r}")
        if len(set(columns)) != len(columns):
            raise ConfigError(f"{path}: {key}.columns: a column is listed twice")
        idx = RequiredIndex(_name(path, f"{key}.name", entry["name"]),
                            _name(path, f"{key}.table", entry["table"]), tuple(columns))
        if (idx.table, idx.columns) in defined:
            raise ConfigError(f"{path}: {key}: {idx.table}({', '.join(idx.columns)}) is listed twice")
        defined.add((idx.table, idx.columns))
        indices.append(idx)

    for key in ("dead_tuple_min_count", "unused_index_max_scans"):
        _positive(path, key, data[key], zero_ok=True)
    window = data.get("unused_index_window_days", MaintenanceContract.unused_index_window_days)
    _positive(path, "unused_index_window_days", window, zero_ok=True)
    for key in ("bloat_min_bytes", "unused_index_min_bytes", "slow_query_mean_ms",
                "slow_query_min_calls", "growth_top_tables"):
        _positive(path, key, data[key])

    return MaintenanceContract(
        high_volume_tables=tuple(tables),
        dead_tuple_max_ratio=_ratio(path, "dead_tuple_max_ratio", data["dead_tuple_max_ratio"]),
        dead_tuple_min_count=data["dead_tuple_min_count"],
        table_bloat_max_ratio=_ratio(path, "table_bloat_max_ratio", data["table_bloat_max_ratio"]),
        index_bloat_max_ratio=_ratio(path, "index_bloat_max_ratio", data["index_bloat_max_ratio"]),
        bloat_min_bytes=data["bloat_min_bytes"],
        unused_index_min_bytes=data["unused_index_min_bytes"],
        unused_index_max_scans=data["unused_index_max_scans"],
        slow_query_mean_ms=float(data["slow_query_mean_ms"]),
        slow_query_min_calls=data["slow_query_min_calls"],
        growth_top_tables=data["growth_top_tables"],
        required_indices=tuple(indices),
        growth_max_factor=_growth_factor(path, data.get("growth_max_factor", 3.0)),
        unused_index_window_days=float(window),
    )


def _growth_factor(path: Path, value: float) -> float:
    if value < 1:
        raise ConfigError(f"{path}: {SECTION}.growth_max_factor: must be at least 1, got {value!r}")
    return float(value)


# PostgreSQL truncates identifiers to NAMEDATALEN - 1 bytes.
_MAX_IDENTIFIER_BYTES = 63


_SIMPLE_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_$]*$")
_KEYWORDS_NEEDING_QUOTES = frozenset(
    keywords.RESERVED_KEYWORDS | keywords.COL_NAME_KEYWORDS | keywords.TYPE_FUNC_NAME_KEYWORDS
)


def _quote(identifier: str) -> str:
    """Quote an identifier the way PostgreSQL's quote_ident does: only when it must be."""
    if _SIMPLE_IDENTIFIER.match(identifier) and identifier not in _KEYWORDS_NEEDING_QUOTES:
        return identifier
    return '"' + identifier.replace('"', '""') + '"'


def create_index_statement(schema: str, table: str, columns: tuple[str, ...], name: str | None = None) -> str:
    """``CREATE INDEX CONCURRENTLY idx_<table>_<cols> ON <schema>.<table> (<cols>);``"""
    if name is None:
        name = "idx_" + table + "_" + "_".join(columns)
        while len(name.encode()) > _MAX_IDENTIFIER_BYTES:
            name = name[:-1]
    cols = ", ".join(_quote(c) for c in columns)
    return f"CREATE INDEX CONCURRENTLY {_quote(name)} ON {_quote(schema)}.{_quote(table)} ({cols});"
