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
from typing import Any

from plugins.contract.toml_schema import ConfigError, _check_table, _Spec, _str_list

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


_SPEC: _Spec = {"expected_version_from": (list, True), "lint": (dict, True)}
_SOURCE_SPEC: _Spec = {"endpoint": (str, True), "path": (str, True)}
_LINT_SPEC: _Spec = {
    "rules": (list, True),
    "high_volume_tables": (list, True),
    "all_tables": (bool, True),
    "assume_in_transaction": (bool, True),
}


def parse(path: Path, table: dict[str, Any]) -> SchemaContract:
    """Validate `[schema]` strictly: unknown key or wrong type → ConfigError naming the key."""
    data = _check_table(path, "schema", table, _SPEC)
    sources_raw = data["expected_version_from"]
    if not sources_raw:
        raise ConfigError(f"{path}: schema.expected_version_from: must not be empty")
    sources: list[VersionSource] = []
    for i, item in enumerate(sources_raw):
        key = f"schema.expected_version_from[{i}]"
        src = _check_table(path, key, item, _SOURCE_SPEC)
        for field in ("endpoint", "path"):
            value = src[field]
            if not value or value != value.strip() or ".." in value or value.startswith("."):
                raise ConfigError(f"{path}: {key}.{field}: must be a non-empty name or dotted path, got {value!r}")
        sources.append(VersionSource(src["endpoint"], src["path"]))

    lint = _check_table(path, "schema.lint", data["lint"], _LINT_SPEC)
    rules = _str_list(path, "schema.lint.rules", lint["rules"])
    for i, rule in enumerate(rules):
        if not _RULE_NAME.match(rule):
            raise ConfigError(f"{path}: schema.lint.rules[{i}]: not a squawk rule name, got {rule!r}")
    if len(set(rules)) != len(rules):
        raise ConfigError(f"{path}: schema.lint.rules: lists a rule twice")
    tables = _str_list(path, "schema.lint.high_volume_tables", lint["high_volume_tables"], nonempty=False)
    return SchemaContract(
        expected_version_from=tuple(sources),
        lint=LintPolicy(
            rules=tuple(rules),
            high_volume_tables=tuple(tables),
            all_tables=lint["all_tables"],
            assume_in_transaction=lint["assume_in_transaction"],
        ),
    )
