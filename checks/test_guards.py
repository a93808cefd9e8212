"""Rule 2, the hard guards: APP_ENV and SUPABASE_PROJECT_REF must match app_settings.

A container pointed at the wrong Supabase project is the accident the guards exist for, so
they are judged from both sides: the database (app_settings, read directly) against the
target profile, and what the running app reports against the same profile.
"""

from __future__ import annotations

import pytest

from fixtures import probes
from plugins.config import Runbook
from plugins.invariants import invariant, violated
from plugins.target import RunContext

pytestmark = [pytest.mark.postdeploy, pytest.mark.nightly]

_INSERT_REMEDY = (
    "Scenario 2 · Case 3: run `SELECT key, value FROM app_settings WHERE key IN ('environment', "
    "'supabase_project_ref')`; if a key is missing or wrong, INSERT … ON CONFLICT (key) DO UPDATE "
    "it to the container's value, then `railway restart`."
)


def _db_guard(key: str, expected: str, settings: probes.AppSettings, table: str, what: str) -> None:
    found = settings.get(key)
    if found is None:
        raise violated(f"{table} has no '{key}' row ({what} guard cannot hold); expected {expected!r}")
    if found != expected:
        raise violated(f"{table}.{key} is {found!r}, expected {expected!r} ({what} mismatch)")


@invariant(
    "JC-GUARD-01",
    title="app_settings.environment equals the target's APP_ENV",
    severity="blocker",
    section="Hard Guards (Environment Validation) › APP_ENV",
    remedy=_INSERT_REMEDY,
)
def test_environment_matches_app_settings(ctx: RunContext, runbook: Runbook, settings: probes.AppSettings) -> None:
    _db_guard(runbook.environment_key, ctx.target.environment, settings, runbook.settings_table, "APP_ENV")


@invariant(
    "JC-GUARD-02",
    title="app_settings.supabase_project_ref equals the target's SUPABASE_PROJECT_REF",
    severity="blocker",
    section="Hard Guards (Environment Validation) › SUPABASE_PROJECT_REF",
    remedy=_INSERT_REMEDY,
)
def test_project_ref_matches_app_settings(ctx: RunContext, runbook: Runbook, settings: probes.AppSettings) -> None:
    _db_guard(runbook.project_ref_key, ctx.target.project_ref, settings, runbook.settings_table, "SUPABASE_PROJECT_REF")


@invariant(
    "JC-GUARD-03",
    title="the app reports the target's environment and project ref",
    severity="blocker",
    section="Hard Guards (Environment Validation) › Validation Point",
    remedy="The container runs with the wrong APP_ENV / SUPABASE_PROJECT_REF: fix the Railway "
    "variables of this service (Rule 2) and redeploy; roll back first if it serves traffic.",
)
def test_app_reports_target_identity(ctx: RunContext, deep: probes.DeepReport) -> None:
    wrong = []
    if deep.environment != ctx.target.environment:
        wrong.append(f"environment {deep.environment!r} (expected {ctx.target.environment!r})")
    if deep.project_ref != ctx.target.project_ref:
        wrong.append(f"project_ref {deep.project_ref!r} (expected {ctx.target.project_ref!r})")
    if wrong:
        raise violated(f"{deep.path} reports " + " and ".join(wrong), evidence={
            "environment": deep.environment, "project_ref": deep.project_ref})
