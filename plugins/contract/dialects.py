"""Dialect files: ``dialects/<name>.toml`` respells the runbook contract in a deployment's words.

A dialect only respells keys runbook.toml has (a typo can never leave the runbook's word
silently in force); every respelling is a ``Drift`` the certificate lists. Facts no key can
respell — a job the runbook names that the code no longer schedules — are the dialect's
``[[disagreements]]``, each citing the file of the deployment's code it is read from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator

from plugins.contract.toml_schema import ConfigError, Str, Table, check, fail, join, unique, validate
from plugins.contract.toml_schema import load_toml as _load_toml

RUNBOOK_DIALECT = "runbook"
DISAGREEMENTS = "disagreements"


@dataclass(frozen=True)
class Drift:
    """One place where a deployment's dialect respells the runbook (for the drift section).

    ``source`` is set for a *disagreement*: a fact of the deployment that no key of the
    contract can respell (a job the runbook names that the code no longer schedules, a
    pause switch no code reads), declared in the dialect's ``[[disagreements]]`` with the
    file of the deployment's code it comes from."""

    key: str
    runbook: Any
    deployment: Any
    source: str = ""


def dialect_path(runbook_path: Path, name: str) -> Path:
    return Path(runbook_path).parent / "dialects" / f"{name}.toml"


def overlay(base: dict[str, Any], over: dict[str, Any], path: Path, prefix: str = "") -> list[Drift]:
    """Respell `base` in place with `over`; every differing value is a Drift.

    A dialect may only respell what the runbook says: a key the runbook does not have is an
    error, so a typo in a dialect can never silently leave the runbook's word in force.
    """
    drift: list[Drift] = []
    for key, value in over.items():
        dotted = join(prefix, key)
        if key not in base:
            raise ConfigError(f"{path}: {dotted}: not a key of the runbook contract (a dialect only respells it)")
        if isinstance(value, dict) and isinstance(base[key], dict):
            drift += overlay(base[key], value, path, dotted)
        elif value != base[key]:
            drift.append(Drift(dotted, base[key], value))
            base[key] = value
    return drift


def _filled(value: str) -> str:
    if not value.strip():
        raise fail("must not be empty")
    return value


Filled = Annotated[Str, check(_filled)]


class _Disagreement(Table):
    NOT_A_TABLE = "must be a table"

    topic: Filled
    runbook: Filled
    deployment: Filled
    source: Filled


def _array_of_tables(value: Any) -> Any:
    if not isinstance(value, list):
        raise fail(f"must be an array of tables ([[{DISAGREEMENTS}]])")
    return value


def _one_per_topic(found: list[_Disagreement]) -> list[_Disagreement]:
    return unique(found, "topic")


class _Disagreements(Table):
    """The ``[[disagreements]]`` of a dialect file (its respellings are checked by ``overlay``)."""

    disagreements: Annotated[list[_Disagreement], BeforeValidator(_array_of_tables), check(_one_per_topic)] = []


def disagreements(path: Path, over: dict[str, Any]) -> list[Drift]:
    """A dialect's ``[[disagreements]]`` (removed from ``over``): where the runbook and the
    deployment's code disagree beyond respelling a key, each with the code file it is read
    from. Listed in the certificate's drift section beside the respellings."""
    raw = over.pop(DISAGREEMENTS, [])
    found = validate(_Disagreements, {DISAGREEMENTS: raw}, path).disagreements
    return [Drift(d.topic, d.runbook, d.deployment, d.source) for d in found]


def respelled(path: Path, dialect: str | None) -> tuple[dict[str, Any], list[Drift], Path]:
    """runbook.toml as data, respelled by ``dialect`` (None or "runbook": as written): the raw
    tables, the drift (respellings, then disagreements), and the name errors give the file
    (``runbook.toml + <dialect>.toml`` when a dialect respells it)."""
    raw = _load_toml(path)
    if not dialect or dialect == RUNBOOK_DIALECT:
        return raw, [], path
    over_path = dialect_path(path, dialect)
    if not over_path.exists():
        raise ConfigError(f"{over_path}: dialect {dialect!r}: file not found")
    over = _load_toml(over_path)
    notes = disagreements(over_path, over)
    drift = overlay(raw, over, over_path) + notes
    return raw, drift, Path(f"{path} + {over_path.name}")


def raw_contract(runbook_path: Path, dialect: str) -> dict[str, Any]:
    """runbook.toml with the dialect's respellings applied (the data checks read)."""
    raw = _load_toml(runbook_path)
    if dialect != RUNBOOK_DIALECT:
        over = _load_toml(dialect_path(runbook_path, dialect))
        over.pop(DISAGREEMENTS, None)  # facts beside the contract, not respellings of it
        overlay(raw, over, dialect_path(runbook_path, dialect))
    return raw


def at_key(raw: dict[str, Any], key: str) -> Any:
    node: Any = raw
    for step in key.split("."):
        if not isinstance(node, dict) or step not in node:
            return None
        node = node[step]
    return node


def leaf_diff(a: Any, b: Any, key: str) -> list[tuple[str, Any, Any]]:
    """(dotted key, a's value, b's value) for every leaf where a and b differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[tuple[str, Any, Any]] = []
        for k in [*a, *(k for k in b if k not in a)]:
            out += leaf_diff(a.get(k), b.get(k), f"{key}.{k}")
        return out
    return [] if a == b else [(key, a, b)]


def known_dialects(runbook_path: Path) -> list[str]:
    """"runbook" and every dialects/*.toml beside runbook.toml, in name order."""
    folder = dialect_path(runbook_path, "x").parent
    names = sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []
    return [RUNBOOK_DIALECT, *(n for n in names if n != RUNBOOK_DIALECT)]
