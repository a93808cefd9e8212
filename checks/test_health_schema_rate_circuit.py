"""Runbook › Health Checks: /health/schema, /health/rate and /health/circuit.

/health/schema is what rule 5 says to look at after applying a migration, so it must agree
with the database it describes. /health/rate and /health/circuit are the early warnings of
Scenarios 4 and 5: a namespace near its limit is about to drop messages, and an open circuit
means an integration's requests are being rejected right now. An answer in another known
dialect's words is drift (plugins.drift): reported with both sides, not judged as a fault.
"""

from __future__ import annotations

from collections.abc import Callable

from fixtures import probes
from fixtures.connections import Database, EndpointResponse
from fixtures.probes import drift as probes_drift
from fixtures.probes import fallback
from fixtures.probes import health as probes_health
from fixtures.probes.health import (
    AppError,
    BadAnswer,
    EndpointMissing,
    HealthEndpoints,
    NoAnswer,
    NoCounters,
    dig,
    json_object,
    parse_circuits,
    parse_rate,
    parse_schema,
)
from plugins.contract.drift import Dialects
from plugins.contract.runbook import Runbook
from plugins.contract.verdict import Undecidable, violated
from plugins.invariants import invariant


def _expect_200(resp: EndpointResponse, what: str) -> None:
    if 300 <= resp.status < 400:  # a redirect (a login page in front of the app): say where to
        try:
            json_object(resp)
        except BadAnswer as exc:
            raise violated(exc.message) from None
    if resp.status != 200:
        raise violated(f"GET {resp.path} answered HTTP {resp.status}, expected 200 with {what}: {resp.excerpt()!r}")


def _same_version(a: str | None, b: str | None) -> bool:
    """YYYYMMDD and YYYYMMDDHHMMSS name the same version when padded alike."""
    if a is None or b is None:
        return a is b
    return a.ljust(14, "0") == b.ljust(14, "0")


@invariant(
    "JC-HEALTH-04",
    title="/health/schema reports the newest _migrations row, equal to app_settings.schema_version",
    severity="critical",
    section="Health Checks › /health/schema (Migration Debug)",
    remedy="Scenario 2 · Case 4: compare `SELECT version, description, installed_on FROM "
    "public._migrations ORDER BY version DESC` with app_settings.schema_version and /health/schema; "
    "apply the missing migration (or update the forgotten app_settings version), then `railway restart`.",
    tiers=("postdeploy", "nightly"),
)
def test_schema_endpoint_matches_database(
    health: HealthEndpoints, db: Database, runbook: Runbook, settings: probes.AppSettings, dialects: Dialects
) -> None:
    """With no migration log (database.migrations_source = "settings") the newest applied
    version *is* app_settings.schema_version: the endpoint must report that. Its content is
    judged too, not only its status code: a 200 carrying the app's own error, a status word
    outside health.schema.status_ok or an up-to-date flag that is false fails, quoted."""
    resp = fallback.answer(health, dialects, "schema")
    if resp.status != 200 and resp.path in runbook.endpoints.get("deep", ()):
        # A deployment reporting its schema version inside /health/deep: its 503 is the deep
        # gate's verdict (JC-DEEP-01), not this endpoint's.
        raise Undecidable(f"GET {resp.path} answered HTTP {resp.status}: the schema version rides in the deep "
                          "report, which is not healthy (JC-DEEP-01 judges it)")
    _expect_200(resp, "the migration history")
    try:
        answer = parse_schema(resp, health.contract.schema)
    except AppError as exc:  # the endpoint's own failure, answered with 200: its contract is broken
        raise violated(exc.message) from None
    except BadAnswer as exc:
        raise fallback.unparsed(health, dialects, "schema", exc) from None
    if answer.up_to_date is not None and answer.expected is not None:
        # The app's verdict must be its own rule: current >= expected, compared as strings.
        rule = answer.version is not None and answer.version >= answer.expected
        if answer.up_to_date != rule:
            raise violated(
                f"GET {resp.path} says {health.contract.schema.up_to_date_path} "
                f"{str(answer.up_to_date).lower()} but current {answer.version!r} >= expected "
                f"{answer.expected!r} is {str(rule).lower()}",
                evidence={"current": answer.version, "expected": answer.expected, "up_to_date": answer.up_to_date},
            )
    history = fallback.migration_history(db, runbook, dialects)
    newest = history[0].version if history else None
    recorded = settings.get(runbook.schema_version_key)
    table, key = runbook.migration_log, f"{runbook.settings_table}.{runbook.schema_version_key}"
    said = probes_health.schema_not_up_to_date(answer, health.contract.schema)
    problems = []
    if not _same_version(answer.version, newest):
        problems.append(f"the newest {table} row is {newest!r}")
    if not _same_version(answer.version, recorded):
        problems.append(f"{key} is {recorded!r}")
    if answer.settings_version is not None and not _same_version(answer.settings_version.value, recorded):
        problems.append(
            f"its '{health.contract.schema.settings_version_path}' says {answer.settings_version.value!r} "
            f"while {key} is {recorded!r}"
        )
    evidence = {"endpoint": answer.version, table: newest, key: recorded}
    if said:  # the app's own word against its schema, judged before any comparison
        evidence.update(status=answer.status, up_to_date=answer.up_to_date, expected=answer.expected)
    if problems:
        behind = ""
        if newest is not None and recorded is not None and not _same_version(newest, recorded):
            ahead = key if recorded.ljust(14, "0") > newest.ljust(14, "0") else f"the {table} log"
            behind = f" ({ahead} is ahead: a migration row or the version update is missing)"
        raise violated(
            (_not_up_to_date(resp, answer, said) + "; it " if said else f"GET {resp.path} ")
            + f"reports version {answer.version!r} but " + "; ".join(problems) + behind,
            evidence=evidence,
        )
    if said:
        where = (f"{key} is {recorded!r}: the database is behind what the code needs (Case 4)" if recorded is not None
                 else f"there is no {key} row (\"Forgetting to update app_settings version\", runbook Common "
                 "Mistakes)")
        raise violated(f"{_not_up_to_date(resp, answer, said)}; {where}", evidence=evidence)


def _not_up_to_date(resp: EndpointResponse, answer: probes_health.SchemaAnswer, said: list[str]) -> str:
    """The answer's own word that the schema is not where the code needs it, quoted."""
    expected = f", expected {answer.expected!r}" if answer.expected is not None else ""
    return (f"GET {resp.path} is {resp.status} but says the schema is not up to date: {'; '.join(said)} "
            f"(current {answer.version!r}{expected})")


@invariant(
    "JC-RATE-01",
    title="every rate-limit namespace is under the warning ratio of its limit",
    severity="normal",
    section="Health Checks › /health/rate (Rate Limiting Status)",
    remedy="Scenario 4: check which sender fills the namespace (`railway logs -n 100`), pause the "
    "campaign or spread its sends before the limit rejects messages; raise the limit only if the "
    "provider allows it.",
    tiers=("nightly",),
)
def test_rate_under_warning_ratio(health: HealthEndpoints, runbook: Runbook, dialects: Dialects) -> None:
    threshold = runbook.thresholds.get("rate_warning_ratio")
    if threshold is None or not 0 < threshold <= 1:
        raise Undecidable(
            f"{runbook.path}: thresholds.rate_warning_ratio must be a number in (0, 1], got {threshold!r}"
        )
    judge = probes_drift.judge_rate(threshold)
    resp = fallback.answer(health, dialects, "rate", judge)
    _expect_200(resp, "usage per namespace")
    try:
        usages = parse_rate(resp, health.contract.rate)
    except NoCounters as exc:
        raise Undecidable(_why_no_counters(health, exc.message)) from None
    except BadAnswer as exc:
        raise fallback.unparsed(health, dialects, "rate", exc, judge) from None
    if not usages:
        raise Undecidable(f"GET {resp.path} reports no namespace: no usage to judge")
    over = [u for u in usages if u.ratio >= threshold]
    if over:
        raise violated(
            f"GET {resp.path}: {len(over)} namespace(s) at or over {threshold:.0%} of the limit "
            f"(thresholds.rate_warning_ratio): " + ", ".join(u.describe() for u in over),
            evidence={u.namespace: {"used": u.used, "limit": u.limit, "ratio": round(u.ratio, 4)} for u in usages},
        )


def _why_no_counters(health: HealthEndpoints, what: str) -> str:
    """An empty counters object is what the app answers when it cannot read them from Redis:
    say so when the app's own readiness says Redis is down, rather than "field missing"."""
    redis_path = health.contract.ready_redis_path
    try:
        ready = json_object(health.answer("ready"))
    except (NoAnswer, EndpointMissing, BadAnswer):
        return f"the app reports no counters ({what}), and /health/ready does not answer to say why"
    word = dig(ready, redis_path)
    if word is not None and word not in health.contract.ready_ok:
        return f"Redis down: the app reports no counters ({what}; GET /health/ready {redis_path} is {word!r})"
    return f"the app reports no counters ({what}) while /health/ready says Redis is {word!r}: no usage to judge"


@invariant(
    "JC-CIRCUIT-01",
    title="every protected integration's circuit is closed (half_open is a warning)",
    severity="critical",
    section="Incident Response Scenarios › Scenario 5",
    remedy="Scenario 5: check the integration's logs (`railway logs -n 200 | grep -i <integration>`) and "
    "its credentials / URL; circuits auto-reset after the cool-down, else `railway restart` the API "
    "(Emergency: Clear Circuit Breaker Trips).",
    tiers=("nightly",),
)
def test_circuits_closed(health: HealthEndpoints, warn: Callable[[str], None], dialects: Dialects) -> None:
    contract = health.contract.circuit
    resp = fallback.answer(health, dialects, "circuit", probes_drift.judge_circuits)
    _expect_200(resp, "the state of every protected integration")
    try:
        states = parse_circuits(resp, contract)
    except BadAnswer as exc:
        raise fallback.unparsed(health, dialects, "circuit", exc, probes_drift.judge_circuits) from None
    known = contract.closed + contract.open + contract.half_open
    problems = [f"{n} is {s!r} (open: its requests are being rejected)" for n, s in states.items() if s in contract.open]
    problems += [
        f"{n} is {s!r}, none of {'/'.join(known)} (runbook.toml health.circuit)"
        for n, s in states.items() if s not in known
    ]
    problems += [f"{n} is not reported (a protected integration)" for n in contract.protected if n not in states]
    half = [f"{n} is {s!r} (recovering)" for n, s in states.items() if s in contract.half_open]
    whose = (" — the API process's own in-memory breaker (the worker and the scheduler keep their own)"
             if contract.per_process else "")
    if problems:
        raise violated(f"GET {resp.path}: " + "; ".join(problems + half) + whose, evidence=states)
    if half:
        warn(f"GET {resp.path}: " + "; ".join(half) + " — Scenario 5: watch it close, or check the integration"
             + whose)
