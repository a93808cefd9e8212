"""Rules 1 and 5 and the runbook's "Migration Flow": migration first, code second.

The catastrophe the runbook's order prevents is code that meets a schema it does not
expect: a table or view missing, a migration in the code but not in production, an app
expecting a version nobody applied, a column changed by hand. Each is judged here from the
catalog and the migration log directly (never through the app alone), so a broken
/health/schema cannot hide a broken schema. The `premerge` tier runs the PR's migrations
folder against production before a merge: it fails while a migration is not applied, and
passes once it is (``pytest --target prod -m premerge --migrations-dir ../app/migrations``).

A deployment that keeps no migration log (``database.migrations_source = "settings"``: only
app_settings.schema_version, kept by hand) is judged by that version, which stands for every
migration up to it; a view the runbook names that is a table in another known dialect's
list is drift (plugins.drift), not a missing view.
"""

from __future__ import annotations

import pytest

from fixtures import migration_lint, probes, schema_baseline
from fixtures.connections import Api, Database
from fixtures.probes import drift as probes_drift
from fixtures.probes import fallback
from fixtures.probes import schema as probes_schema
from fixtures.probes.health import HealthEndpoints
from plugins.contract.drift import Dialects
from plugins.contract.runbook import Runbook
from plugins.contract.schema import SchemaContract
from plugins.contract.verdict import Undecidable, violated
from plugins.invariants import invariant
from plugins.needs_option import skip_unless_given
from plugins.schema_options import SchemaOptions


_RULE_1 = "rule 1: NEVER merge code that depends on a migration NOT applied in PROD"


@pytest.fixture(scope="module")
def contract(runbook: Runbook) -> SchemaContract:
    return runbook.section("schema")


@pytest.fixture(scope="module")
def migration_scan(schema_options: SchemaOptions) -> probes_schema.MigrationScan:
    if schema_options.migrations_dir is None:
        skip_unless_given("--migrations-dir PATH", "no --migrations-dir given (the application's migrations/ "
                          "folder): nothing to compare production's migration log with")
    return probes_schema.scan_migrations(schema_options.migrations_dir)


@pytest.fixture(scope="module")
def migration_files(migration_scan: probes_schema.MigrationScan) -> probes_schema.MigrationScan:
    """The scan, for the checks that compare files with the log: with no file named in the
    runbook's convention there is nothing to compare, and passing on nothing would say the
    folder is applied. JC-MIG-02 says why, once; these are not judged (a skip is not a pass)."""
    if not migration_scan.conventional:
        pytest.skip("not judged: no file of the migrations folder is named in the runbook's convention "
                    "(YYYYMMDD_description.sql), so none can be matched with the migration log (JC-MIG-02)")
    return migration_scan


@pytest.fixture(scope="module")
def applied(db: Database, runbook: Runbook, dialects: Dialects) -> list[probes.MigrationRow]:
    return fallback.applied_migrations(db, runbook, dialects)


def _newest(applied: list[probes.MigrationRow], runbook: Runbook) -> probes.MigrationRow:
    if not applied:
        raise Undecidable(f"{runbook.migration_log} is empty: no migration recorded")
    return applied[0]  # migration_history is newest first


def _judge_kinds(found: dict[str, probes.Relation], wanted: str, problems: dict[str, str],
                 dialects: Dialects, expected: str) -> None:
    """Raise for ``problems`` (relation name -> what is wrong): a violation for the real
    ones; drift when the only "problem" is a relation another known dialect lists as the
    kind it is (a view the deployment keeps as a table)."""
    evidence = {r.name: r.kind for r in found.values()}
    drift = probes_drift.relation_drift(dialects, found, wanted)
    drifted: set[str] = drift.value if drift is not None else set()
    real = [text for name, text in problems.items() if name not in drifted]
    if real:
        note = f" (drift: {'; '.join(f.describe() for f in drift.findings)})" if drift is not None else ""
        raise violated(f"{expected}{'; '.join(real)}{note}", evidence=evidence)
    if drift is not None:
        raise drift.undecidable(expected + "; ".join(problems.values()))


# --- critical relations -------------------------------------------------------------------


@invariant(
    "JC-SCHEMA-01",
    title="the critical tables exist (read from the catalog)",
    severity="blocker",
    section="Health Checks › /health/deep (Comprehensive Health Check) › critical tables",
    remedy="Scenario 2 · Case 5: find the migration that creates the missing table, run it in the "
    "Supabase SQL editor, then `railway restart` and re-check /health/deep.",
    tiers=("postdeploy", "nightly"),
)
def test_critical_tables_exist(db: Database, runbook: Runbook, dialects: Dialects) -> None:
    found = probes.relations(db, runbook.schema, list(runbook.critical_tables))
    wrong = {r.name: f"{r.name} ({r.kind})" for r in found.values() if r.kind != "table"}
    if wrong:
        _judge_kinds(found, "table", wrong, dialects,
                     f"expected tables {', '.join(runbook.critical_tables)} in schema {runbook.schema} "
                     f"(database.critical_tables, dialect '{runbook.dialect}'); not a table: ")


@invariant(
    "JC-SCHEMA-02",
    title="the critical views exist and answer SELECT … LIMIT 0",
    severity="blocker",
    section="Health Checks › /health/deep (Comprehensive Health Check) › critical views",
    remedy="Scenario 2 · Case 5: get the view's CREATE VIEW statement from its migration, run it in "
    "the Supabase SQL editor, then `railway restart` and re-check /health/deep.",
    tiers=("postdeploy", "nightly"),
)
def test_critical_views_answer(db: Database, runbook: Runbook, dialects: Dialects) -> None:
    """Case 5 checks ``information_schema.views``, which misses materialized views and
    views the role may not use; the catalog plus a LIMIT 0 query sees both."""
    found = probes.relations(db, runbook.schema, list(runbook.critical_views))
    problems = {r.name: f"{r.name} is {'missing' if r.kind == 'missing' else 'a ' + r.kind}"
                for r in found.values() if r.kind not in ("view", "materialized view")}
    for r in found.values():
        if r.kind in ("view", "materialized view"):
            error = probes_schema.view_answers(db, runbook.schema, r.name)
            if error is not None:
                problems[r.name] = f"{r.name} does not answer SELECT * LIMIT 0: {error}"
    if problems:
        _judge_kinds(found, "view", problems, dialects,
                     f"expected views {', '.join(runbook.critical_views)} in schema {runbook.schema} "
                     f"(database.critical_views, dialect '{runbook.dialect}'); ")


@invariant(
    "JC-SCHEMA-03",
    title="the critical tables' columns match the schema baseline (no drift)",
    severity="critical",
    section="Migration Flow (CRITICAL ORDER) › Why This Order Matters",
    remedy="A column changed outside a migration: put the change in a migration (or revert it) and "
    "apply it the runbook's way (rule 5); then rewrite the baseline with --write-schema-baseline.",
    tiers=("nightly",),
)
def test_schema_drift(db: Database, runbook: Runbook, schema_options: SchemaOptions) -> None:
    current = probes_schema.column_fingerprint(db, runbook)
    written = schema_options.write_baseline
    if written is not None:
        schema_baseline.write(written, current)
    baseline, source = schema_options.baseline, schema_options.baseline_path
    if baseline is None or (written is not None and source == written):
        if written is not None:
            pytest.skip(f"baseline written to {written} (sha256 {current.sha256[:12]}); nothing to compare")
        skip_unless_given("--schema-baseline PATH",
                          "no --schema-baseline given: nothing to compare the critical tables' columns with")
    if baseline.schema != current.schema:
        raise violated(f"baseline {source} describes schema {baseline.schema!r}, runbook.toml says "
                       f"{current.schema!r}: rewrite the baseline with --write-schema-baseline")
    changes = schema_baseline.diff(baseline, current)
    if changes:
        raise violated(
            f"expected the columns of baseline {source.name if source else '?'}, found "
            f"{len(changes)} change(s): " + "; ".join(c.describe() for c in changes),
            evidence={"baseline": baseline.sha256, "current": current.sha256,
                      "changes": [c.describe() for c in changes]},
        )


# --- migrations: files against the log -----------------------------------------------------


@invariant(
    "JC-MIG-01",
    title="every migration file is applied (migration first, code second)",
    severity="blocker",
    section="Migration Flow (CRITICAL ORDER) › Step-by-Step Checklist › 3. PRODUCTION",
    remedy="Rule 1 / step 3: apply the listed migration to production by hand (Supabase SQL editor "
    "or psql) BEFORE merging the code, then verify /health/schema (step 4).",
    tiers=("nightly", "premerge"),
)
def test_migration_files_applied(migration_files: probes_schema.MigrationScan,
                                 applied: list[probes.MigrationRow], runbook: Runbook) -> None:
    cmp = probes_schema.compare_migrations(migration_files.migrations, applied)
    if cmp.unapplied:
        names = ", ".join(m.file for m in cmp.unapplied)
        raise violated(
            f"expected every file of the migrations folder in {runbook.migration_log}; "
            f"not applied: {names} ({_RULE_1}; order: MIGRATION FIRST → CODE AFTER)",
            evidence={"unapplied": [m.file for m in cmp.unapplied],
                      "newest_applied": applied[0].version if applied else None},
        )


@invariant(
    "JC-MIG-06",
    title="every applied migration has its file (no drift in the migration log)",
    severity="normal",
    section="Incident Response Scenarios › Scenario 2 › Case 4",
    remedy="Case 4: find the file of the listed version (deleted, renamed, or applied from a branch "
    "that never merged) and restore it to migrations/, so the code's history matches production.",
    tiers=("nightly",),
)
def test_applied_migrations_have_files(migration_files: probes_schema.MigrationScan,
                                       applied: list[probes.MigrationRow], runbook: Runbook) -> None:
    """Nightly only: a row newer than every file is the runbook's own order (applied before
    its PR merges) and passes; an older row with no file is drift. Not in `premerge`, where
    another PR's already-applied migration must not block this one."""
    cmp = probes_schema.compare_migrations(migration_files.migrations, applied)
    if cmp.drift:
        rows = ", ".join(f"{r.version} ({r.description})" for r in cmp.drift)
        raise violated(
            f"expected a file for every row of {runbook.migration_log}; drift: "
            f"applied but no file in the migrations folder: {rows}",
            evidence={"drift": [r.version for r in cmp.drift], "ahead": [r.version for r in cmp.ahead]},
        )


@invariant(
    "JC-MIG-02",
    title="migration files are named YYYYMMDD_description.sql, one file per version",
    severity="critical",
    section="Migration Flow (CRITICAL ORDER) › Step-by-Step Checklist › 1. DEVELOPMENT",
    remedy="Rename the file to migrations/YYYYMMDD_description.sql (or YYYYMMDDHHMMSS_…) with a "
    "version no other file has — Common Mistakes: 'use timestamp in filename'.",
    tiers=("nightly", "premerge"),
)
def test_migration_file_names(migration_scan: probes_schema.MigrationScan, schema_options: SchemaOptions) -> None:
    """A badly named file is never matched to the log (so never known to be applied); two
    files sharing a version make one row stand for both. Subfolders are read too. A folder
    with no file in the convention at all is one finding, said once (the file-against-log
    checks are then not judged), not a list of every file."""
    scan = migration_scan
    if not scan.conventional:
        folders = sorted({name.rpartition("/")[0] or "." for name, _ in scan.bad_names})
        sample = ", ".join(name for name, _ in scan.bad_names[:2])
        found = (f"its {scan.sql_files} .sql file(s) in {len(folders)} folder(s) follow another convention "
                 f"(e.g. {sample})" if scan.sql_files else "it holds no .sql file")
        raise violated(
            "no migration file is named YYYYMMDD_description.sql (or YYYYMMDDHHMMSS_…): " + found
            + (f", besides {scan.other_files} other file(s)" if scan.other_files else "")
            + "; none can be matched with the migration log, so JC-MIG-01/05/06 are not judged "
            f"(folder {schema_options.migrations_dir})",
            evidence={"files": [name for name, _ in scan.bad_names], "folders": folders,
                      "other_files": scan.other_files},
        )
    problems = [reason for _, reason in scan.bad_names]
    for group in scan.duplicates:
        problems.append(f"files {', '.join(repr(m.file) for m in group)} share version {group[0].version}")
    if problems:
        raise violated("expected YYYYMMDD_description.sql names with unique versions; " + "; ".join(problems),
                       evidence=problems)


@invariant(
    "JC-MIG-03",
    title="app_settings.schema_version equals the newest applied migration",
    severity="critical",
    section="Migration Flow (CRITICAL ORDER) › Common Mistakes and How to Avoid Them",
    remedy="Common Mistakes: 'forgetting to update app_settings version' — set the schema_version "
    "row of app_settings to the newest applied version, then verify /health/schema (step 4).",
    tiers=("nightly", "premerge"),
)
def test_schema_version_is_newest(settings: probes.AppSettings, applied: list[probes.MigrationRow],
                                  runbook: Runbook) -> None:
    """With no migration log (database.migrations_source = "settings") the version row *is*
    the log: it holds by construction, and JC-MIG-01 judges it against the files instead."""
    newest = _newest(applied, runbook)
    recorded = settings.get(runbook.schema_version_key)
    where = f"{runbook.settings_table}.{runbook.schema_version_key}"
    if recorded is None:
        raise violated(f"{runbook.settings_table} has no '{runbook.schema_version_key}' row; expected "
                       f"{newest.version} (newest in {runbook.migrations_table})")
    if probes_schema.version_key(recorded) != probes_schema.version_key(newest.version):
        state = "left behind" if probes_schema.version_key(recorded) < probes_schema.version_key(newest.version) else "ahead of the log"
        raise violated(
            f"{where} is {recorded!r}, expected {newest.version!r} (newest in "
            f"{runbook.migrations_table}: {newest.description}) — {state}",
            evidence={"schema_version": recorded, "newest_applied": newest.version},
        )


@invariant(
    "JC-MIG-04",
    title="the version the app's code expects is applied",
    severity="blocker",
    section="CRITICAL RULES - READ FIRST › rule 5 (verify /health/schema)",
    remedy="Scenario 2 · Case 4: apply the missing migration manually (rule 5), verify /health/schema, "
    "then `railway restart`; if the code already serves traffic, ROLLBACK first (rule 3).",
    tiers=("postdeploy", "nightly"),
)
def test_expected_version_applied(api: Api, applied: list[probes.MigrationRow], runbook: Runbook,
                                  contract: SchemaContract, health: HealthEndpoints, dialects: Dialects) -> None:
    expected = fallback.expected_version(api, contract.expected_version_from, health, dialects)
    newest = _newest(applied, runbook)
    if probes_schema.version_key(expected.version) > probes_schema.version_key(newest.version):
        raise violated(
            f"the app expects migration {expected.version} ({expected.source}), but the newest applied "
            f"is {newest.version} — the code depends on a migration not applied ({_RULE_1})",
            evidence={"expected": expected.version, "newest_applied": newest.version},
        )


@invariant(
    "JC-MIG-05",
    title="migrations not yet applied take no blocking lock on a production table",
    severity="critical",
    section="Database Maintenance › Creating Missing Indices (Critical)",
    remedy="Rewrite the statement so it does not lock the table: CREATE INDEX CONCURRENTLY (the "
    "runbook's 'safe way to add index without blocking queries'), NOT VALID then VALIDATE, a "
    "nullable column plus a CHECK constraint.",
    tiers=("nightly", "premerge"),
)
def test_pending_migrations_lint(migration_files: probes_schema.MigrationScan,
                                 applied: list[probes.MigrationRow], db: Database, runbook: Runbook,
                                 contract: SchemaContract) -> None:
    """Only the files not yet applied are linted: an applied migration's locks are history,
    and the next one is what someone is about to paste into production's SQL editor."""
    pending = probes_schema.compare_migrations(migration_files.migrations, applied).unapplied
    if not pending:
        return
    try:
        result = migration_lint.lint(
            [m.path for m in pending], contract.lint, schema=runbook.schema,
            pg_version=probes_schema.server_version(db),
        )
    except migration_lint.LinterUnavailable as exc:
        raise Undecidable(f"migration lint: {exc}") from None
    if result.blocking:
        raise violated(
            f"expected no blocking lock in the {len(pending)} pending migration(s); found "
            f"{len(result.blocking)}: " + "; ".join(f.describe(short=True) for f in result.blocking)
            + f" — {result.blocking[0].message}",
            evidence={"blocking": [f.describe() for f in result.blocking],
                      "notes": [f.describe() for f in result.notes], "linter": result.squawk_version},
        )
