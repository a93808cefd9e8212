"""runbook.toml `[maintenance]`: the runbook's "Database Maintenance" section as data.

The high-volume tables and their maintenance cadence, the thresholds the weekly and monthly
queries use, and the runbook's list of indices that must exist ("Creating Missing
Indices"), kept as table + columns so the indices are judged by what they index, never by
the name a deployment happened to give them.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import PlainValidator, model_validator

from plugins.contract.toml_schema import Int, Number, Str, Table, check, fail, positive, shape, unique, validate

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


def _ratio(value: float) -> float:
    if not 0 < value <= 1:
        raise fail(f"must be a ratio in (0, 1], got {value!r}")
    return value


def _at_least_zero(value: float) -> float:
    if value < 0:
        raise fail(f"must be greater than or equal to 0, got {value!r}")
    return value


def _at_least_one(value: float) -> float:
    if value < 1:
        raise fail(f"must be at least 1, got {value!r}")
    return value


def _name(value: str) -> str:
    if not value.strip():
        raise fail("must not be empty")
    return value


Name = Annotated[Str, check(_name)]
Ratio = Annotated[Number, check(_ratio)]
Count = Annotated[Int, check(_at_least_zero)]


class _HighVolume(Table):
    NOT_A_TABLE = "must be a table"

    table: Name
    vacuum_within_days: Annotated[Int, check(positive)] | None = None
    analyze_within_days: Annotated[Int, check(positive)] | None = None
    rows_per_day: Annotated[Number, check(positive)] | None = None
    time_column: Name | None = None

    @model_validator(mode="after")
    def _rows_need_their_column(self) -> _HighVolume:
        if self.given("rows_per_day") != self.given("time_column"):
            raise fail("rows_per_day and time_column go together (the last day's rows are counted on the column "
                       "that dates them)")
        return self


def _column(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise fail(f"must be a non-empty string, got {value!r}")
    return value


def _columns(columns: list[str]) -> list[str]:
    if not columns:
        raise fail("must not be empty")
    if len(set(columns)) != len(columns):
        raise fail("a column is listed twice")
    return columns


class _Index(Table):
    NOT_A_TABLE = "must be a table"

    name: Name
    table: Name
    columns: Annotated[list[Annotated[str, PlainValidator(_column)]], shape(list), check(_columns)]


def _tables(tables: list[_HighVolume]) -> list[_HighVolume]:
    unique(tables, "table")
    if not tables:
        raise fail("must not be empty")
    return tables


def _indices(indices: list[_Index]) -> list[_Index]:
    defined: set[tuple[str, tuple[str, ...]]] = set()
    for i, idx in enumerate(indices):
        columns = tuple(idx.columns)
        if (idx.table, columns) in defined:
            raise fail(f"{idx.table}({', '.join(columns)}) is listed twice", at=i)
        defined.add((idx.table, columns))
    return indices


class MaintenanceSection(Table):
    # Keys are looked for in the file's order; values are checked in the fields' (the tables
    # and indices first, then the thresholds).
    KEY_ORDER = ("high_volume_tables", "dead_tuple_max_ratio", "dead_tuple_min_count", "table_bloat_max_ratio",
                 "index_bloat_max_ratio", "bloat_min_bytes", "unused_index_min_bytes", "unused_index_max_scans",
                 "slow_query_mean_ms", "slow_query_min_calls", "growth_top_tables", "growth_max_factor",
                 "unused_index_window_days", "required_indices")

    high_volume_tables: Annotated[list[_HighVolume], shape(list), check(_tables)]
    required_indices: Annotated[list[_Index], shape(list), check(_indices)]
    dead_tuple_min_count: Count
    unused_index_max_scans: Count
    unused_index_window_days: Annotated[Number, check(_at_least_zero)] = 30.0
    bloat_min_bytes: Annotated[Int, check(positive)]
    unused_index_min_bytes: Annotated[Int, check(positive)]
    slow_query_mean_ms: Annotated[Number, check(positive)]
    slow_query_min_calls: Annotated[Int, check(positive)]
    growth_top_tables: Annotated[Int, check(positive)]
    dead_tuple_max_ratio: Ratio
    table_bloat_max_ratio: Ratio
    index_bloat_max_ratio: Ratio
    growth_max_factor: Annotated[Number, check(_at_least_one)] = 3.0

    def contract(self) -> MaintenanceContract:
        return MaintenanceContract(
            high_volume_tables=tuple(
                HighVolumeTable(t.table, t.vacuum_within_days, t.analyze_within_days,
                                float(t.rows_per_day) if t.rows_per_day is not None else None, t.time_column)
                for t in self.high_volume_tables),
            dead_tuple_max_ratio=float(self.dead_tuple_max_ratio),
            dead_tuple_min_count=self.dead_tuple_min_count,
            table_bloat_max_ratio=float(self.table_bloat_max_ratio),
            index_bloat_max_ratio=float(self.index_bloat_max_ratio),
            bloat_min_bytes=self.bloat_min_bytes,
            unused_index_min_bytes=self.unused_index_min_bytes,
            unused_index_max_scans=self.unused_index_max_scans,
            slow_query_mean_ms=float(self.slow_query_mean_ms),
            slow_query_min_calls=self.slow_query_min_calls,
            growth_top_tables=self.growth_top_tables,
            required_indices=tuple(RequiredIndex(i.name, i.table, tuple(i.columns)) for i in self.required_indices),
            growth_max_factor=float(self.growth_max_factor),
            unused_index_window_days=float(self.unused_index_window_days),
        )


def parse(path: Path, table: dict[str, Any]) -> MaintenanceContract:
    return validate(MaintenanceSection, table, path, SECTION).contract()


# PostgreSQL truncates identifiers to NAMEDATALEN - 1 bytes.
_MAX_IDENTIFIER_BYTES = 63


_SIMPLE_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_$]*$")


@functools.cache
def _keywords_needing_quotes() -> frozenset[str]:
    # PostgreSQL's own keyword lists; imported when a statement is written, not when the
    # contract is read (the reference app reads runbook.toml and has no pglast).
    from pglast import keywords

    return frozenset(keywords.RESERVED_KEYWORDS | keywords.COL_NAME_KEYWORDS | keywords.TYPE_FUNC_NAME_KEYWORDS)


def _quote(identifier: str) -> str:
    """Quote an identifier the way PostgreSQL's quote_ident does: only when it must be."""
    if _SIMPLE_IDENTIFIER.match(identifier) and identifier not in _keywords_needing_quotes():
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
