"""runbook.toml `[security]`: the Supabase security premises and the secret rotation table.

Which schemas the Data API exposes and what its roles are called (a deployment may name
them its own way), the runbook's "Rotation Schedule" — secret, interval, last rotated —
which the operators update at step 9 ("DOCUMENT") of every rotation, the secret scan's
policy (`[security.secret_scan]`): what a placeholder is, and the path classes findings are
reported by — and which tables of the exposed schemas are published reference data
(`public_tables`): every other table holds personal or operational data, and no API role may
be given all of its rows by a policy (JC-SEC-01).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plugins.contract.toml_schema import ConfigError, _check_table, _Spec

SECTION = "security"


@dataclass(frozen=True)
class SecretRotation:
    """One row of the rotation schedule. Only the secret's *name*: never its value."""

    secret: str
    interval_days: int
    last_rotated: dt.date

    @property
    def due(self) -> dt.date:
        return self.last_rotated + dt.timedelta(days=self.interval_days)

    def overdue_on(self, today: dt.date) -> bool:
        """Past due when today is after the due date (rotating on the due day is on time)."""
        return today > self.due


# Words of a key or value: camelCase and snake_case, dashes, dots, slashes.
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def fold(text: str) -> str:
    """The judgement's own folding (fixtures.secret_placeholders), which the policy's words
    are validated with. Lower case without accents: `NÃO` and `nao` are one word."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).lower()


def words(text: str) -> list[str]:
    """The words of an identifier or value, folded: `mySecret-KEY_2` → my, secret, key, 2."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return [w.lower() for w in _WORD.findall(plain)]


@functools.lru_cache(maxsize=256)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """A path glob matched against the whole repository-relative path: `*` and `?` stay
    within one folder, `**/` is any number of folders (none included), a trailing `/**`
    everything under a folder."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("/**", i) and i + 3 == len(pattern):
            out.append("(?:/.*)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


@dataclass(frozen=True)
class PathClass:
    """A kind of file findings are reported by (code, tests, docs, CI...): never an exemption."""

    name: str
    paths: tuple[str, ...]  # globs, relative to the scanned checkout

    def matches(self, path: str) -> bool:
        return any(glob_regex(p).match(path) for p in self.paths)


@dataclass(frozen=True)
class SecretScanPolicy:
    """JC-SEC-05's policy. Placeholders are judged on the value (fixtures.secret_placeholders):
    the words a placeholder may be made of, the words that start or end a fill-in phrase, and
    the key words that name an identifier. Path
    classes only group the findings in the message — the first class whose glob matches,
    else ``default_class``."""

    placeholder_words: frozenset[str] = frozenset()
    identifier_words: frozenset[str] = frozenset()
    fill_in_words: frozenset[str] = frozenset()
    path_classes: tuple[PathClass, ...] = ()
    default_class: str = "code"

    def path_class(self, path: str) -> str:
        return next((c.name for c in self.path_classes if c.matches(path)), self.default_class)

    def class_order(self) -> tuple[str, ...]:
        """The classes in the order findings are reported."""
        names = [c.name for c in self.path_classes]
        return tuple([self.default_class, *(n for n in names if n != self.default_class)])


@dataclass(frozen=True)
class SecurityContract:
    exposed_schemas: tuple[str, ...]
    anon_role: str
    api_roles: tuple[str, ...]
    secret_rotation: tuple[SecretRotation, ...]
    # JC-SEC-05: the budget of the git history scan; past it the check is undecidable.
    history_scan_timeout_s: float = 300.0
    secret_scan: SecretScanPolicy = field(default_factory=SecretScanPolicy)
    # JC-SEC-01: tables whose rows every API role may read (published reference data, e.g. a
    # list of specialties): `table` in any exposed schema, or `schema.table`. Default-deny:
    # a table not listed holds personal or operational data.
    public_tables: tuple[str, ...] = ()

    def is_public(self, schema: str, table: str) -> bool:
        """Whether ``schema.table`` is declared published reference data."""
        return table in self.public_tables or f"{schema}.{table}" in self.public_tables


_SPEC: _Spec = {
    "exposed_schemas": (list, True),
    "anon_role": (str, True),
    "api_roles": (list, True),
    "secret_rotation": (list, True),
    "history_scan_timeout_s": ((int, float), False),
    "secret_scan": (dict, False),
    "public_tables": (list, False),
}
_SCAN_SPEC: _Spec = {
    "placeholder_words": (list, True),
    "identifier_words": (list, True),
    "fill_in_words": (list, True),
    "default_class": (str, True),
    "path_classes": (list, True),
}
_CLASS_SPEC: _Spec = {"name": (str, True), "paths": (list, True)}
_ROTATION_SPEC: _Spec = {
    "secret": (str, True),
    "interval_days": (int, True),
    "last_rotated": (dt.date, True),
}


def _names(path: Path, key: str, value: list[Any]) -> tuple[str, ...]:
    if not value:
        raise ConfigError(f"{path}: {key}: must not be empty")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(f"{path}: {key}[{i}]: must be a non-empty string, got {item!r}")
    if len(set(value)) != len(value):
        raise ConfigError(f"{path}: {key}: a name is listed twice")
    return tuple(value)


def _words(path: Path, key: str, value: list[Any]) -> frozenset[str]:
    """Words as the judgement compares them: each must be one word as it splits values
    (`my_key` is two: my, key), in any case, accents ignored."""
    names = _names(path, key, value)
    for i, item in enumerate(names):
        if words(item) != [fold(item)] or item.isdigit():
            raise ConfigError(f"{path}: {key}[{i}]: must be a single word of letters, got {item!r}")
    return frozenset(fold(n) for n in names)


def _scan_policy(path: Path, raw: Any) -> SecretScanPolicy:
    key = f"{SECTION}.secret_scan"
    data = _check_table(path, key, raw, _SCAN_SPEC)
    if not data["default_class"].strip():
        raise ConfigError(f"{path}: {key}.default_class: must not be empty")
    classes: list[PathClass] = []
    for i, entry in enumerate(data["path_classes"]):
        where = f"{key}.path_classes[{i}]"
        item = _check_table(path, where, entry, _CLASS_SPEC)
        if not item["name"].strip():
            raise ConfigError(f"{path}: {where}.name: must not be empty")
        if item["name"] in (c.name for c in classes):
            raise ConfigError(f"{path}: {where}.name: {item['name']!r} is listed twice")
        globs = _names(path, f"{where}.paths", item["paths"])
        for j, glob in enumerate(globs):
            if glob.startswith("/") or "\\" in glob:
                raise ConfigError(f"{path}: {where}.paths[{j}]: a glob relative to the checkout with `/` "
                                  f"separators, got {glob!r}")
        classes.append(PathClass(item["name"], globs))
    return SecretScanPolicy(
        placeholder_words=_words(path, f"{key}.placeholder_words", data["placeholder_words"]),
        identifier_words=_words(path, f"{key}.identifier_words", data["identifier_words"]),
        fill_in_words=_words(path, f"{key}.fill_in_words", data["fill_in_words"]),
        path_classes=tuple(classes), default_class=data["default_class"],
    )


def parse(path: Path, table: dict[str, Any], *, today: dt.date | None = None) -> SecurityContract:
    data = _check_table(path, SECTION, table, _SPEC)
    today = today or dt.datetime.now(dt.UTC).date()
    if not data["anon_role"].strip():
        raise ConfigError(f"{path}: {SECTION}.anon_role: must not be empty")
    api_roles = _names(path, f"{SECTION}.api_roles", data["api_roles"])
    if data["anon_role"] not in api_roles:
        raise ConfigError(f"{path}: {SECTION}.api_roles: must include anon_role {data['anon_role']!r}")

    timeout = data.get("history_scan_timeout_s", SecurityContract.history_scan_timeout_s)
    if not 0 < timeout <= 86_400:
        raise ConfigError(f"{path}: {SECTION}.history_scan_timeout_s: must be > 0 and at most 86400, got {timeout!r}")

    rotations: list[SecretRotation] = []
    for i, raw in enumerate(data["secret_rotation"]):
        key = f"{SECTION}.secret_rotation[{i}]"
        # TOML: `last_rotated = 2026-02-09` (unquoted) is a date; a date-time is a date too in
        # Python, and a quoted "2026-02-09" is a string: refuse both, saying how to write it.
        stamp = raw.get("last_rotated") if isinstance(raw, dict) else None
        if isinstance(stamp, dt.datetime):
            raise ConfigError(f"{path}: {key}.last_rotated: must be a date (YYYY-MM-DD), not a date-time")
        if stamp is not None and not isinstance(stamp, dt.date):
            raise ConfigError(
                f"{path}: {key}.last_rotated: must be a date (unquoted YYYY-MM-DD), got "
                f"{type(stamp).__name__} {stamp!r}"
            )
        entry = _check_table(path, key, raw, _ROTATION_SPEC)
        if not entry["secret"].strip():
            raise ConfigError(f"{path}: {key}.secret: must not be empty")
        if entry["interval_days"] <= 0:
            raise ConfigError(f"{path}: {key}.interval_days: must be greater than 0, got {entry['interval_days']!r}")
        if entry["last_rotated"] > today:
            raise ConfigError(
                f"{path}: {key}.last_rotated: {entry['last_rotated'].isoformat()} is in the future"
            )
        if any(r.secret == entry["secret"] for r in rotations):
            raise ConfigError(f"{path}: {key}.secret: {entry['secret']!r} is listed twice")
        rotations.append(SecretRotation(entry["secret"], entry["interval_days"], entry["last_rotated"]))

    public = data.get("public_tables", [])
    if public:
        public = list(_names(path, f"{SECTION}.public_tables", public))
    for i, name in enumerate(public):
        if name.count(".") > 1 or name.startswith(".") or name.endswith("."):
            raise ConfigError(f"{path}: {SECTION}.public_tables[{i}]: a table or schema.table, got {name!r}")

    return SecurityContract(
        exposed_schemas=_names(path, f"{SECTION}.exposed_schemas", data["exposed_schemas"]),
        anon_role=data["anon_role"],
        api_roles=api_roles,
        secret_rotation=tuple(rotations),
        history_scan_timeout_s=float(timeout),
        secret_scan=_scan_policy(path, data["secret_scan"]) if "secret_scan" in data else SecretScanPolicy(),
        public_tables=tuple(public),
    )
