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
from typing import Annotated, Any

from pydantic import AfterValidator, PlainValidator, ValidationInfo, model_validator

from plugins.contract.toml_schema import (
    Int, Number, Str, Table, check, fail, got, of_type, positive, shape, unique, validate,
)

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


# --- how [security] is written ------------------------------------------------------------


def _nonblank(value: str) -> str:
    if not value.strip():
        raise fail("must not be empty")
    return value


def _names(value: list[Any]) -> tuple[str, ...]:
    if not value:
        raise fail("must not be empty")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise fail(f"must be a non-empty string, got {item!r}", at=i)
    if len(set(value)) != len(value):
        raise fail("a name is listed twice")
    return tuple(value)


def _words(value: tuple[str, ...]) -> frozenset[str]:
    """Words as the judgement compares them: each must be one word as it splits values
    (`my_key` is two: my, key), in any case, accents ignored."""
    for i, item in enumerate(value):
        if words(item) != [fold(item)] or item.isdigit():
            raise fail(f"must be a single word of letters, got {item!r}", at=i)
    return frozenset(fold(n) for n in value)


def _globs(value: tuple[str, ...]) -> tuple[str, ...]:
    for j, glob in enumerate(value):
        if glob.startswith("/") or "\\" in glob:
            raise fail(f"a glob relative to the checkout with `/` separators, got {glob!r}", at=j)
    return value


def _date(value: Any) -> dt.date:
    return value  # type: ignore[no-any-return]  # checked by _Rotation.first


Nonblank = Annotated[Str, check(_nonblank)]
Names = Annotated[tuple[str, ...], of_type(list), check(_names)]
Words = Annotated[frozenset[str], of_type(list), check(_names), check(_words)]


class _Rotation(Table):
    NOT_A_TABLE = "must be a table"

    secret: Nonblank
    interval_days: Annotated[Int, check(positive)]
    last_rotated: Annotated[dt.date, PlainValidator(_date)]

    @classmethod
    def first(cls, data: dict[str, Any]) -> dict[str, Any]:
        # TOML: `last_rotated = 2026-02-09` (unquoted) is a date; a date-time is a date too in
        # Python, and a quoted "2026-02-09" is a string: refuse both, saying how to write it.
        stamp = data.get("last_rotated")
        if isinstance(stamp, dt.datetime):
            raise fail("must be a date (YYYY-MM-DD), not a date-time", at="last_rotated")
        if stamp is not None and not isinstance(stamp, dt.date):
            raise fail(f"must be a date (unquoted YYYY-MM-DD), {got(stamp)}", at="last_rotated")
        return data

    @model_validator(mode="after")
    def _not_in_the_future(self, info: ValidationInfo) -> _Rotation:
        today = (info.context or {}).get("today") or dt.datetime.now(dt.UTC).date()
        if self.last_rotated > today:
            raise fail(f"{self.last_rotated.isoformat()} is in the future", at="last_rotated")
        return self


def _rotations(rotations: list[_Rotation]) -> list[_Rotation]:
    return unique(rotations, "secret")


class _PathClass(Table):
    NOT_A_TABLE = "must be a table"

    name: Nonblank
    paths: Annotated[Names, check(_globs)]


def _class_names(classes: list[_PathClass]) -> list[_PathClass]:
    return unique(classes, "name")


class _SecretScan(Table):
    KEY_ORDER = ("placeholder_words", "identifier_words", "fill_in_words", "default_class", "path_classes")

    default_class: Nonblank
    path_classes: Annotated[list[_PathClass], shape(list), check(_class_names)]
    placeholder_words: Words
    identifier_words: Words
    fill_in_words: Words

    def policy(self) -> SecretScanPolicy:
        return SecretScanPolicy(
            placeholder_words=self.placeholder_words, identifier_words=self.identifier_words,
            fill_in_words=self.fill_in_words, path_classes=tuple(PathClass(c.name, c.paths) for c in self.path_classes),
            default_class=self.default_class,
        )


def _scan_budget(value: float) -> float:
    if not 0 < value <= 86_400:
        raise fail(f"must be > 0 and at most 86400, got {value!r}")
    return value


def _public(value: list[Any]) -> tuple[str, ...]:
    names = _names(value) if value else ()
    for i, name in enumerate(names):
        if name.count(".") > 1 or name.startswith(".") or name.endswith("."):
            raise fail(f"a table or schema.table, got {name!r}", at=i)
    return tuple(names)


def _with_anon(roles: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
    anon = info.data.get("anon_role")
    if anon is not None and anon not in roles:
        raise fail(f"must include anon_role {anon!r}")
    return roles


class SecuritySection(Table):
    KEY_ORDER = ("exposed_schemas", "anon_role", "api_roles", "secret_rotation")

    anon_role: Nonblank
    api_roles: Annotated[Names, AfterValidator(_with_anon)]
    history_scan_timeout_s: Annotated[Number, check(_scan_budget)] = SecurityContract.history_scan_timeout_s
    secret_rotation: Annotated[list[_Rotation], shape(list), check(_rotations)]
    public_tables: Annotated[tuple[str, ...], of_type(list), check(_public)] = ()
    exposed_schemas: Names
    secret_scan: _SecretScan | None = None

    def contract(self) -> SecurityContract:
        return SecurityContract(
            exposed_schemas=self.exposed_schemas,
            anon_role=self.anon_role,
            api_roles=self.api_roles,
            secret_rotation=tuple(SecretRotation(r.secret, r.interval_days, r.last_rotated)
                                  for r in self.secret_rotation),
            history_scan_timeout_s=float(self.history_scan_timeout_s),
            secret_scan=self.secret_scan.policy() if self.secret_scan is not None else SecretScanPolicy(),
            public_tables=self.public_tables,
        )


def parse(path: Path, table: dict[str, Any], *, today: dt.date | None = None) -> SecurityContract:
    """Validate `[security]`; ``today`` (default: the UTC date) is when a rotation may not be later."""
    return validate(SecuritySection, table, path, SECTION, context={"today": today}).contract()
