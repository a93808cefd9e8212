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
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainValidator

from plugins.contract.toml_schema import Table, check, fail, shape, validate

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


# --- how [report] and [waivers] are written -------------------------------------------------


def _nonempty_str(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise fail(f"must be a non-empty string, got {value!r}")
    return value


NonEmpty = Annotated[str, PlainValidator(_nonempty_str)]


def _json_paths(value: Any) -> Any:
    if not isinstance(value, list) or not value:
        raise fail("must be a non-empty list of dotted JSON paths")
    return value


class _Source(Table):
    NOT_A_TABLE = 'must be a table {{ endpoint = "…", paths = ["…"] }}'

    endpoint: NonEmpty
    paths: Annotated[list[NonEmpty], BeforeValidator(_json_paths)]


def _words(value: Any) -> Any:
    if not isinstance(value, list):
        raise fail(f"must be a list of words, got {value!r}")
    return value


class _Identity(Table):
    NOT_A_TABLE = "must be a table, got {kind}"
    SHAPE_FIRST = False  # read as written: the unset words, then each source whole

    unset: Annotated[list[NonEmpty], BeforeValidator(_words)] = []
    git_sha: _Source | None = None
    deployment_id: _Source | None = None
    schema_version: _Source | None = None
    railway_environment: _Source | None = None
    run_mode: _Source | None = None


assert _Identity.keys() == {*IDENTITY_FIELDS, IDENTITY_UNSET}


def _table_of(value: Any) -> Any:
    if not isinstance(value, dict):
        raise fail(f"must be a table, got {type(value).__name__}")
    return value


_table_of.shape = True  # type: ignore[attr-defined]  # checked with the keys (Table)


def _hours(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(f"must be an integer (hours), got {value!r}")
    if value <= 0:
        raise fail(f"must be greater than 0, got {value!r}")
    return value


def _default_tier(hours: dict[str, int]) -> dict[str, int]:
    if "default" not in hours:
        raise fail("missing required key", at="default")
    return hours


def _scenario_key(key: str) -> str:
    if not SCENARIO_KEY.match(key):
        raise fail("key must look like 'Scenario N' or 'Scenario N · Case M'")
    return key


class ReportSection(Table):
    identity: _Identity
    valid_for_hours: Annotated[dict[str, Annotated[int, PlainValidator(_hours)]], BeforeValidator(_table_of),
                               check(_default_tier)]
    scenarios: Annotated[dict[Annotated[str, check(_scenario_key)], NonEmpty], BeforeValidator(_table_of)]

    def contract(self) -> ReportContract:
        identity = {name: IdentitySource(src.endpoint, tuple(src.paths)) for name in self.identity.written
                    if name != IDENTITY_UNSET and (src := getattr(self.identity, name)) is not None}
        return ReportContract(identity=identity, valid_for_hours=dict(self.valid_for_hours),
                              scenarios=dict(self.scenarios), identity_unset=tuple(self.identity.unset))


def parse_report(path: Path, table: dict[str, Any]) -> ReportContract:
    """Parse [report]: identity sources, validity per tier, scenario titles."""
    return validate(ReportSection, table, path, "report").contract()


def _invariant_id(key: str) -> str:
    parts = key.split("-")
    if not (len(parts) == 3 and parts[0] == "JC" and all(parts[1:])):
        raise fail("must be an invariant id like JC-GUARD-01")
    return key


def _expires(value: Any) -> dt.date:
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise fail(f"must be a TOML date (YYYY-MM-DD, unquoted), got {value!r}")
    return value


class _Waiver(Table):
    NOT_A_TABLE = 'must be a table {{ reason = "…", expires = YYYY-MM-DD }}'

    reason: NonEmpty
    expires: Annotated[dt.date, PlainValidator(_expires)]
    approved_by: NonEmpty | None = None


WaiverTable = Annotated[dict[Annotated[str, check(_invariant_id)], _Waiver], shape(dict)]


def waivers_of(table: dict[str, _Waiver]) -> Waivers:
    return Waivers({inv_id: Waiver(inv_id, " ".join(w.reason.split()), w.expires, w.approved_by)
                    for inv_id, w in table.items()})


class _WaiversSection(Table):
    """[waivers] as the one key of a table, to validate it alone (parse_waivers)."""

    waivers: WaiverTable


def parse_waivers(path: Path, table: dict[str, Any]) -> Waivers:
    """Parse [waivers]: ``"JC-AREA-nn" = { reason = "…", expires = YYYY-MM-DD }``.

    The expiry is a TOML date, not a string, so a typo cannot silently mean "forever".
    """
    return waivers_of(validate(_WaiversSection, {"waivers": table}, path).waivers)
