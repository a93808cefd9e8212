"""Reading the contract files: TOML in, one strict validator, one-line errors out.

Every problem is a ``ConfigError`` whose message names the file and the dotted key at fault.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    """A contract file (or the environment it points to) is unusable. Exit code 4."""


# --- a small strict schema checker -------------------------------------------------------

_Spec = dict[str, tuple[type | tuple[type, ...], bool]]  # key -> (types, required)


def _typename(types: type | tuple[type, ...]) -> str:
    names = {
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        list: "a list",
        dict: "a table",
    }
    if isinstance(types, tuple) and set(types) == {int, float}:
        return "a number"
    if isinstance(types, tuple):
        return " or ".join(names.get(t, t.__name__) for t in types)
    return names.get(types, types.__name__)


def _check_table(path: Path, prefix: str, table: Any, spec: _Spec) -> dict[str, Any]:
    where = prefix or "(top level)"
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: {where}: must be a table")
    for key in table:
        if key not in spec:
            allowed = ", ".join(sorted(spec))
            raise ConfigError(f"{path}: {_join(prefix, key)}: unknown key (allowed: {allowed})")
    for key, (types, required) in spec.items():
        if key not in table:
            if required:
                raise ConfigError(f"{path}: {_join(prefix, key)}: missing required key")
            continue
        value = table[key]
        # bool is a subclass of int: never accept it where a number is meant.
        ok = isinstance(value, types) and not (
            isinstance(value, bool) and bool not in _as_tuple(types)
        )
        if not ok:
            raise ConfigError(
                f"{path}: {_join(prefix, key)}: must be {_typename(types)}, "
                f"got {type(value).__name__} {value!r}"
            )
    return table


def _as_tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _str_list(path: Path, key: str, value: list[Any], *, nonempty: bool = True) -> list[str]:
    if nonempty and not value:
        raise ConfigError(f"{path}: {key}: must not be empty")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise ConfigError(f"{path}: {key}[{i}]: must be a non-empty string, got {item!r}")
    return list(value)


def load_toml(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: malformed TOML: {exc}") from None


