"""Rule 2, the hard guards: APP_ENV and SUPABASE_PROJECT_REF must match app_settings.

A container pointed at the wrong Supabase project is the accident the guards exist for, so
they are triangulated from three sides that must all agree: what the target profile expects,
what app_settings holds (read directly), and what the running app reports (its own variables,
and the app_settings values it read). Each failure names the side that is the odd one out,
because that is the remedy: an INSERT … ON CONFLICT for a wrong row, a redeploy for a wrong
variable, and a second look at the profile when it disagrees with both.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fixtures import probes
from fixtures.probes import fallback
from fixtures.probes import health as probes_health
from fixtures.probes.health import HealthEndpoints, Reported, odd_one_out
from plugins.contract.drift import Dialects
from plugins.contract.health import HealthContract
from plugins.contract.runbook import Runbook
from plugins.contract.targets import RunContext
from plugins.contract.verdict import Undecidable, violated
from plugins.invariants import invariant


_INSERT_REMEDY = (
    "Scenario 2 · Case 3: run `SELECT key, value FROM app_settings WHERE key IN ('environment', "
    "'supabase_project_ref')`; if a key is missing or wrong, INSERT … ON CONFLICT (key) DO UPDATE "
    "it to the container's value, then `railway restart`."
)


def _insert_statement(runbook: Runbook, rows: list[tuple[str, str, str]]) -> str:
    """The runbook's Case 3 INSERT, with this deployment's names and the profile's values."""
    values = ", ".join(f"('{k}', '{v.replace(chr(39), chr(39) * 2)}', '{d}')" for k, v, d in rows)
    return (
        f"INSERT INTO {runbook.settings_table} (key, value, description) VALUES {values} "
        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
    )


def _app_reports(request: pytest.FixtureRequest, attr: str) -> str | None:
    """What the app itself reports (its container variable), when that can be known."""
    try:
        health: HealthEndpoints = request.getfixturevalue("health")
        return getattr(health.trusted_deep(), attr)
    except Undecidable:
        return None


def _db_guard(
    request: pytest.FixtureRequest, runbook: Runbook, settings: probes.AppSettings,
    key: str, expected: str, target: str, what: str, app_attr: str,
) -> None:
    found = settings.get(key)
    if found is None:
        raise Undecidable(
            f"{runbook.settings_table} has no '{key}' row: nothing to compare with {expected!r} "
            "(JC-GUARD-04 fails for the missing key)"
        )
    if found != expected:
        app = _app_reports(request, app_attr)
        seen = f"; the app reports {what} {app!r}" if app is not None else ""
        raise violated(
            f"{runbook.settings_table}.{key} is {found!r}, expected {expected!r} (target {target}){seen} — "
            f"{odd_one_out(expected, found, app)}",
            evidence={"profile": expected, "app_settings": found, "app": app},
        )


@invariant(
    "JC-GUARD-01",
    title="app_settings.environment equals the target's APP_ENV",
    severity="blocker",
    section="Hard Guards (Environment Validation) › APP_ENV",
    remedy=_INSERT_REMEDY,
    tiers=("postdeploy", "nightly"),
)
def test_environment_matches_app_settings(
    request: pytest.FixtureRequest, ctx: RunContext, runbook: Runbook, settings: probes.AppSettings
) -> None:
    _db_guard(request, runbook, settings, runbook.environment_key, ctx.target.environment,
              ctx.target.name, "APP_ENV", "environment")


@invariant(
    "JC-GUARD-02",
    title="app_settings.supabase_project_ref equals the target's SUPABASE_PROJECT_REF",
    severity="blocker",
    section="Hard Guards (Environment Validation) › SUPABASE_PROJECT_REF",
    remedy=_INSERT_REMEDY,
    tiers=("postdeploy", "nightly"),
)
def test_project_ref_matches_app_settings(
    request: pytest.FixtureRequest, ctx: RunContext, runbook: Runbook, settings: probes.AppSettings
) -> None:
    _db_guard(request, runbook, settings, runbook.project_ref_key, ctx.target.project_ref,
              ctx.target.name, "SUPABASE_PROJECT_REF", "project_ref")


@invariant(
    "JC-GUARD-03",
    title="the app reports the target's environment and project ref",
    severity="blocker",
    section="Hard Guards (Environment Validation) › Validation Point",
    remedy="The container runs with the wrong APP_ENV / SUPABASE_PROJECT_REF: fix the Railway "
    "variables of this service (Rule 2) and redeploy; roll back first if it serves traffic.",
    tiers=("postdeploy", "nightly"),
)
def test_app_reports_target_identity(
    request: pytest.FixtureRequest, ctx: RunContext, runbook: Runbook, trusted_deep: probes.DeepReport,
    health: HealthEndpoints, dialects: Dialects,
) -> None:
    wrong = []
    db: probes.AppSettings | None
    try:
        db = request.getfixturevalue("settings")
    except Undecidable:
        db = None
    for label, reported, expected, key, path, variable in (
        ("environment", trusted_deep.environment, ctx.target.environment, runbook.environment_key,
         runbook.deep.environment_path, "APP_ENV"),
        ("project_ref", trusted_deep.project_ref, ctx.target.project_ref, runbook.project_ref_key,
         runbook.deep.project_ref_path, "SUPABASE_PROJECT_REF"),
    ):
        if reported is None:
            wrong.append(f"no {label} (field '{path}' absent or null)")
        elif reported == "":
            # The container's variable is unset: the app skips this guard instead of failing.
            wrong.append(f"{variable} unset in the container ('{path}' is ''){_guard_word(trusted_deep, path)} — "
                         f"the {label} hard guard is disabled, while rule 2 says {variable} MUST equal "
                         f"{runbook.settings_table}.{key} (the target's {expected!r})")
        elif reported != expected:
            in_db = db.get(key) if db is not None else None
            side = odd_one_out(expected, in_db, reported) if db is not None else "app_settings unreadable"
            wrong.append(f"{label} {reported!r} (expected {expected!r}; app_settings {in_db!r} — {side})")
    if wrong:
        fault = violated(f"GET {trusted_deep.path} reports " + " and ".join(wrong), evidence={
            "environment": trusted_deep.environment, "project_ref": trusted_deep.project_ref})
        if trusted_deep.environment is None or trusted_deep.project_ref is None:
            # the fields are not where the dialect in force looks: drift if another finds them
            raise fallback.identity_unreadable(
                dialects, health, f"GET {trusted_deep.path} reports " + " and ".join(wrong), fault,
                ctx.target.environment, ctx.target.project_ref)
        raise fault


def _guard_word(report: probes.DeepReport, path: str) -> str:
    """What the guard's own part of the report says (its word and message), if it has one."""
    node = probes_health.dig(report.body, path.rpartition(".")[0]) if "." in path else None
    if not isinstance(node, dict) or not isinstance(node.get("status"), str):
        return ""
    said = node.get("message")
    return f"; the app's guard is {node['status']!r}" + (f" ({said!r})" if isinstance(said, str) and said else "")


@invariant(
    "JC-GUARD-04",
    title="app_settings holds the hard-guard keys (environment, supabase_project_ref)",
    severity="blocker",
    section="Incident Response Scenarios › Scenario 2 › Case 3",
    remedy="Scenario 2 · Case 3: \"Both must exist and match Railway variables. If missing, insert them\": "
    "INSERT INTO app_settings (key, value, description) VALUES ('environment', …), "
    "('supabase_project_ref', …) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value; then "
    "`railway restart`.",
    tiers=("postdeploy", "nightly"),
)
def test_guard_keys_present(ctx: RunContext, runbook: Runbook, settings: probes.AppSettings) -> None:
    wanted = [
        (runbook.environment_key, ctx.target.environment, "Environment marker"),
        (runbook.project_ref_key, ctx.target.project_ref, "Project reference"),
    ]
    missing = [row for row in wanted if settings.get(row[0]) is None]
    if missing:
        names = ", ".join(f"'{k}'" for k, _, _ in missing)
        raise violated(
            f"{runbook.settings_table} has no {names} row: the hard guards cannot hold "
            f"(/health/deep must fail CRITICAL). Run: {_insert_statement(runbook, missing)}"
        )


@invariant(
    "JC-GUARD-05",
    title="the app reads the same app_settings as the suite",
    severity="blocker",
    section="Hard Guards (Environment Validation) › Validation Point",
    remedy="Scenario 2 · Case 2: the app is connected to another database than this target's: "
    "verify SUPABASE_URL / SUPABASE_PROJECT_REF in the Railway variables (\"Using wrong Supabase "
    "project\" — copy-paste the project ref), fix them and redeploy.",
    tiers=("postdeploy", "nightly"),
)
def test_app_reads_same_app_settings(
    runbook: Runbook, settings: probes.AppSettings, trusted_deep: probes.DeepReport,
    warn: Callable[[str], None], health: HealthEndpoints,
) -> None:
    """The app reports the app_settings values it read (or null when it read none): a value
    other than the database's means it reads another database. A guard the app skipped read
    nothing — that is JC-GUARD-03's verdict, not a second database."""
    health_contract = health.contract
    differ: list[str] = []
    unreported: list[str] = []
    pairs: tuple[tuple[str, Reported | None], ...] = (
        (runbook.environment_key, trusted_deep.db_environment),
        (runbook.project_ref_key, trusted_deep.db_project_ref),
    )
    unread: list[str] = []
    paths = (health_contract.db_environment_path, health_contract.db_project_ref_path)
    for (key, reported), path in zip(pairs, paths):
        held = settings.get(key)
        if reported is None:
            unreported.append(key)
        elif reported.value is None and path is not None and _did_not_read(trusted_deep, path, health_contract):
            unreported.append(f"{key} (the app did not read it{_guard_word(trusted_deep, path)})")
        elif reported.value is None and held is not None and path is not None and _guard_word(trusted_deep, path):
            # The app's guard tried and failed (its database unreachable, the row absent):
            # it read nothing to compare.
            unread.append(f"{key}: {_guard_word(trusted_deep, path).removeprefix('; ')}")
        elif reported.value != held:
            differ.append(f"{key}: the app read {reported.value!r}, {runbook.settings_table} holds {held!r}")
    if differ:
        raise violated(
            f"GET {trusted_deep.path}: the app reads another app_settings than this target's database — "
            + "; ".join(differ)
        )
    if unread:
        raise Undecidable(f"GET {trusted_deep.path}: the app could not read app_settings — " + "; ".join(unread)
                          + " — nothing to compare with this target's database")
    if unreported:
        warn(
            f"GET {trusted_deep.path} does not report the app_settings value(s) it read for "
            f"{', '.join(unreported)} (runbook.toml health.db_*_path): only profile ↔ database ↔ app "
            "variables were compared"
        )


def _did_not_read(report: probes.DeepReport, path: str, contract: HealthContract) -> bool:
    """The guard that holds ``path`` says it did not run ("skipped"): its null is no reading."""
    node = probes_health.dig(report.body, path.rpartition(".")[0]) if "." in path else None
    return isinstance(node, dict) and node.get("status") in contract.part_unknown
