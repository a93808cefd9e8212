"""runbook.toml `[security]`: the Supabase security premises and the secret rotation table.

Which schemas the Data API exposes and what its roles are called (a deployment may name
them its own way), and the runbook's "Rotation Schedule" — secret, interval, last rotated —
which the operators update at step 9 ("DOCUMENT") of every rotation.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plugins.config import ConfigError, _check_table, _Spec

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


@dataclass(frozen=True)
class SecurityContract:
    exposed_schemas: tuple[str, ...]
    anon_role: str
    api_roles: tuple[str, ...]
    secret_rotation: tuple[SecretRotation, ...]
    # JC-SEC-05: the budget of the git history scan; past it the check is undecidable.
    history_scan_timeout_s: float = 300.0


_SPEC: _Spec = {
    "exposed_schemas": (list, True),
    "anon_role": (str, True),
    "api_roles": (list, True),
    "secret_rotation": (list, True),
    "history_scan_timeout_s": ((int, float), False),
}
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

    return SecurityContract(
        exposed_schemas=_names(path, f"{SECTION}.exposed_schemas", data["exposed_schemas"]),
        anon_role=data["anon_role"],
        api_roles=api_roles,
        secret_rotation=tuple(rotations),
        history_scan_timeout_s=float(timeout),
    )
