"""Runbook › Health Checks, and rule 3: any failure in /health/deep means ROLLBACK NOW.

/health says the process lives, /health/ready that it can take traffic (Redis), and
/health/deep is the deploy gate: each of its parts is judged on its own, so a failure names
the part and the runbook's Scenario 2 case that fixes it.
"""

from __future__ import annotations

import pytest

from fixtures import probes
from fixtures.clients import Api
from plugins.config import Runbook
from plugins.invariants import Undecidable, invariant, violated

pytestmark = [pytest.mark.postdeploy, pytest.mark.nightly]


def _missing_endpoint(resp: probes.EndpointResponse) -> Undecidable | None:
    if resp.status == 404:
        tried = ", ".join(p for p, _ in resp.tried)
        return Undecidable(f"endpoint {resp.name} missing: every path answered 404 ({tried})")
    return None


@invariant(
    "JC-HEALTH-01",
    title="/health answers 200 with JSON within the liveness budget",
    severity="critical",
    section="Health Checks › /health (Liveness Probe)",
    remedy="Scenario 1: check `railway status` and `railway logs -n 50` for a failed startup; "
    "roll back if the last deploy is the culprit, else `railway restart`.",
)
def test_liveness(api: Api, runbook: Runbook) -> None:
    resp = api.endpoint("health")
    if (missing := _missing_endpoint(resp)) is not None:
        raise missing
    if resp.status != 200:
        raise violated(f"GET {resp.path} answered HTTP {resp.status}, expected 200: {resp.excerpt()!r}")
    body = resp.body
    if not isinstance(body, dict):
        raise violated(f"GET {resp.path} answered {type(body).__name__} JSON, expected an object")
    budget = runbook.http.liveness_budget_ms
    if resp.elapsed_ms > budget:
        raise violated(f"GET {resp.path} took {resp.elapsed_ms:.0f} ms, budget {budget} ms")


@invariant(
    "JC-HEALTH-02",
    title="/health/ready answers 200 with Redis connected",
    severity="critical",
    section="Health Checks › /health/ready (Readiness Probe)",
    remedy="Scenario 2 · Case 1: check Redis (`railway logs -n 50 | grep -i redis`), restart the "
    "Redis service in the Railway dashboard, then `railway restart` the API.",
)
def test_readiness(api: Api) -> None:
    resp = api.endpoint("ready")
    if (missing := _missing_endpoint(resp)) is not None:
        raise missing
    body = resp.body
    redis_status = probes.dig(body, "redis.status") if isinstance(body, dict) else None
    if resp.status != 200:
        cause = probes.dig(body, "redis.error") if isinstance(body, dict) else None
        raise violated(
            f"GET {resp.path} answered HTTP {resp.status} (not ready): Redis {redis_status or '?'}"
            + (f" — {cause}" if cause else ""),
            evidence=body,
        )
    if redis_status != "connected":
        raise violated(f"GET {resp.path} is 200 but Redis is {redis_status!r}, expected 'connected'", evidence=body)


@invariant(
    "JC-DEEP-01",
    title="/health/deep answers 200 and healthy (the deploy gate)",
    severity="blocker",
    section="Health Checks › /health/deep (Comprehensive Health Check)",
    remedy="Rule 3: ROLLBACK NOW (Railway → Deployments → last stable → Redeploy); then read "
    "which part failed and follow its Scenario 2 case.",
)
def test_deep_healthy(deep: probes.DeepReport, runbook: Runbook) -> None:
    failing = [n for n, p in deep.parts.items() if not p.ok(runbook.deep.part_ok)]
    if deep.http_status != 200 or not deep.healthy(runbook.deep):
        raise violated(
            f"GET {deep.path} answered HTTP {deep.http_status} status {deep.status!r}, expected 200 "
            f"{'/'.join(runbook.deep.healthy)}; failing parts: {', '.join(failing) or 'none reported'}",
            evidence=deep.body,
        )


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
    def check(deep: probes.DeepReport, runbook: Runbook) -> None:
        p = deep.parts[part]
        if not p.present:
            raise violated(f"/health/deep has no '{p.path}' part ({case}: {what} cannot be judged)", evidence=deep.body)
        if not p.ok(runbook.deep.part_ok):
            detail = f"; missing: {', '.join(p.missing)}" if p.missing else ""
            extra = {k: v for k, v in p.detail.items() if k in ("error", "mismatches")}
            raise violated(
                f"/health/deep {part} is {p.status!r} ({case}: {what}){detail}"
                + (f"; {extra}" if extra else ""),
                evidence=p.detail,
            )

    check.__name__ = f"test_deep_part_{part}"
    return check


test_deep_part_redis = _deep_part_check("redis")
test_deep_part_supabase = _deep_part_check("supabase")
test_deep_part_tables = _deep_part_check("tables")
test_deep_part_views = _deep_part_check("views")
test_deep_part_migrations = _deep_part_check("migrations")
test_deep_part_hard_guards = _deep_part_check("hard_guards")
