"""runbook.toml's [report] and [waivers] sections: how a run becomes a certificate.

Kept as data because they are the operator's decisions, not the suite's: where the app says
which build it runs, how long a certificate may be trusted per tier, which incident scenario
of the runbook a failure belongs to, and which known violations are accepted until when.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plugins.contract.toml_schema import ConfigError

IDENTITY_FIELDS = ("git_sha", "deployment_id", "schema_version", "railway_environment", "run_mode")
# Not a field: the words an app reports in place of a value it was not given ("unknown").
IDENTITY_UNSET = "unset"
SCENARIO_KEY = re.compile(r"^Scenario (\d+)(?: · Case (\d+))?$")
# "Scenario 2 · Case 3", "Scenario 2 › Case 3", "Scenario 2, Case 3" all name the same case.
_SCENARIO_REF = re.compile(r"Scenario\s+(\d+)(?:\s*[·›,:-]?\s*Case\s+(\d+))?")


@dataclass(frozen=True)
class IdentitySource:
    """Where the running app reports one fact about itself: an endpoint and JSON paths."""

    endpoint: str
    paths: tuple[str, ...]


@dataclass(frozen=True)
class ReportContract:
    identity: dict[str, IdentitySource]
    valid_for_hours: dict[str, int]
    scenarios: dict[str, str]
    # Values the app reports when it was not told (e.g. "unknown"): recorded as not set, never
    # as if they were a git sha or a deployment id.
    identity_unset: tuple[str, ...] = ()

    def validity_hours(self, marker_expression: str) -> int:
        """Hours a certificate of this tier may be trusted: by exact tier name, ``all`` for
        an unfiltered run, ``default`` for any other expression."""
        key = marker_expression.strip() or "all"
        return self.valid_for_hours.get(key, self.valid_for_hours["default"])

    def scenario_of(self, *texts: str) -> str | None:
        """The runbook scenario key (``"Scenario 2 · Case 3"``) the first text names, if any."""
        for text in texts:
            match = _SCENARIO_REF.search(text or "")
            if match:
                scenario, case = match.groups()
                return f"Scenario {scenario}" + (f" · Case {case}" if case else "")
        return None

    def scenario_title(self, key: str) -> str:
        """``"Scenario 2 · Case 3: hard guard mismatch"``; falls back to the scenario's title."""
        if key in self.scenarios:
            return f"{key}: {self.scenarios[key]}"
        parent = key.split(" · ")[0]
        if parent in self.scenarios:
            return f"{key} ({self.scenarios[parent]})"
        return key


@dataclass(frozen=True)
class Waiver:
    """A known, accepted violation of one invariant, until its expiry day (UTC, inclusive)."""

    id: str
    reason: str
    expires: dt.date
    approved_by: str | None = None

    def active(self, today: dt.date) -> bool:
        return today <= self.expires

    def describe(self) -> str:
        by = f", approved by {self.approved_by}" if self.approved_by else ""
        return f"waived until {self.expires.isoformat()}{by}: {self.reason}"


@dataclass(frozen=True)
class Waivers:
    items: dict[str, Waiver]

    def active(self, today: dt.date) -> dict[str, Waiver]:
        return {k: w for k, w in self.items.items() if w.active(today)}

    def expired(self, today: dt.date) -> dict[str, Waiver]:
        return {k: w for k, w in self.items.items() if not w.active(today)}


def _err(path: Path, key: str, what: str) -> ConfigError:
    return ConfigError(f"{path}: {key}: {what}")


def _unknown(path: Path, prefix: str, table: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for key in table:
        if key not in allowed:
            raise _err(path, f"{prefix}.{key}", f"unknown key (allowed: {', '.join(sorted(allowed))})")


def _nonempty_str(path: Path, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _err(path, key, f"must be a non-empty string, got {value!r}")
    return value


def parse_report(path: Path, table: dict[str, Any]) -> ReportContract:
    """Parse [report]: identity sources, validity per tier, scenario titles."""
    _unknown(path, "report", table, ("identity", "valid_for_hours", "scenarios"))
    for key in ("identity", "valid_for_hours", "scenarios"):
        if key not in table:
            raise _err(path, f"report.{key}", "missing required key")
        if not isinstance(table[key], dict):
            raise _err(path, f"report.{key}", f"must be a table, got {type(table[key]).__name__}")

    identity: dict[str, IdentitySource] = {}
    _unknown(path, "report.identity", table["identity"], (*IDENTITY_FIELDS, IDENTITY_UNSET))
    unset = table["identity"].get(IDENTITY_UNSET, [])
    if not isinstance(unset, list):
        raise _err(path, f"report.identity.{IDENTITY_UNSET}", f"must be a list of words, got {unset!r}")
    for i, word in enumerate(unset):
        _nonempty_str(path, f"report.identity.{IDENTITY_UNSET}[{i}]", word)
    for name, spec in table["identity"].items():
        if name == IDENTITY_UNSET:
            continue
        prefix = f"report.identity.{name}"
        if not isinstance(spec, dict):
            raise _err(path, prefix, "must be a table { endpoint = \"…\", paths = [\"…\"] }")
        _unknown(path, prefix, spec, ("endpoint", "paths"))
        if "endpoint" not in spec:
            raise _err(path, f"{prefix}.endpoint", "missing required key")
        if "paths" not in spec:
            raise _err(path, f"{prefix}.paths", "missing required key")
        endpoint = _nonempty_str(path, f"{prefix}.endpoint", spec["endpoint"])
        paths = spec["paths"]
        if not isinstance(paths, list) or not paths:
            raise _err(path, f"{prefix}.paths", "must be a non-empty list of dotted JSON paths")
        for i, p in enumerate(paths):
            _nonempty_str(path, f"{prefix}.paths[{i}]", p)
        identity[name] = IdentitySource(endpoint, tuple(paths))

    hours: dict[str, int] = {}
    for tier, value in table["valid_for_hours"].items():
        key = f"report.valid_for_hours.{tier}"
        if isinstance(value, bool) or not isinstance(value, int):
            raise _err(path, key, f"must be an integer (hours), got {value!r}")
        if value <= 0:
            raise _err(path, key, f"must be greater than 0, got {value!r}")
        hours[tier] = value
    if "default" not in hours:
        raise _err(path, "report.valid_for_hours.default", "missing required key")

    scenarios: dict[str, str] = {}
    for key, title in table["scenarios"].items():
        where = f"report.scenarios.{key}"
        if not SCENARIO_KEY.match(key):
            raise _err(path, where, "key must look like 'Scenario N' or 'Scenario N · Case M'")
        scenarios[key] = _nonempty_str(path, where, title)
    return ReportContract(identity=identity, valid_for_hours=hours, scenarios=scenarios,
                          identity_unset=tuple(unset))


def _is_invariant_id(key: str) -> bool:
    parts = key.split("-")
    return len(parts) == 3 and parts[0] == "JC" and all(parts[1:])


def parse_waivers(path: Path, table: dict[str, Any]) -> Waivers:
    """Parse [waivers]: ``"JC-AREA-nn" = { reason = "…", expires = YYYY-MM-DD }``.

    The expiry is a TOML date, not a string, so a typo cannot silently mean "forever".
    """
    items: dict[str, Waiver] = {}
    for inv_id, spec in table.items():
        prefix = f"waivers.{inv_id}"
        if not _is_invariant_id(inv_id):
            raise _err(path, prefix, "must be an invariant id like JC-GUARD-01")
        if not isinstance(spec, dict):
            raise _err(path, prefix, "must be a table { reason = \"…\", expires = YYYY-MM-DD }")
        _unknown(path, prefix, spec, ("reason", "expires", "approved_by"))
        for key in ("reason", "expires"):
            if key not in spec:
                raise _err(path, f"{prefix}.{key}", "missing required key")
        reason = _nonempty_str(path, f"{prefix}.reason", spec["reason"])
        expires = spec["expires"]
        if isinstance(expires, dt.datetime) or not isinstance(expires, dt.date):
            raise _err(path, f"{prefix}.expires", f"must be a TOML date (YYYY-MM-DD, unquoted), got {expires!r}")
        approved_by = spec.get("approved_by")
        if approved_by is not None:
            approved_by = _nonempty_str(path, f"{prefix}.approved_by", approved_by)
        items[inv_id] = Waiver(inv_id, " ".join(reason.split()), expires, approved_by)
    return Waivers(items)
