"""The `[schema]` section of runbook.toml: how schema and migration checks read a deployment.

Rules 1 and 5 ("migration first, code second"; "verify /health/schema") need two things a
deployment may spell its own way: where the running app says which migration its code
expects, and which migration operations must never reach a production table. Both live in
runbook.toml, so no check hard-codes an endpoint path or a table name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from plugins.contract.toml_schema import Bool, OptStrList, Str, StrList, Table, check, fail, shape, validate

SECTION = "schema"
# squawk rule names are kebab-case words; squawk itself validates that each one exists.
_RULE_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


@dataclass(frozen=True)
class VersionSource:
    """One place the app reports its expected schema version: endpoint name + JSON path."""

    endpoint: str
    path: str


@dataclass(frozen=True)
class LintPolicy:
    """Which linter findings block a merge.

    ``rules`` are squawk rule names (operations that lock or rewrite a table, or fail on a
    populated one). A finding on one of ``high_volume_tables`` (the runbook's "High-Volume
    Tables") always blocks; elsewhere it blocks only when ``all_tables`` is true, and is
    reported as a note otherwise. ``assume_in_transaction`` tells the linter that each file
    is applied wrapped in one transaction.
    """

    rules: tuple[str, ...]
    high_volume_tables: tuple[str, ...]
    all_tables: bool
    assume_in_transaction: bool


@dataclass(frozen=True)
class SchemaContract:
    expected_version_from: tuple[VersionSource, ...]
    lint: LintPolicy


def _name_or_path(value: str) -> str:
    if not value or value != value.strip() or ".." in value or value.startswith("."):
        raise fail(f"must be a non-empty name or dotted path, got {value!r}")
    return value


NameOrPath = Annotated[Str, check(_name_or_path)]


class _Source(Table):
    NOT_A_TABLE = "must be a table"

    endpoint: NameOrPath
    path: NameOrPath


def _rules(rules: list[str]) -> list[str]:
    for i, rule in enumerate(rules):
        if not _RULE_NAME.match(rule):
            raise fail(f"not a squawk rule name, got {rule!r}", at=i)
    if len(set(rules)) != len(rules):
        raise fail("lists a rule twice")
    return rules


class _Lint(Table):
    rules: Annotated[StrList, check(_rules)]
    high_volume_tables: OptStrList
    all_tables: Bool
    assume_in_transaction: Bool


def _nonempty(value: list[Any]) -> list[Any]:
    if not value:
        raise fail("must not be empty")
    return value


class SchemaSection(Table):
    expected_version_from: Annotated[list[_Source], shape(list), check(_nonempty)]
    lint: _Lint

    def contract(self) -> SchemaContract:
        return SchemaContract(
            expected_version_from=tuple(VersionSource(s.endpoint, s.path) for s in self.expected_version_from),
            lint=LintPolicy(
                rules=tuple(self.lint.rules),
                high_volume_tables=tuple(self.lint.high_volume_tables),
                all_tables=self.lint.all_tables,
                assume_in_transaction=self.lint.assume_in_transaction,
            ),
        )


def parse(path: Path, table: dict[str, Any]) -> SchemaContract:
    """Validate `[schema]` strictly: unknown key or wrong type → ConfigError naming the key."""
    return validate(SchemaSection, table, path, SECTION).contract()
