"""Runbook › Health Checks, and rule 3: any failure in /health/deep means ROLLBACK NOW.

/health says the process lives, /health/ready that it can take traffic (Redis), and
/health/deep is the deploy gate: each of its parts is judged on its own, so a failure names
the part and the runbook's Scenario 2 case that fixes it. The gate is only as good as the
app's report, so the report is also judged against itself (JC-DEEP-08): a top-level
"healthy" over a failing part is a lie real deployments have shipped.

Each endpoint is fetched once per run (``health`` fixture). The check that *is* an
endpoint's contract fails on a bad answer (non-200, HTML, redirect, missing field, wrong
type); checks that only read it say why they cannot decide. An answer the dialect in force
cannot read but another known dialect can is drift (plugins.drift), never an outage.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fixtures import probes_drift, probes_health
from fixtures.probes_health import BadAnswer, EndpointMissing, HealthEndpoints, NoAnswer, alias_note, dig, json_object
from plugins.config import Runbook
from plugins.drift import Dialects, DriftFinding, DriftUndecidable, drift_message
from plugins.invariants import Undecidable, invariant, violated

pytestmark = [pytest.mark.postdeploy, pytest.mark.nightly]


@invariant(
    "JC-HEALTH-01",
    title="/health answers 200 with JSON within the liveness budget",
    severity="critical",
    section="Health Checks › /health (Liveness Probe)",
    remedy="Scenario 1: check `railway status` and `railway logs -n 50` for a failed startup; "
    "roll back if the last deploy is the culprit, else `railway restart`.",
)
def test_liveness(health: HealthEndpoints, runbook: Runbook, dialects: Dialects) -> None:
    try:
        resp = health.answer("health")
    except NoAnswer as exc:
        raise violated(f"{exc.message} (Scenario 1: the app is not responding)") from None
    except EndpointMissing as exc:
        raise missing_endpoint(dialects, health, "health", exc) from None
    try:
        if 300 <= resp.status < 400:
            json_object(resp)  # a redirect (a login page in front of the app): say where to
        if resp.status != 200:
            raise violated(f"GET {resp.path} answered HTTP {resp.status}, expected 200: {resp.excerpt()!r}")
        json_object(resp)
    except BadAnswer as exc:
        raise violated(exc.message) from None
    budget = runbook.http.liveness_budget_ms
    if resp.elapsed_ms > budget:
        raise violated(
            f"GET {resp.path} took {resp.elapsed_ms:.0f} ms, over the liveness budget of {budget} ms "
            "(runbook.toml http.liveness_budget_ms)"
        )


def missing_endpoint(dialects: Dialects, health: HealthEndpoints, name: str, exc: EndpointMissing) -> Exception:
    """An endpoint whose every path answered 404 fails its own contract ("endpoint missing"),
    unless another known dialect's route serves it (drift, judged by plugins.drift)."""
    return probes_drift.unreadable(dialects, health, name, probes_drift.READERS[name], (), exc.message,
                                   violated(exc.message))


@invariant(
    "JC-HEALTH-02",
    title="/health/ready answers 200 with Redis connected",
    severity="critical",
    section="Health Checks › /health/ready (Readiness Probe)",
    remedy="Scenario 2 · Case 1: check Redis (`railway logs -n 50 | grep -i redis`), restart the "
    "Redis service in the Railway dashboard, then `railway restart` the API.",
)
def test_readiness(health: HealthEndpoints, dialects: Dialects) -> None:
    contract = health.contract
    resp = health.answer("ready")
    try:
        body = json_object(resp)
    except BadAnswer as exc:
        state = " (not ready; Redis state unknown)" if resp.status != 200 else ""
        raise violated(exc.message + state) from None
    redis_status = dig(body, contract.ready_redis_path)
    if resp.status != 200:
        parent = contract.ready_redis_path.rpartition(".")[0]
        cause = dig(body, f"{parent}.error" if parent else "error")
        raise violated(
            f"GET {resp.path} answered HTTP {resp.status} (not ready): Redis {redis_status or '?'}"
            + (f" — {cause}" if cause else ""),
            evidence=body,
        )
    if redis_status not in contract.ready_ok:
        fault = violated(
            f"GET {resp.path} is 200 but Redis ('{contract.ready_redis_path}') is {redis_status!r}, "
            f"expected {'/'.join(contract.ready_ok)}",
            evidence=body,
        )
        if redis_status is None:  # the field is not there: another dialect may say where it is
            raise probes_drift.unreadable(dialects, health, "ready", probes_drift.read_ready,
                                          probes_drift.KEYS["ready"], f"GET {resp.path} has no "
                                          f"'{contract.ready_redis_path}'", fault, probes_drift.judge_ready)
        raise fault


@invariant(
    "JC-HEALTH-03",
    title="every health endpoint of the runbook is served (its path or an alias)",
    severity="critical",
    section="Health Checks › Health Endpoint Reference",
    remedy="The deployed app lacks a runbook endpoint: check the route exists in this release "
    "(a 404 on every alias means a rollback target or a proxy rule dropped it); add the path the "
    "app really serves to runbook.toml [endpoints] if it was renamed.",
)
def test_endpoints_served(health: HealthEndpoints, runbook: Runbook, warn: Callable[[str], None],
                          dialects: Dialects, drift: Callable[[list[DriftFinding]], None]) -> None:
    """A route answered only on an alias passes with a warning and is recorded as drift (the
    runbook's path is gone); a route missing on every alias while another dialect's route
    serves the same facts is drift, not a missing endpoint."""
    missing: list[str] = []
    unanswered: list[str] = []
    drifted: list[tuple[str, probes_drift.Recognition]] = []
    for name in runbook.endpoints:
        try:
            resp = health.answer(name)
        except probes_health.EndpointMissing as exc:
            reader = probes_drift.READERS.get(name, probes_drift.read_json)
            found = probes_drift.recognize_endpoint(dialects, health, name, reader, ())
            if found is None:
                missing.append(exc.message)
            else:
                drifted.append((exc.message, found))
        except NoAnswer as exc:
            unanswered.append(f"{name}: {exc.message}")
        else:
            if (note := alias_note(resp)) is not None:
                warn(note)
                drift([f for f in [probes_drift.alias_finding(dialects, resp)] if f is not None])
    if missing:
        raise violated("; ".join(missing) + "".join(f" (drift: {m})" for m, _ in drifted))
    if unanswered:
        raise Undecidable("cannot tell which endpoints exist: " + "; ".join(unanswered))
    if drifted:
        findings = [f for _, r in drifted for f in r.findings]
        raise DriftUndecidable(drift_message("; ".join(m for m, _ in drifted), drifted[0][1].dialect.name,
                                             findings), findings)


@invariant(
    "JC-DEEP-01",
    title="/health/deep answers 200 and healthy (the deploy gate)",
    severity="blocker",
    section="Health Checks › /health/deep (Comprehensive Health Check)",
    remedy="Rule 3: ROLLBACK NOW (Railway → Deployments → last stable → Redeploy); then read "
    "which part failed and follow its Scenario 2 case.",
)
def test_deep_healthy(health: HealthEndpoints, runbook: Runbook, dialects: Dialects) -> None:
    try:
        report = health.deep()
    except EndpointMissing as exc:
        raise missing_endpoint(dialects, health, "deep", EndpointMissing(
            f"{exc.message} — the deploy gate needs HTTP 200 with a healthy report")) from None
    except (NoAnswer, BadAnswer) as exc:
        raise violated(f"{exc.message} — the deploy gate needs HTTP 200 with a healthy report") from None
    if report.http_status == 200 and report.healthy(runbook.deep):
        health.trusted_deep()  # a healthy top over a failing part decides nothing (JC-DEEP-08)
        return
    failing = []
    for part in report.failing_parts(runbook.deep):
        case = _PARTS[part.name][1] if part.name in _PARTS else "?"
        failing.append(f"{part.describe()} ({case})")
    raise violated(
        f"GET {report.path} answered HTTP {report.http_status} status {report.status!r}, expected 200 "
        f"{'/'.join(runbook.deep.healthy)}; failing parts: {', '.join(failing) or 'none reported'}",
        evidence=report.body,
    )


@invariant(
    "JC-DEEP-08",
    title="the /health/deep report is consistent with itself",
    severity="blocker",
    section="Health Checks › /health/deep (Comprehensive Health Check)",
    remedy="Rule 3: treat the release as failed (ROLLBACK NOW) — its gate cannot be trusted; then fix "
    "the app's /health/deep: status healthy only when every part is ok, HTTP 503 with the failing "
    "parts listed otherwise.",
)
def test_deep_consistent(health: HealthEndpoints, runbook: Runbook) -> None:
    try:
        report = health.deep()
    except Undecidable as exc:
        raise type(exc)(f"cannot decide: {exc.message}") from None
    found = probes_health.inconsistencies(report, runbook.deep, health.contract)
    if not found:
        return
    hides = report.healthy(runbook.deep) and report.failing_parts(runbook.deep)
    lead = "the app's deep check hides a failing part" if hides else f"GET {report.path} contradicts itself"
    raise violated(f"{lead}: {'; '.join(found)}", evidence=report.body)


# Each part of the deep report, with the runbook's Scenario 2 case that fixes it.
_PARTS = {
    "redis": ("JC-DEEP-02", "Case 1", "Redis connection error",
              "Scenario 2 · Case 1: restart the Redis service in the Railway dashboard, then `railway restart`."),
    "supabase": ("JC-DEEP-03", "Case 2", "Supabase connection error",
                 "Scenario 2 · Case 2: check SUPABASE_URL / SUPABASE_PROJECT_REF in Railway variables and "
                 "status.supabase.com; fix the variables and redeploy."),
    "tables": ("JC-DEEP-04", "Case 5", "critical table missing",
               "Scenario 2 · Case 5: find the migration that creates the missing table, apply it in the "
               "Supabase SQL editor, then `railway restart`."),
    "views": ("JC-DEEP-05", "Case 5", "critical view missing",
              "Scenario 2 · Case 5: re-run the CREATE VIEW from its migration in the Supabase SQL "
              "editor, then `railway restart`."),
    "migrations": ("JC-DEEP-06", "Case 4", "schema behind the code",
                   "Scenario 2 · Case 4: compare /health/schema with migrations/, apply the missing "
                   "migration manually (rule 5), then `railway restart`."),
    "hard_guards": ("JC-DEEP-07", "Case 3", "hard guard mismatch",
                    "Scenario 2 · Case 3: APP_ENV / SUPABASE_PROJECT_REF must equal app_settings; fix the "
                    "wrong side (never production variables mid-incident without a rollback)."),
}


def _deep_part_check(part: str) -> object:
    inv_id, case, what, remedy = _PARTS[part]

    @invariant(
        inv_id,
        title=f"/health/deep part '{part}' is ok",
        severity="blocker",
        section=f"Incident Response Scenarios › Scenario 2 › {case}",
        remedy=remedy,
    )
    def check(trusted_deep: probes_health.DeepReport, runbook: Runbook, health: HealthEndpoints,
              dialects: Dialects, warn: Callable[[str], None]) -> None:
        p = trusted_deep.parts[part]
        if not p.present:
            found = probes_drift.part_drift(dialects, health, part)
            message = f"GET {trusted_deep.path} has no '{p.path}' part"
            if found is not None:  # drift, or the part's fault read in the deployment's words
                raise found.verdict(message, probes_drift.judge_part(part))
            raise violated(f"{message} ({case}: {what} cannot be judged)", evidence=trusted_deep.body)
        if p.status in runbook.deep.part_warning and p.ok(runbook.deep.part_fine):
            warn(f"GET {trusted_deep.path} {part} is {p.status!r} (deep.part_warning): it holds, but look at "
                 f"{p.path} ({case})")
            return
        if p.unknown(health.contract.part_unknown):
            others = [q.describe() for q in trusted_deep.failing_parts(runbook.deep)
                      if q.name != part and not q.unknown(health.contract.part_unknown)]
            raise Undecidable(
                f"the app could not check {part}: GET {trusted_deep.path} reports it {p.status!r}"
                + (f" (because: {', '.join(others)})" if others else ""),
                evidence=p.detail,
            )
        if not p.ok(runbook.deep.part_ok):
            detail = f"; missing: {', '.join(p.missing)}" if p.missing else ""
            extra = {k: v for k, v in p.detail.items() if k in ("error", "mismatches")}
            found = probes_drift.part_drift(dialects, health, part, fine=True)
            if found is not None and not p.missing:  # a word another dialect reads as holding
                raise found.undecidable(f"GET {trusted_deep.path} {part} is {p.status!r}, not a word of "
                                        f"deep.part_ok")
            where = f" ({p.path})" if p.path != part else ""
            raise violated(
                f"GET {trusted_deep.path} {part}{where} is {p.status!r} ({case}: {what}){detail}"
                + (f"; {extra}" if extra else "") + _views_cause(part, trusted_deep),
                evidence=p.detail,
            )

    check.__name__ = f"test_deep_part_{part}"
    return check


def _views_cause(part: str, report: probes_health.DeepReport) -> str:
    """Missing views while critical tables are missing too: a view is dropped with the table
    it reads (DROP … CASCADE), so the table comes back first, then the views' CREATE VIEW."""
    tables = report.parts.get("tables")
    if part != "views" or tables is None or not tables.missing:
        return ""
    return (f" — the tables part reports missing: {', '.join(tables.missing)} too (a view goes with the "
            "table it reads): restore the table first, then re-run the CREATE VIEW")


test_deep_part_redis = _deep_part_check("redis")
test_deep_part_supabase = _deep_part_check("supabase")
test_deep_part_tables = _deep_part_check("tables")
test_deep_part_views = _deep_part_check("views")
test_deep_part_migrations = _deep_part_check("migrations")
test_deep_part_hard_guards = _deep_part_check("hard_guards")
