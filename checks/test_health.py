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

One subject, one module (over ~450 lines for it): the deploy gate and its parts, JC-DEEP-02…07
declared one by one at the end, all judged by ``_judge_part``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from fixtures import probes
from fixtures.probes import drift as probes_drift
from fixtures.probes import fallback
from fixtures.probes import health as probes_health
from fixtures.probes.health import BadAnswer, EndpointMissing, HealthEndpoints, NoAnswer, alias_note, dig, json_object
from plugins.contract.drift import Dialects, DriftFinding, DriftUndecidable, drift_message
from plugins.contract.runbook import Runbook
from plugins.contract.verdict import Undecidable, one_line, violated
from plugins.invariants import invariant


@invariant(
    "JC-HEALTH-01",
    title="/health answers 200 with JSON within the liveness budget",
    severity="critical",
    section="Health Checks › /health (Liveness Probe)",
    remedy="Scenario 1: check `railway status` and `railway logs -n 50` for a failed startup; "
    "roll back if the last deploy is the culprit, else `railway restart`.",
    tiers=("postdeploy", "nightly"),
)
def test_liveness(health: HealthEndpoints, runbook: Runbook, dialects: Dialects) -> None:
    try:
        resp = health.answer("health")
    except NoAnswer as exc:
        raise violated(f"{exc.message} (Scenario 1: the app is not responding)") from None
    except EndpointMissing as exc:
        raise fallback.missing_endpoint(dialects, health, "health", exc) from None
    try:
        if 300 <= resp.status < 400:
            json_object(resp)  # a redirect (a login page in front of the app): say where to
        if resp.status != 200:
            raise violated(f"GET {resp.path} answered HTTP {resp.status}, expected 200: {resp.excerpt()!r}")
        body = json_object(resp)
    except BadAnswer as exc:
        raise violated(exc.message) from None
    contract = health.contract
    if contract.liveness_status_path:
        word = dig(body, contract.liveness_status_path)
        if word not in contract.liveness_ok:
            said = "has no" if word is None else f"says {word!r} in its"
            raise violated(f"GET {resp.path} is 200 but {said} '{contract.liveness_status_path}', expected "
                           f"{'/'.join(contract.liveness_ok)} (health.liveness_ok): the process answers, and says "
                           "it is not well", evidence=body)
    budget = runbook.http.liveness_budget_ms
    if resp.elapsed_ms > budget:
        raise violated(
            f"GET {resp.path} took {resp.elapsed_ms:.0f} ms, over the liveness budget of {budget} ms "
            "(runbook.toml http.liveness_budget_ms)"
        )


@invariant(
    "JC-HEALTH-02",
    title="/health/ready answers 200 with Redis connected",
    severity="critical",
    section="Health Checks › /health/ready (Readiness Probe)",
    remedy="Scenario 2 · Case 1: check Redis (`railway logs -n 50 | grep -i redis`), restart the "
    "Redis service in the Railway dashboard, then `railway restart` the API.",
    tiers=("postdeploy", "nightly"),
)
def test_readiness(health: HealthEndpoints, dialects: Dialects) -> None:
    """Not ready is said by the HTTP code (the runbook's 503) or, where the app always answers
    200, by its status word (health.ready_status_path): either way the failing dependency is
    named, with the app's own error for it."""
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
    if contract.ready_status_path:
        word = dig(body, contract.ready_status_path)
        if word not in contract.ready_status_ok:
            failing = probes_health.failing_dependencies(body, contract)
            raise violated(
                f"GET {resp.path} is 200 but its {contract.ready_status_path} is {word!r}, not "
                f"{'/'.join(contract.ready_status_ok)}: "
                + ("; ".join(failing) if failing else "no reported dependency says which one failed"),
                evidence=body,
            )
    if redis_status not in contract.ready_ok:
        fault = violated(
            f"GET {resp.path} is 200 but Redis ('{contract.ready_redis_path}') is {redis_status!r}, "
            f"expected {'/'.join(contract.ready_ok)}",
            evidence=body,
        )
        if redis_status is None:  # the field is not there: another dialect may say where it is
            raise fallback.ready_unreadable(dialects, health, f"GET {resp.path} has no "
                                            f"'{contract.ready_redis_path}'", fault)
        raise fault


@invariant(
    "JC-HEALTH-03",
    title="every health endpoint of the runbook is served (its path or an alias)",
    severity="critical",
    section="Health Checks › Health Endpoint Reference",
    remedy="The deployed app lacks a runbook endpoint: check the route exists in this release "
    "(a 404 on every alias means a rollback target or a proxy rule dropped it); add the path the "
    "app really serves to runbook.toml [endpoints] if it was renamed.",
    tiers=("postdeploy", "nightly"),
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
            found = fallback.served_elsewhere(dialects, health, name)
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
    tiers=("postdeploy", "nightly"),
)
def test_deep_healthy(health: HealthEndpoints, runbook: Runbook, dialects: Dialects,
                      warn: Callable[[str], None]) -> None:
    """The gate passes only on 200 + a healthy word over parts that agree. A healthy report
    over one of its own failing parts is no reason to deploy: it fails here (the deploy is
    not safe), naming the part by the app's path with the app's message — it does not merely
    "cannot decide". A failed report leads with the broken hard guard and both its values."""
    try:
        report = health.deep()
    except EndpointMissing as exc:
        raise fallback.missing_endpoint(dialects, health, "deep", EndpointMissing(
            f"{exc.message} — the deploy gate needs HTTP 200 with a healthy report")) from None
    except (NoAnswer, BadAnswer) as exc:
        raise violated(f"{exc.message} — the deploy gate needs HTTP 200 with a healthy report") from None
    if report.http_status == 200 and report.healthy(runbook.deep):
        found = probes_health.inconsistencies(report, runbook.deep, health.contract)
        if found:  # healthy over its own failing part: the deploy is not safe, whatever the top says
            raise violated(_self_contradiction(report, runbook, health, found), evidence=report.body)
        looks = [p.explain() for p in report.others(runbook.deep) if p.status in runbook.deep.part_warning]
        if looks:  # the deployment's own parts the runbook does not describe, holding with a warning
            warn(f"GET {report.path} is healthy, but look at: " + "; ".join(looks))
        return
    raise violated(
        _guard_lead(report, runbook, health)
        + f"GET {report.path} answered HTTP {report.http_status} status {report.status!r}, expected 200 "
        f"{'/'.join(runbook.deep.healthy)}" + (f" ({report.message()!r})" if report.message() else "")
        + f"; {_explain_failure(report, runbook, health)}",
        evidence=report.body,
    )


def _guard_lead(report: probes_health.DeepReport, runbook: Runbook, health: HealthEndpoints) -> str:
    """The gate's one-line summary starts with the broken hard guard and both of its values
    (app vs database) when that is why the report failed: the first thing to fix (Case 3)."""
    guards = report.parts.get("hard_guards")
    if guards is None or not guards.failing(runbook.deep.part_fine, health.contract.part_unknown):
        return ""
    broken = probes_health.broken_guards(report, runbook)
    return f"hard guard broken, {'; '.join(broken)} — " if broken else ""


def _self_contradiction(report: probes_health.DeepReport, runbook: Runbook, health: HealthEndpoints,
                        found: list[str]) -> str:
    """A report that says healthy (HTTP 200, its deploy flag true) while its own parts say
    otherwise fails the gate: the part is named by the app's own path, with the app's own
    message for it, and the report's verdict is quoted as what it is — not a reason to trust."""
    unknown, skipped = health.contract.part_unknown, health.contract.part_skipped
    said = [_case(p, runbook) for p in report.failing_pieces(runbook.deep, unknown)]
    unchecked = [p for p in report.pieces if p.unknown(unknown) and p.status not in skipped]
    if unchecked:
        said.append(f"not checked: {', '.join(f'{p.path} {p.status!r}' for p in unchecked)}")
    flags = "".join(f", {k} {str(v).lower()}" for k, v in report.deploy_flags.items())
    top = f"GET {report.path} says {report.status!r} (HTTP {report.http_status}{flags})"
    what = f" over its own parts: {'; '.join(said)}" if said else f" but contradicts itself: {'; '.join(found)}"
    return (_guard_lead(report, runbook, health) + top + what
            + " — the deploy is not safe: the app's gate did not count it (JC-DEEP-08)")


def _case(piece: probes_health.DeepPart, runbook: Runbook, *, brief: bool = False) -> str:
    """The part by the app's own path, its word, the runbook case that fixes it and the app's
    own message for it (``brief``: a hard guard the message already leads with, both values
    given, is not told again — the gate's message is one line; JC-DEEP-07 quotes the app)."""
    case = _PARTS[piece.name][1] if piece.name in _PARTS and piece.path not in runbook.deep.other_parts else ""
    if brief and piece.name == "hard_guards":
        piece = dataclasses.replace(piece, detail={})
    return piece.explain(case)


def _explain_failure(report: probes_health.DeepReport, runbook: Runbook, health: HealthEndpoints) -> str:
    """Which parts caused the verdict, each by the app's own path with what the app says about
    it (and the runbook case that fixes it), then the parts the app did not get to check
    because of them (one cause, one failure) and those it deliberately did not run."""
    unknown = health.contract.part_unknown
    causes = report.failing_pieces(runbook.deep, unknown)
    summarized = bool(_guard_lead(report, runbook, health))
    text = f"failing parts: {', '.join(_case(p, runbook, brief=summarized) for p in causes) or 'none reported'}"
    unchecked = [p for p in report.pieces if p.unknown(unknown)]
    if unchecked and causes:
        dependent = [p for p in unchecked if p.status not in health.contract.part_skipped]
        deliberate = [p for p in unchecked if p.status in health.contract.part_skipped]
        first = [p for p in causes if p.path not in runbook.deep.other_parts] or causes
        for group, why in ((dependent, f", because of {', '.join(p.path for p in first)}"), (deliberate, "")):
            if group:
                words = sorted({str(p.status) for p in group})
                text += f"; not checked ({'/'.join(words)}){why}: {', '.join(p.path for p in group)}"
    return text


@invariant(
    "JC-DEEP-08",
    title="the /health/deep report is consistent with itself",
    severity="blocker",
    section="Health Checks › /health/deep (Comprehensive Health Check)",
    remedy="Rule 3: treat the release as failed (ROLLBACK NOW) — its gate cannot be trusted; then fix "
    "the app's /health/deep: status healthy only when every part is ok, HTTP 503 with the failing "
    "parts listed otherwise.",
    tiers=("postdeploy", "nightly"),
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


# Each part of the deep report: its invariant (declared below, one check per part), the
# runbook's Scenario 2 case that fixes it, and what its failure means.
_PARTS = {
    "redis": ("JC-DEEP-02", "Case 1", "Redis connection error"),
    "supabase": ("JC-DEEP-03", "Case 2", "Supabase connection error"),
    "tables": ("JC-DEEP-04", "Case 5", "critical table missing"),
    "views": ("JC-DEEP-05", "Case 5", "critical view missing"),
    "migrations": ("JC-DEEP-06", "Case 4", "schema behind the code"),
    "hard_guards": ("JC-DEEP-07", "Case 3", "hard guard mismatch"),
}


def _judge_part(part: str, request: pytest.FixtureRequest, runbook: Runbook, health: HealthEndpoints,
                dialects: Dialects, warn: Callable[[str], None]) -> None:
    """One part of the deep report (JC-DEEP-02…07, declared at the end of this module)."""
    _, case, what = _PARTS[part]
    report, contradiction = _part_report(health, runbook, part)
    p = report.parts[part]
    if not p.present:
        found = probes_drift.part_drift(dialects, health, part)
        message = f"GET {report.path} has no '{p.path}' part"
        if found is not None:  # drift, or the part's fault read in the deployment's words
            raise found.verdict(message, probes_drift.judge_part(part))
        raise violated(f"{message} ({case}: {what} cannot be judged)", evidence=report.body)
    if part == "migrations" and p.status in runbook.deep.migrations_behind:
        raise violated(_schema_behind(report, p, case, what), evidence=p.detail)
    if p.status in runbook.deep.part_warning and p.ok(runbook.deep.part_fine):
        warn(f"GET {report.path} {part} is {p.status!r} (deep.part_warning): it holds, but look at "
             f"{p.path} ({case})")
        return
    if p.unknown(health.contract.part_unknown):
        # The runbook's parts only: the deployment's extra parts never stop its report.
        causes = [q for q in report.failing_pieces(runbook.deep, health.contract.part_unknown)
                  if q.name != part and q.path not in runbook.deep.other_parts]
        if part == "hard_guards" and not causes:
            raise violated(_guard_not_run(report, runbook, health), evidence=p.detail)
        raise Undecidable(_not_checked(report, p, causes, runbook, health), evidence=p.detail)
    if not p.ok(runbook.deep.part_ok):
        detail = f"; missing: {', '.join(p.missing)}" if p.missing else ""
        extra = {k: v for k, v in p.detail.items() if k in ("error", "mismatches")}
        said = p.detail.get("message")
        found = probes_drift.part_drift(dialects, health, part, fine=True)
        if found is not None and not p.missing:  # a word another dialect reads as holding
            raise found.undecidable(f"GET {report.path} {part} is {p.status!r}, not a word of "
                                    f"deep.part_ok")
        where = f" ({p.path})" if p.path != part else ""
        meaning = what
        if part == "migrations" and runbook.deep.migrations_behind:
            # The deployment has its own word for "behind"; this one is not it.
            meaning = "the app's schema-version read failed"
        broken = probes_health.broken_guards(report, runbook) if part == "hard_guards" else []
        raise violated(
            f"GET {report.path} {part}{where} is {p.status!r} ({case}: {meaning}){detail}"
            + (f" — {'; '.join(broken)}" if broken else "")
            + (f": the app says {one_line(str(said), 240)!r}" if said else "")
            + (f"; {extra}" if extra else "") + _views_cause(part, report)
            + _missing_schema_row(request, part, runbook) + _connection_cause(part, report, runbook)
            + (_not_counted(report, runbook) or _contradiction_note(contradiction)),
            evidence=p.detail,
        )


def _part_report(health: HealthEndpoints, runbook: Runbook,
                 part: str) -> tuple[probes_health.DeepReport, Undecidable | None]:
    """The deep report a part check judges. A report that contradicts itself (JC-DEEP-08)
    cannot be trusted where it says ok — but a part reporting its own failure is believed:
    the contradiction can only make things worse than that part says."""
    try:
        return health.trusted_deep(), None
    except Undecidable as exc:
        contradiction = exc
    try:
        report = health.deep()
    except Undecidable:
        raise contradiction from None
    p = report.parts[part]
    if not p.failing(runbook.deep.part_fine, health.contract.part_unknown):
        raise contradiction
    return report, contradiction


def _not_checked(report: probes_health.DeepReport, p: probes_health.DeepPart, causes: list[probes_health.DeepPart],
                 runbook: Runbook, health: HealthEndpoints) -> str:
    """One cause, one failure: a part the app did not check because an earlier part failed
    (a hard guard's CRITICAL stops the real app's report at once) is not a failure of its own.
    Say so, and point at the cause — by the app's path, the broken guard with both its values,
    and the check that fails for it."""
    text = f"the app could not check {p.name}: GET {report.path} reports {p.path} {p.status!r}"
    if not causes:
        return text
    because = ", ".join(f"{q.path} {q.status!r}" for q in causes)
    if any(q.name == "hard_guards" for q in causes) and (broken := probes_health.broken_guards(report, runbook)):
        because += f" ({'; '.join(broken)})"
    ids = sorted({_PARTS[q.name][0] for q in causes if q.name in _PARTS and q.path not in runbook.deep.other_parts}
                 | {"JC-DEEP-01"})
    return (f"{text}, because of {because} — the cause, failed by {', '.join(ids)}; {p.name} itself was not "
            "judged")


def _connection_cause(part: str, report: probes_health.DeepReport, runbook: Runbook) -> str:
    """A part that reads the database fails while the database connection itself fails: the
    connection is the cause to fix first (Case 2), not the part's own case."""
    supabase = report.parts.get("supabase")
    if part in ("supabase", "redis") or supabase is None or not supabase.present or supabase.ok(runbook.deep.part_fine):
        return ""
    return f" — the supabase part is {supabase.status!r} too: fix the database connection first (Case 2)"


def _contradiction_note(contradiction: Undecidable | None) -> str:
    if contradiction is None:
        return ""
    return " — the report contradicts itself (JC-DEEP-08), but this part's own failure is believed"


def _not_counted(report: probes_health.DeepReport, runbook: Runbook) -> str:
    """A failing part under a healthy top word: the app's gate did not count it."""
    if not report.healthy(runbook.deep):
        return ""
    flags = "".join(f", {k} {str(v).lower()}" for k, v in report.deploy_flags.items())
    return (f"; the app still reports {report.status} (HTTP {report.http_status}{flags}): its check failed "
            "without failing its report")


def _schema_behind(report: probes_health.DeepReport, p: probes_health.DeepPart, case: str, what: str) -> str:
    """The deployment's word for "behind" is not a failure of its own (deep.migrations_behind):
    say what the app reported and that its gate still passes."""
    said = p.detail.get("message")
    flags = "".join(f", {k} {str(v).lower()}" for k, v in report.deploy_flags.items())
    return (f"GET {report.path} migrations ({p.path}) is {p.status!r}"
            + (f" ({one_line(str(said), 200)!r})" if said else "")
            + f": the database is behind the code ({case}: {what}), and the app still calls the deploy "
            f"safe (status {report.status!r}, HTTP {report.http_status}{flags})")


def _missing_schema_row(request: pytest.FixtureRequest, part: str, runbook: Runbook) -> str:
    """The migrations part failed and app_settings has no schema_version row at all: that is
    the runbook's "Forgetting to update app_settings version" (Common Mistakes)."""
    if part != "migrations" or runbook.migrations_source != "settings":
        return ""
    try:
        settings: probes.AppSettings = request.getfixturevalue("settings")
    except Undecidable:
        return ""
    if settings.get(runbook.schema_version_key) is not None:
        return ""
    return (f" — {runbook.settings_table} has no '{runbook.schema_version_key}' row (\"Forgetting to update "
            f"app_settings version\", runbook Common Mistakes)")


def _guard_not_run(report: probes_health.DeepReport, runbook: Runbook, health: HealthEndpoints) -> str:
    """A hard guard the app skipped on a report that is otherwise fine: the guard is off."""
    skipped = [q for q in report.pieces if q.name == "hard_guards" and q.unknown(health.contract.part_unknown)]
    return ("the app does not run its hard guard: " + "; ".join(q.explain() for q in skipped)
            + " — rule 2: APP_ENV and SUPABASE_PROJECT_REF MUST match app_settings (see JC-GUARD-03)")


def _views_cause(part: str, report: probes_health.DeepReport) -> str:
    """Missing views while critical tables are missing too: a view is dropped with the table
    it reads (DROP … CASCADE), so the table comes back first, then the views' CREATE VIEW."""
    tables = report.parts.get("tables")
    if part != "views" or tables is None or not tables.missing:
        return ""
    return (f" — the tables part reports missing: {', '.join(tables.missing)} too (a view goes with the "
            "table it reads): restore the table first, then re-run the CREATE VIEW")


# --- the deep report, part by part (Scenario 2's cases) ------------------------------------


@invariant(
    "JC-DEEP-02",
    title="/health/deep part 'redis' is ok",
    severity="blocker",
    section="Incident Response Scenarios › Scenario 2 › Case 1",
    remedy="Scenario 2 · Case 1: restart the Redis service in the Railway dashboard, then `railway restart`.",
    tiers=("postdeploy", "nightly"),
)
def test_deep_part_redis(request: pytest.FixtureRequest, runbook: Runbook, health: HealthEndpoints,
                         dialects: Dialects, warn: Callable[[str], None]) -> None:
    _judge_part("redis", request, runbook, health, dialects, warn)


@invariant(
    "JC-DEEP-03",
    title="/health/deep part 'supabase' is ok",
    severity="blocker",
    section="Incident Response Scenarios › Scenario 2 › Case 2",
    remedy="Scenario 2 · Case 2: check SUPABASE_URL / SUPABASE_PROJECT_REF in Railway variables and "
    "status.supabase.com; fix the variables and redeploy.",
    tiers=("postdeploy", "nightly"),
)
def test_deep_part_supabase(request: pytest.FixtureRequest, runbook: Runbook, health: HealthEndpoints,
                            dialects: Dialects, warn: Callable[[str], None]) -> None:
    _judge_part("supabase", request, runbook, health, dialects, warn)


@invariant(
    "JC-DEEP-04",
    title="/health/deep part 'tables' is ok",
    severity="blocker",
    section="Incident Response Scenarios › Scenario 2 › Case 5",
    remedy="Scenario 2 · Case 5: find the migration that creates the missing table, apply it in the "
    "Supabase SQL editor, then `railway restart`.",
    tiers=("postdeploy", "nightly"),
)
def test_deep_part_tables(request: pytest.FixtureRequest, runbook: Runbook, health: HealthEndpoints,
                          dialects: Dialects, warn: Callable[[str], None]) -> None:
    _judge_part("tables", request, runbook, health, dialects, warn)


@invariant(
    "JC-DEEP-05",
    title="/health/deep part 'views' is ok",
    severity="blocker",
    section="Incident Response Scenarios › Scenario 2 › Case 5",
    remedy="Scenario 2 · Case 5: re-run the CREATE VIEW from its migration in the Supabase SQL "
    "editor, then `railway restart`.",
    tiers=("postdeploy", "nightly"),
)
def test_deep_part_views(request: pytest.FixtureRequest, runbook: Runbook, health: HealthEndpoints,
                         dialects: Dialects, warn: Callable[[str], None]) -> None:
    _judge_part("views", request, runbook, health, dialects, warn)


@invariant(
    "JC-DEEP-06",
    title="/health/deep part 'migrations' is ok",
    severity="blocker",
    section="Incident Response Scenarios › Scenario 2 › Case 4",
    remedy="Scenario 2 · Case 4: compare /health/schema with migrations/, apply the missing "
    "migration manually (rule 5), then `railway restart`.",
    tiers=("postdeploy", "nightly"),
)
def test_deep_part_migrations(request: pytest.FixtureRequest, runbook: Runbook, health: HealthEndpoints,
                              dialects: Dialects, warn: Callable[[str], None]) -> None:
    _judge_part("migrations", request, runbook, health, dialects, warn)


@invariant(
    "JC-DEEP-07",
    title="/health/deep part 'hard_guards' is ok",
    severity="blocker",
    section="Incident Response Scenarios › Scenario 2 › Case 3",
    remedy="Scenario 2 · Case 3: APP_ENV / SUPABASE_PROJECT_REF must equal app_settings; fix the "
    "wrong side (never production variables mid-incident without a rollback).",
    tiers=("postdeploy", "nightly"),
)
def test_deep_part_hard_guards(request: pytest.FixtureRequest, runbook: Runbook, health: HealthEndpoints,
                               dialects: Dialects, warn: Callable[[str], None]) -> None:
    _judge_part("hard_guards", request, runbook, health, dialects, warn)
