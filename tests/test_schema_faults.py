"""The schema and migration checks, each proven to fail on its fault (and only they).

Faults are made the way they happen: a migration file added to the code but never applied,
a file deleted after it ran, a badly named file, app_settings.schema_version not bumped, an
app deployed expecting a newer migration, a column altered by hand, a view dropped, a
migration that would lock a high-volume table, the critical relations outside the schema
runbook.toml names. Each run asserts exactly which invariants of
checks/test_schema.py fail and that the message names the cause.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from fixtures import schema_baseline
from fixtures.migrations import list_migrations, version_key
from fixtures.stack.app_services import api_executor
from fixtures.stack.backends.native import NativeStack
from fixtures.stack.database import apply_migrations
from fixtures.stack.info import StackInfo
from fixtures.stack.refapp.config import MIGRATIONS_DIR
from fixtures.stack.services import free_port
from plugins.contract.runbook import load_runbook
from tests.area_helpers import runbook_copy
from tests.conftest import LOCAL_REF, run_suite

# The reference stack's newest migration (other areas add migrations: never hard-code it).
NEWEST = list_migrations(MIGRATIONS_DIR)[-1].version

SCHEMA = ("checks/test_schema.py",)
ALL_IDS = {
    "JC-SCHEMA-01", "JC-SCHEMA-02", "JC-SCHEMA-03",
    "JC-MIG-01", "JC-MIG-02", "JC-MIG-03", "JC-MIG-04", "JC-MIG-05", "JC-MIG-06",
}
PREMERGE_IDS = {"JC-MIG-01", "JC-MIG-02", "JC-MIG-03", "JC-MIG-05"}
AREA_PREFIXES = ("JC-SCHEMA-", "JC-MIG-")
BASELINE = MIGRATIONS_DIR.parent / "schema-baseline.json"

# A migration the lint accepts: nullable column without default (no rewrite, no scan), and a
# plain index on a small table (reported as a note, not blocking).
HARMLESS = """-- Read receipts for the conversation log.
ALTER TABLE interacoes ADD COLUMN lida_em timestamptz;
CREATE INDEX idx_grupos_nome ON grupos (nome);
"""


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    """A copy of the reference stack's migrations folder, to add or remove files in."""
    target = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, target)
    return target


def test_healthy_stack_passes_every_schema_check(healthy: NativeStack, suite, migrations: Path) -> None:  # type: ignore[no-untyped-def]
    run = suite("--migrations-dir", str(migrations), "--schema-baseline", str(BASELINE), paths=SCHEMA)
    assert run.exitcode == 0, run.output[-3000:]
    assert set(run.outcomes()) == ALL_IDS
    assert run.not_passed() == set()


def test_local_profile_defaults_to_the_reference_migrations_and_baseline(healthy: NativeStack, suite) -> None:  # type: ignore[no-untyped-def]
    """targets.toml's local profile names the stack's own folder and baseline: a plain
    `pytest --target local` judges every schema check (none skipped)."""
    run = suite(paths=SCHEMA)
    assert run.exitcode == 0, run.output[-3000:]
    assert run.not_passed() == set()


def test_written_baseline_is_byte_stable(healthy: NativeStack, suite, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "baseline.json"
    run = suite("--write-schema-baseline", str(out), "--schema-baseline", str(BASELINE), paths=SCHEMA)
    assert run.not_passed() == set(), run.output[-3000:]
    assert f"schema baseline written to {out}" in run.output
    # The same schema writes the same bytes as the committed baseline.
    assert out.read_bytes() == BASELINE.read_bytes()
    again = suite("--write-schema-baseline", str(out), "--schema-baseline", str(out), paths=SCHEMA)
    assert again.outcomes()["JC-SCHEMA-03"] == "skipped"
    assert "baseline written to" in again.message("JC-SCHEMA-03")
    assert out.read_bytes() == BASELINE.read_bytes()


def test_migration_added_but_not_applied(healthy: NativeStack, suite, migrations: Path) -> None:  # type: ignore[no-untyped-def]
    (migrations / "20260301_interacoes_lida_em.sql").write_text(HARMLESS)
    run = suite("--migrations-dir", str(migrations), paths=SCHEMA)
    assert run.exitcode == 1
    assert run.not_passed() == {"JC-MIG-01"}
    message = run.message("JC-MIG-01")
    assert "20260301_interacoes_lida_em.sql" in message and "rule 1" in message


def test_applied_migration_whose_file_was_deleted(healthy: NativeStack, suite, migrations: Path) -> None:  # type: ignore[no-untyped-def]
    (migrations / "20260126_fk_indices.sql").unlink()
    run = suite("--migrations-dir", str(migrations), paths=SCHEMA)
    assert run.not_passed() == {"JC-MIG-06"}
    assert "drift" in run.message("JC-MIG-06") and "20260126" in run.message("JC-MIG-06")


def test_row_newer_than_every_file_is_the_runbook_order(healthy: NativeStack, suite, migrations: Path) -> None:  # type: ignore[no-untyped-def]
    """Migration first, code second: the newest migration is applied before its file merges."""
    max(migrations.glob("*.sql"), key=lambda p: version_key(p.name.split("_")[0])).unlink()
    run = suite("--migrations-dir", str(migrations), paths=SCHEMA)
    assert run.not_passed() == set(), run.output[-3000:]


@pytest.mark.parametrize(
    ("name", "expect"),
    [
        ("add_lida_em.sql", "'add_lida_em.sql' is not named YYYYMMDD_description.sql"),
        ("2026-03-01_add_lida_em.sql", "'2026-03-01_add_lida_em.sql' is not named"),
        ("20260202_outra_coisa.sql", "share version 20260202"),
    ],
    ids=["no-timestamp", "dashed-date", "duplicate-version"],
)
def test_badly_named_migration_file(healthy: NativeStack, suite, migrations: Path, name: str, expect: str) -> None:  # type: ignore[no-untyped-def]
    (migrations / name).write_text("SELECT 1;\n")
    run = suite("--migrations-dir", str(migrations), paths=SCHEMA)
    assert run.not_passed() == {"JC-MIG-02"}
    assert expect in run.message("JC-MIG-02")


def test_migration_in_a_subfolder_is_scanned(healthy: NativeStack, suite, migrations: Path) -> None:  # type: ignore[no-untyped-def]
    """A repository may keep migrations/sprint-NN/*.sql: a file there is a migration too."""
    (migrations / "sprint-71").mkdir()
    (migrations / "sprint-71" / "20260301_interacoes_lida_em.sql").write_text(HARMLESS)
    run = suite("--migrations-dir", str(migrations), paths=SCHEMA)
    assert run.not_passed() == {"JC-MIG-01"}, run.output[-3000:]
    assert "not applied: sprint-71/20260301_interacoes_lida_em.sql" in run.message("JC-MIG-01")


def test_folder_without_the_naming_convention_says_so_once(healthy: NativeStack, suite, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The deployment's own migrations folder (sprint subfolders, NNN_desc.sql, APPLY_ME.sql,
    apply.py — tests/test_schema_units.py real_layout): no file is named in the runbook's
    convention, so nothing can be compared with the log. One finding (JC-MIG-02) says so; the
    checks that compare files with the log are not judged — never passed on nothing."""
    from tests.test_schema_units import real_layout

    folder = real_layout(tmp_path)
    run = suite("--migrations-dir", str(folder), paths=SCHEMA)
    assert run.exitcode == 1, run.output[-3000:]
    assert run.not_passed() == {"JC-MIG-01", "JC-MIG-02", "JC-MIG-05", "JC-MIG-06"}
    assert {i: run.outcomes()[i] for i in ("JC-MIG-01", "JC-MIG-05", "JC-MIG-06")} == dict.fromkeys(
        ("JC-MIG-01", "JC-MIG-05", "JC-MIG-06"), "skipped")
    assert run.outcomes()["JC-MIG-02"] == "failed"
    assert run.message("JC-MIG-02").startswith(
        "no migration file is named YYYYMMDD_description.sql (or YYYYMMDDHHMMSS_…): its 15 .sql file(s) in 6 "
        "folder(s) follow another convention (e.g. criar_indices_performance.sql, sprint-25/001_chips_schema.sql), "
        "besides 1 other file(s); none can be matched with the migration log, so JC-MIG-01/05/06 are not judged "
        "(folder "), run.message("JC-MIG-02")
    for inv in ("JC-MIG-01", "JC-MIG-05", "JC-MIG-06"):
        assert run.message(inv).startswith("not judged: no file of the migrations folder is named in the "
                                           "runbook's convention"), run.message(inv)
        assert "(JC-MIG-02)" in run.message(inv)


@pytest.mark.parametrize(
    ("recorded", "state"),
    [("20260126", "left behind"), ("20991231", "ahead of the log")],
    ids=["left-behind", "ahead-of-the-log"],
)
def test_schema_version_differs_from_the_log(healthy: NativeStack, suite, sql, recorded: str,  # type: ignore[no-untyped-def]
                                             state: str) -> None:
    """Left behind: the runbook's "forgetting to update app_settings version". Ahead: bumped
    by hand for a migration never recorded in the log (or recorded under another version)."""
    sql("UPDATE app_settings SET value = %s WHERE key = 'schema_version'", (recorded,))
    run = suite(paths=SCHEMA)
    assert run.not_passed() == {"JC-MIG-03"}
    message = run.message("JC-MIG-03")
    assert f"app_settings.schema_version is '{recorded}'" in message
    assert f"expected '{NEWEST}'" in message and message.endswith(state)


def test_app_expects_a_newer_version(healthy: NativeStack, suite, stack_json: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A second API, deployed with code that expects migration 20260301 (never applied)."""
    info = healthy.info
    assert info is not None
    port = free_port()
    api = api_executor(port=port, database_url=info.database_url, redis_url=info.redis_url,
                       environment=info.environment, project_ref=info.project_ref, run_id=healthy.run_id,
                       logdir=tmp_path, extra_env={"EXPECTED_SCHEMA_VERSION": "20260301"})
    api.start()
    try:
        moved = tmp_path / "stack.json"
        moved.write_text(replace(StackInfo.from_json(stack_json.read_text()), api_url=f"http://127.0.0.1:{port}").to_json())
        run = run_suite("--attach-stack", str(moved), reports=tmp_path / "reports", paths=SCHEMA)
    finally:
        api.stop()
    assert run.not_passed() == {"JC-MIG-04"}
    message = run.message("JC-MIG-04")
    assert "expects migration 20260301" in message and f"newest applied is {NEWEST}" in message
    assert "/health/schema" in message


@pytest.mark.smoke
def test_column_changed_against_the_baseline(healthy: NativeStack, suite, sql) -> None:  # type: ignore[no-untyped-def]
    sql("ALTER TABLE interacoes ALTER COLUMN conteudo TYPE varchar(2000)")
    sql("ALTER TABLE clientes ALTER COLUMN crm SET NOT NULL")
    sql("ALTER TABLE job_executions ADD COLUMN tentativa integer")
    sql("ALTER TABLE clientes DROP COLUMN especialidade")
    run = suite(paths=SCHEMA)
    assert run.not_passed() == {"JC-SCHEMA-03"}
    message = run.message("JC-SCHEMA-03")
    assert "4 change(s)" in message
    assert "clientes.especialidade removed (text, NULL)" in message
    assert "interacoes.conteudo changed (type text → character varying(2000))" in message
    assert "clientes.crm changed (NULL → NOT NULL)" in message
    assert "job_executions.tentativa added (integer, NULL)" in message


@pytest.mark.parametrize(
    ("fault", "expect"),
    [
        ("DROP VIEW avaliacoes_qualidade", "avaliacoes_qualidade is missing"),
        ("DROP VIEW avaliacoes_qualidade; CREATE VIEW avaliacoes_qualidade AS SELECT 1 / 0 AS dia",
         "avaliacoes_qualidade does not answer SELECT * LIMIT 0: division by zero"),
        ("DROP VIEW metricas_conversa; CREATE TABLE metricas_conversa (conversa_id bigint)",
         "metricas_conversa is a table"),
    ],
    ids=["dropped", "broken", "replaced-by-table"],
)
def test_critical_view_fault(healthy: NativeStack, suite, sql, fault: str, expect: str) -> None:  # type: ignore[no-untyped-def]
    sql(fault)
    run = suite(paths=SCHEMA)
    assert run.not_passed() == {"JC-SCHEMA-02"}
    assert expect in run.message("JC-SCHEMA-02")


def test_critical_table_dropped(healthy: NativeStack, suite, sql) -> None:  # type: ignore[no-untyped-def]
    sql("DROP TABLE job_executions")
    run = suite(paths=SCHEMA)
    # The baseline's columns of the table are gone with it: drift reports the table removed.
    assert run.not_passed() == {"JC-SCHEMA-01", "JC-SCHEMA-03"}
    assert "job_executions (missing)" in run.message("JC-SCHEMA-01")
    assert "job_executions removed" in run.message("JC-SCHEMA-03")


def test_schema_named_in_runbook_toml(healthy: NativeStack, suite, sql, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The catalog is read in runbook.toml's database.schema, not in public. Schema "app"
    holds the migration log and app_settings (copies) but none of the critical relations,
    which exist only in public: exactly the catalog checks fail, naming "app". Then the
    critical tables and views are made in "app" too, and every schema check passes."""
    rb = runbook_copy(tmp_path, ('[database]\nschema = "public"', '[database]\nschema = "app"'))
    baseline = tmp_path / "app-baseline.json"
    schema_baseline.write(baseline, replace(schema_baseline.load(BASELINE), schema="app"))
    sql("CREATE SCHEMA app; "
        "CREATE TABLE app._migrations AS TABLE public._migrations; "
        "CREATE TABLE app.app_settings AS TABLE public.app_settings")
    args = ("--runbook", str(rb), "--schema-baseline", str(baseline))

    missing = suite(*args, paths=SCHEMA)
    assert missing.not_passed() == {"JC-SCHEMA-01", "JC-SCHEMA-02", "JC-SCHEMA-03"}, missing.output[-3000:]
    assert "in schema app" in missing.message("JC-SCHEMA-01")
    assert "interacoes (missing)" in missing.message("JC-SCHEMA-01")
    assert "in schema app" in missing.message("JC-SCHEMA-02")
    assert "metricas_conversa is missing" in missing.message("JC-SCHEMA-02")
    assert "interacoes removed" in missing.message("JC-SCHEMA-03")

    names = load_runbook(rb)
    for table in names.critical_tables:
        sql(f"CREATE TABLE app.{table} (LIKE public.{table} INCLUDING ALL)")
    for view in names.critical_views:
        sql(f"CREATE VIEW app.{view} AS SELECT * FROM public.{view}")
    present = suite(*args, paths=SCHEMA)
    assert present.exitcode == 0, present.output[-3000:]
    assert present.not_passed() == set()


def test_non_concurrent_index_on_high_volume_table(healthy: NativeStack, suite, migrations: Path) -> None:  # type: ignore[no-untyped-def]
    (migrations / "20260301_idx_interacoes_direcao.sql").write_text(
        "-- Filter the conversation log by direction.\n"
        "CREATE INDEX idx_interacoes_direcao ON interacoes (direcao);\n"
    )
    run = suite("--migrations-dir", str(migrations), paths=SCHEMA)
    # Pending (so not applied) and locking: both rules speak.
    assert run.not_passed() == {"JC-MIG-01", "JC-MIG-05"}
    message = run.message("JC-MIG-05")
    assert ("20260301_idx_interacoes_direcao.sql:2 require-concurrent-index-creation "
            "on high-volume table interacoes") in message


def test_premerge_gate_against_a_non_local_profile(healthy: NativeStack, migrations: Path, tmp_path: Path) -> None:
    """`pytest --target <remote> -m premerge --migrations-dir X` fails while X holds an
    unapplied migration, and passes once it is applied — read-only, as against production."""
    info = healthy.info
    assert info is not None
    targets = tmp_path / "targets.toml"
    targets.write_text(
        "[targets.prodlike]\nlocal = false\n"
        f'api_url = "{info.api_url}"\nenvironment = "{info.environment}"\nproject_ref = "{LOCAL_REF}"\n'
        'database_url_env = "JC_PRODLIKE_DATABASE_URL"\n'
    )
    (migrations / "20260301_interacoes_lida_em.sql").write_text(
        "ALTER TABLE interacoes ADD COLUMN lida_em timestamptz;\n")
    args = ("--target-file", str(targets), "--target", "prodlike", "-m", "premerge",
            "--migrations-dir", str(migrations))
    env = {"JC_PRODLIKE_DATABASE_URL": info.database_url}

    before = run_suite(*args, reports=tmp_path / "before", env=env)
    assert before.exitcode == 1, before.output[-3000:]
    assert before.certificate is not None and before.certificate["tier"] == "premerge"
    assert before.certificate["target"] == "prodlike"
    # Exactly the premerge checks of this area: JC-MIG-06 (a row with no file) stays nightly
    # drift, so another PR's history cannot block this one; the catalog checks are postdeploy.
    assert {i for i in before.outcomes() if i.startswith(AREA_PREFIXES)} == PREMERGE_IDS
    assert before.not_passed() == {"JC-MIG-01"}
    assert "20260301_interacoes_lida_em.sql" in before.message("JC-MIG-01")

    # Step 3 of the Migration Flow: apply it to "production" (recorded, version bumped).
    assert apply_migrations(info.database_url, migrations) == ["20260301"]

    after = run_suite(*args, reports=tmp_path / "after", env=env)
    assert after.exitcode == 0, after.output[-3000:]
    assert after.certificate is not None and after.certificate["verdict"] == "certified"
    assert after.not_passed() == set()
    assert {i for i in after.outcomes() if i.startswith(AREA_PREFIXES)} == PREMERGE_IDS

    # An older applied migration whose file the PR deletes is nightly drift (JC-MIG-06), not
    # a reason to block the merge: the premerge gate still passes.
    (migrations / "20260126_fk_indices.sql").unlink()
    pruned = run_suite(*args, reports=tmp_path / "pruned", env=env)
    assert pruned.exitcode == 0, pruned.output[-3000:]
    assert pruned.not_passed() == set()
    assert {i for i in pruned.outcomes() if i.startswith(AREA_PREFIXES)} == PREMERGE_IDS


def test_premerge_without_migrations_dir_is_not_a_pass(healthy: NativeStack, tmp_path: Path) -> None:
    info = healthy.info
    assert info is not None
    targets = tmp_path / "targets.toml"
    targets.write_text(
        "[targets.prodlike]\nlocal = false\n"
        f'api_url = "{info.api_url}"\nenvironment = "{info.environment}"\nproject_ref = "{LOCAL_REF}"\n'
        'database_url_env = "JC_PRODLIKE_DATABASE_URL"\n'
    )
    run = run_suite("--target-file", str(targets), "--target", "prodlike", "-m", "premerge",
                    reports=tmp_path / "reports", env={"JC_PRODLIKE_DATABASE_URL": info.database_url})
    assert run.exitcode == 1
    assert run.outcomes()["JC-MIG-01"] == "skipped"
    assert "--migrations-dir" in run.message("JC-MIG-01")
