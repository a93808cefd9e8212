"""Units of the schema area: the `[schema]` parser, the baseline format and diff, the
migration comparison, the folder scan, and the migration lint (real squawk, no database)."""

from __future__ import annotations

import string
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures import migration_lint
from fixtures.clients import Api
from fixtures.migrations import Migration, scan_migrations
from fixtures.probes.common import MigrationRow
from fixtures.probes.schema import ExpectedVersion, compare_migrations, expected_version
from fixtures.schema_baseline import (
    BaselineError,
    ColumnShape,
    Fingerprint,
    diff,
    from_json,
    load,
    to_json,
    write,
)
from fixtures.stack.refapp.config import MIGRATIONS_DIR
from plugins.contract.redaction import Redactor
from plugins.contract.runbook import load_runbook
from plugins.contract.schema import LintPolicy, parse
from plugins.contract.toml_schema import ConfigError
from plugins.contract.verdict import Undecidable
from tests.loopback import Canned, LoopbackApi

ROOT = Path(__file__).resolve().parents[1]

# --- [schema] ------------------------------------------------------------------------------

GOOD = {
    "expected_version_from": [{"endpoint": "schema", "path": "expected_version"}],
    "lint": {"rules": ["require-concurrent-index-creation"], "high_volume_tables": ["interacoes"],
             "all_tables": False, "assume_in_transaction": False},
}


def test_schema_section_parses() -> None:
    contract = parse(Path("r.toml"), GOOD)
    assert contract.expected_version_from[0].endpoint == "schema"
    assert contract.lint == LintPolicy(("require-concurrent-index-creation",), ("interacoes",), False, False)


@pytest.mark.parametrize(
    ("table", "expect"),
    [
        ({**GOOD, "extra": 1}, "schema.extra: unknown key"),
        ({**GOOD, "expected_version_from": []}, "schema.expected_version_from: must not be empty"),
        ({**GOOD, "expected_version_from": [{"endpoint": "schema"}]}, "schema.expected_version_from[0].path: missing"),
        ({**GOOD, "expected_version_from": [{"endpoint": "schema", "path": "a..b"}]},
         "schema.expected_version_from[0].path: must be a non-empty name or dotted path"),
        ({**GOOD, "lint": {**GOOD["lint"], "rules": []}}, "schema.lint.rules: must not be empty"),
        ({**GOOD, "lint": {**GOOD["lint"], "rules": ["a-b", "a-b"]}}, "schema.lint.rules: lists a rule twice"),
        ({**GOOD, "lint": {**GOOD["lint"], "high_volume_tables": [3]}}, "schema.lint.high_volume_tables[0]"),
        ({**GOOD, "lint": {**GOOD["lint"], "assume_in_transaction": 1}},
         "schema.lint.assume_in_transaction: must be a boolean"),
    ],
)
def test_schema_section_errors_name_the_key(table: dict, expect: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError, match=expect.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        parse(Path("r.toml"), table)


# --- baseline -------------------------------------------------------------------------------

names = st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=8)
shapes = st.builds(ColumnShape, st.sampled_from(["text", "bigint", "character varying(10)", "jsonb"]), st.booleans())
fingerprints = st.builds(Fingerprint, st.just("public"),
                         st.dictionaries(names, st.dictionaries(names, shapes, max_size=5), max_size=4))


@given(fingerprints)
@settings(max_examples=60)
def test_baseline_round_trips_byte_stable(fp: Fingerprint) -> None:
    text = to_json(fp)
    back = from_json(text)
    assert back.canonical() == fp.canonical()
    assert to_json(back) == text
    assert diff(fp, back) == []


@given(fingerprints, fingerprints)
@settings(max_examples=60)
def test_diff_is_empty_exactly_when_equal(a: Fingerprint, b: Fingerprint) -> None:
    changes = diff(a, b)
    assert (changes == []) == (a.canonical() == b.canonical())
    # Every change names a table of either side, in a stable (sorted) order.
    assert [c.table for c in changes] == sorted(c.table for c in changes)


def test_diff_describes_each_kind() -> None:
    before = Fingerprint("public", {"t": {"a": ColumnShape("text", True), "b": ColumnShape("int", False)},
                                    "gone": {}})
    after = Fingerprint("public", {"t": {"a": ColumnShape("varchar(5)", False), "c": ColumnShape("jsonb", True)},
                                   "new": {}})
    assert [c.describe() for c in diff(before, after)] == [
        "gone removed",
        "new added",
        "t.a changed (type text → varchar(5), NULL → NOT NULL)",
        "t.b removed (int, NOT NULL)",
        "t.c added (jsonb, NULL)",
    ]


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("[]", "not a schema baseline"),
        ('{"format": "julia-conformance/schema-baseline", "version": 2}', "unsupported baseline version"),
        ('{"format": "julia-conformance/schema-baseline", "version": 1, "schema": "public", "tables": {}, "x": 1}',
         "unknown key"),
        ('{"format": "julia-conformance/schema-baseline", "version": 1, "schema": "public", '
         '"tables": {"t": {"c": {"type": "text"}}}}', "tables.t.c: must be"),
        ('{"format": "julia-conformance/schema-baseline", "version": 1, "schema": "public", '
         '"tables": {}, "sha256": "0"}', "does not match"),
    ],
)
def test_baseline_errors(text: str, expect: str) -> None:
    with pytest.raises(BaselineError, match=expect):
        from_json(text)


def test_committed_reference_baseline_loads(tmp_path: Path) -> None:
    fp = load(MIGRATIONS_DIR.parent / "schema-baseline.json")
    assert {"clientes", "conversations", "interacoes", "job_executions"} == set(fp.tables)
    write(tmp_path / "b.json", fp)
    assert (tmp_path / "b.json").read_bytes() == (MIGRATIONS_DIR.parent / "schema-baseline.json").read_bytes()
    assert not list(tmp_path.glob(".*tmp"))


# --- files against the log --------------------------------------------------------------------


def _m(version: str) -> Migration:
    return Migration(version, "x", Path(f"{version}_x.sql"))


def _row(version: str) -> MigrationRow:
    return MigrationRow(version, "x", datetime(2026, 1, 1, tzinfo=UTC))


def test_compare_migrations_sorts_rows_and_files() -> None:
    files = (_m("20260105"), _m("20260112"), _m("20260120093000"))
    rows = [_row("20260105000000"), _row("20260101"), _row("20260201"), _row("20260120093000")]
    cmp = compare_migrations(files, rows)
    assert [m.version for m in cmp.unapplied] == ["20260112"]
    assert [r.version for r in cmp.drift] == ["20260101"]  # older than the newest file, no file
    assert [r.version for r in cmp.ahead] == ["20260201"]  # applied before its PR merged


versions = st.dates(min_value=datetime(2024, 1, 1).date(), max_value=datetime(2027, 12, 31).date()).map(
    lambda d: d.strftime("%Y%m%d"))


@given(st.sets(versions, max_size=8), st.sets(versions, max_size=8))
def test_compare_migrations_partitions(file_versions: set[str], row_versions: set[str]) -> None:
    cmp = compare_migrations(tuple(_m(v) for v in sorted(file_versions)), [_row(v) for v in row_versions])
    assert {m.version for m in cmp.unapplied} == file_versions - row_versions
    orphans = row_versions - file_versions
    assert {r.version for r in cmp.drift} | {r.version for r in cmp.ahead} == orphans
    assert not {r.version for r in cmp.drift} & {r.version for r in cmp.ahead}
    if file_versions:
        assert all(r.version > max(file_versions) for r in cmp.ahead)


def test_scan_collects_every_fault_without_raising(tmp_path: Path) -> None:
    for name in ("20260105_a.sql", "20260105000000_b.sql", "20260105_c.sql", "x.sql", "20261399_y.sql",
                 "20260110_ok.sql", "README.md"):
        (tmp_path / name).write_text("SELECT 1;\n")
    scan = scan_migrations(tmp_path)
    assert [m.path.name for m in scan.migrations] == [
        "20260105000000_b.sql", "20260105_a.sql", "20260105_c.sql", "20260110_ok.sql"]
    assert [n for n, _ in scan.bad_names] == ["20261399_y.sql", "x.sql"]
    assert "invalid date" in scan.bad_names[0][1]
    assert [[m.path.name for m in g] for g in scan.duplicates] == [
        ["20260105000000_b.sql", "20260105_a.sql", "20260105_c.sql"]]
    assert scan.other_files == 1 and scan.sql_files == 6 and scan.conventional


def real_layout(root: Path) -> Path:
    """A migrations folder shaped like the deployment's (whats-agents migrations/, git
    ls-files at e8dea89): sprint subfolders of NNN_desc.sql, loose descriptive names, a
    sprintNN_tXX_ prefix, an APPLY_ME.sql and a Python script — no file in the runbook's
    YYYYMMDD_ convention."""
    folder = root / "migrations"
    for name in ("criar_indices_performance.sql", "sprint44_t03_5_dlq.sql", "sprint44_t04_1_reserva_transacional.sql",
                 "sprint-25/001_chips_schema.sql", "sprint-25/002_chips_triggers.sql", "sprint-25/APPLY_ME.sql",
                 "sprint-25/MIGRATE_DATA.sql", "sprint-25/apply.py", "sprint-36/001_chip_metrics_rpcs.sql",
                 "sprint-36/002_circuit_transitions.sql", "sprint-39/001_warmup_schedule.sql",
                 "sprint-40/add_extrator_v2_columns.sql", "sprint-41/001_interacoes_chip_tracking.sql",
                 "sprint-41/002_chip_daily_snapshots.sql", "sprint-41/003_delivery_status_rpc.sql",
                 "sprint-41/004_snapshot_rpcs.sql"):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("SELECT 1;\n")
    return folder


def test_scan_reads_subfolders_and_names_files_by_their_path(tmp_path: Path) -> None:
    folder = real_layout(tmp_path)
    scan = scan_migrations(folder)
    assert not scan.conventional and scan.migrations == ()
    assert scan.sql_files == 15 and scan.other_files == 1  # sprint-25/apply.py is not read
    names = [n for n, _ in scan.bad_names]
    assert names[:3] == ["criar_indices_performance.sql", "sprint-25/001_chips_schema.sql",
                         "sprint-25/002_chips_triggers.sql"]
    assert "sprint-25/APPLY_ME.sql" in names and "sprint44_t03_5_dlq.sql" in names
    assert "'sprint-41/004_snapshot_rpcs.sql' is not named YYYYMMDD_description.sql" in dict(scan.bad_names)[
        "sprint-41/004_snapshot_rpcs.sql"]
    # a file in the convention in a subfolder is a migration, named by its path
    (folder / "sprint-71").mkdir()
    (folder / "sprint-71" / "20260222_meta_dashboard.sql").write_text("SELECT 1;\n")
    (folder / ".git").mkdir()
    (folder / ".git" / "20260101_hidden.sql").write_text("SELECT 1;\n")
    scan = scan_migrations(folder)
    assert scan.conventional and [m.file for m in scan.migrations] == ["sprint-71/20260222_meta_dashboard.sql"]
    assert scan.migrations[0].version == "20260222"


# --- lint -----------------------------------------------------------------------------------

POLICY = LintPolicy(("require-concurrent-index-creation", "adding-not-nullable-field", "changing-column-type"),
                    ("interacoes",), all_tables=False, assume_in_transaction=False)


def test_char_offset_counts_characters_not_bytes() -> None:
    text = "-- ação\nSELECT 'ção'; CREATE INDEX i ON t (x);\n"
    # squawk: line 1 (0-based), byte column 16 = after "SELECT 'ção'; " (14 chars, 16 bytes)
    offset = migration_lint.char_offset(text, 1, 16)
    assert text[offset:].startswith("CREATE INDEX")
    assert migration_lint.line_of(text, offset) == 2


def test_statements_know_their_tables() -> None:
    stmts = migration_lint.parse_statements(
        "CREATE TABLE novo (id bigint);\n"
        "ALTER TABLE public.interacoes ADD CONSTRAINT fk FOREIGN KEY (cliente_id) REFERENCES clientes (id);\n"
        "DROP INDEX idx_x;\n")
    assert [s.tables for s in stmts] == [
        ((None, "novo"),), (("public", "interacoes"), (None, "clientes")), ()]
    assert [s.only_new_tables for s in stmts] == [False, False, False]
    assert stmts[2].created_before == {(None, "novo")}
    assert migration_lint.statement_at(stmts, 0) is stmts[0]
    assert migration_lint.statement_at(stmts, stmts[1].start + 5) is stmts[1]


def _lint(tmp_path: Path, sql: str, policy: LintPolicy = POLICY) -> migration_lint.LintResult:
    path = tmp_path / "20260301_m.sql"
    path.write_text(sql, encoding="utf-8")
    return migration_lint.lint([path], policy, schema="public", pg_version=(15, 0))


def test_lint_blocks_on_high_volume_tables_only(tmp_path: Path) -> None:
    result = _lint(tmp_path, "-- índice de direção\n\n"
                             "CREATE INDEX idx_a ON interacoes (direcao);\n"
                             "CREATE INDEX idx_b ON grupos (nome);\n"
                             "CREATE INDEX CONCURRENTLY idx_c ON interacoes (created_at);\n"
                             "ALTER TABLE clientes ALTER COLUMN crm SET NOT NULL;\n")
    assert [f.describe(short=True) for f in result.blocking] == [
        "20260301_m.sql:3 require-concurrent-index-creation on high-volume table interacoes"]
    assert [f.describe(short=True) for f in result.notes] == [
        "20260301_m.sql:4 require-concurrent-index-creation on grupos",
        "20260301_m.sql:6 adding-not-nullable-field on clientes"]
    assert result.squawk_version.startswith("squawk")
    # Rules not in the policy are counted, never reported.
    assert "prefer-robust-stmts" in result.ignored_rules


def test_lint_all_tables_blocks_everywhere(tmp_path: Path) -> None:
    policy = LintPolicy(POLICY.rules, (), all_tables=True, assume_in_transaction=False)
    result = _lint(tmp_path, "CREATE INDEX idx_b ON grupos (nome);\n", policy)
    assert [f.line for f in result.blocking] == [1]


def test_lint_other_schema_is_not_the_high_volume_table(tmp_path: Path) -> None:
    result = _lint(tmp_path, "CREATE INDEX idx_a ON arquivo.interacoes (direcao);\n")
    assert result.blocking == () and [f.tables for f in result.notes] == [("arquivo.interacoes",)]


def test_lint_syntax_is_judged_by_postgres_parser(tmp_path: Path) -> None:
    result = _lint(tmp_path, "SELECT 1;\nCREATE TABL x (id int);\n")
    assert [(f.rule, f.line) for f in result.blocking] == [("syntax-error", 2)]
    assert 'syntax error at or near "TABL"' in result.blocking[0].message


def test_lint_unknown_rule_is_undecidable(tmp_path: Path) -> None:
    policy = LintPolicy(("no-such-rule",), (), all_tables=False, assume_in_transaction=False)
    with pytest.raises(migration_lint.LinterUnavailable, match="invalid rule name no-such-rule"):
        _lint(tmp_path, "SELECT 1;\n", policy)


def test_lint_without_squawk_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(migration_lint, "find_squawk", lambda: None)
    with pytest.raises(migration_lint.LinterUnavailable, match="pip install squawk-cli"):
        _lint(tmp_path, "SELECT 1;\n")


def test_lint_of_nothing_needs_no_linter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(migration_lint, "find_squawk", lambda: None)
    assert migration_lint.lint([], POLICY, schema="public", pg_version=(15, 0)).blocking == ()


def test_squawk_is_found_beside_the_interpreter() -> None:
    found = migration_lint.find_squawk()
    assert found is not None and found.name == "squawk"


def test_index_on_a_table_created_in_the_same_file_does_not_block(tmp_path: Path) -> None:
    result = _lint(tmp_path, "CREATE TABLE interacoes (id bigint, x text);\n"
                             "CREATE INDEX idx_x ON interacoes (x);\n")
    assert result.blocking == ()
    assert [f.describe(short=True) for f in result.notes] == [
        "20260301_m.sql:2 require-concurrent-index-creation on high-volume table interacoes "
        "(created in this migration)"]


def test_shipped_migrations_would_block_only_where_they_index_existing_tables() -> None:
    """Were the reference migrations pending, only the FK-index migration would block: it
    indexes high-volume tables earlier files created, without CONCURRENTLY (the local
    stack applies each file in a transaction, where CONCURRENTLY is not allowed)."""
    policy = load_runbook(ROOT / "runbook.toml").section("schema").lint
    result = migration_lint.lint(sorted(MIGRATIONS_DIR.glob("*.sql")), policy, schema="public", pg_version=(15, 0))
    # the FK-index migration, and the runtime one that re-indexes job_executions / fila_mensagens
    assert {f.file for f in result.blocking} <= {"20260126_fk_indices.sql", "20260205140000_runtime_query_indices.sql"}
    assert [f.line for f in result.blocking if f.file == "20260126_fk_indices.sql"] == [4, 5, 6, 7, 8, 9, 10]


# The examples, linted with the runbook's own policy: squawk tells them apart.
RUNBOOK_POLICY = load_runbook(ROOT / "runbook.toml").section("schema").lint


def test_lint_volatile_default_blocks_a_stable_one_does_not(tmp_path: Path) -> None:
    """PostgreSQL 11+ adds a column with a non-volatile default (now() is STABLE) without a
    rewrite; gen_random_uuid() is VOLATILE: every row is rewritten under ACCESS EXCLUSIVE."""
    result = _lint(tmp_path, "-- Public ids for the conversation log.\n"
                             "ALTER TABLE interacoes ADD COLUMN visto_em timestamptz DEFAULT now();\n"
                             "ALTER TABLE interacoes ADD COLUMN u uuid DEFAULT gen_random_uuid();\n",
                   RUNBOOK_POLICY)
    assert [f.describe(short=True) for f in result.blocking] == [
        "20260301_m.sql:3 adding-field-with-default on high-volume table interacoes"]
    assert result.notes == ()


def test_lint_stable_default_blocks_before_postgres_11(tmp_path: Path) -> None:
    """The server's version reaches squawk: before 11 every default rewrote the table."""
    path = tmp_path / "20260301_m.sql"
    path.write_text("ALTER TABLE interacoes ADD COLUMN visto_em timestamptz DEFAULT now();\n")
    result = migration_lint.lint([path], RUNBOOK_POLICY, schema="public", pg_version=(10, 0))
    assert [(f.rule, f.line) for f in result.blocking] == [("adding-field-with-default", 1)]


def test_lint_set_not_null_blocks(tmp_path: Path) -> None:
    result = _lint(tmp_path, "ALTER TABLE interacoes ALTER COLUMN x SET NOT NULL;\n", RUNBOOK_POLICY)
    assert [f.describe(short=True) for f in result.blocking] == [
        "20260301_m.sql:1 adding-not-nullable-field on high-volume table interacoes"]
    assert "blocks reads" in result.blocking[0].message


def test_lint_set_not_null_after_a_validated_check_does_not_block(tmp_path: Path) -> None:
    """The runbook-safe way: CHECK (x IS NOT NULL) NOT VALID (no scan), VALIDATE (a scan that
    lets writes through), then SET NOT NULL uses the constraint instead of scanning."""
    result = _lint(tmp_path, "ALTER TABLE interacoes ADD CONSTRAINT interacoes_x_nn CHECK (x IS NOT NULL) NOT VALID;\n"
                             "ALTER TABLE interacoes VALIDATE CONSTRAINT interacoes_x_nn;\n"
                             "ALTER TABLE interacoes ALTER COLUMN x SET NOT NULL;\n", RUNBOOK_POLICY)
    assert result.blocking == () and result.notes == ()


@pytest.mark.parametrize(
    "check",
    [
        # NOT VALID but never validated: SET NOT NULL still scans
        "ALTER TABLE interacoes ADD CONSTRAINT interacoes_x_nn CHECK (x IS NOT NULL) NOT VALID;\n\n",
        # validated, but on another column
        "ALTER TABLE interacoes ADD CONSTRAINT interacoes_y_nn CHECK (y IS NOT NULL) NOT VALID;\n"
        "ALTER TABLE interacoes VALIDATE CONSTRAINT interacoes_y_nn;\n",
    ],
    ids=["not-validated", "other-column"],
)
def test_lint_set_not_null_needs_a_validated_check_on_that_column(tmp_path: Path, check: str) -> None:
    result = _lint(tmp_path, check + "ALTER TABLE interacoes ALTER COLUMN x SET NOT NULL;\n", RUNBOOK_POLICY)
    assert [(f.rule, f.line) for f in result.blocking] == [("adding-not-nullable-field", 3)]


# --- the app's expected version -------------------------------------------------------------


def test_expected_version_falls_back_to_health_deep() -> None:
    """The default runbook.toml's second source: an app with no /health/schema (404) whose
    /health/deep (503, unhealthy) carries migrations.expected_version — over real HTTP."""
    rb = load_runbook(ROOT / "runbook.toml")
    deep = {"status": "unhealthy", "migrations": {"current_version": "20260202", "expected_version": "20260301"}}
    with LoopbackApi(routes={"/health/deep": Canned(503, deep)}) as server:
        api = Api(server.url, rb.http, rb.endpoints, Redactor())
        try:
            found = expected_version(api, rb.section("schema").expected_version_from)
        finally:
            api.close()
    assert found == ExpectedVersion("20260301", "GET /health/deep migrations.expected_version")
    assert server.requests[:2] == ["/health/schema", "/health/deep"]


def test_expected_version_absent_everywhere_names_each_source() -> None:
    rb = load_runbook(ROOT / "runbook.toml")
    with LoopbackApi(routes={"/health/deep": Canned(200, {"status": "healthy"})}) as server:
        api = Api(server.url, rb.http, rb.endpoints, Redactor())
        try:
            with pytest.raises(Undecidable) as err:
                expected_version(api, rb.section("schema").expected_version_from)
        finally:
            api.close()
    assert err.value.message == (
        "the app reports no expected schema version: GET /health/schema expected_version: HTTP 404; "
        "GET /health/deep migrations.expected_version: absent (HTTP 200)")


def test_example_premerge_workflow_runs_the_documented_command() -> None:
    workflow = yaml.safe_load((ROOT / "examples/github-actions/premerge.yml").read_text())
    steps = workflow["jobs"]["migration-order"]["steps"]
    # The application is the checkout without `repository:` (the PR's own repo), in `path:`.
    app = next(s["with"]["path"] for s in steps
               if s.get("uses", "").startswith("actions/checkout@") and "repository" not in s.get("with", {}))
    suite_dir = next(s["with"]["path"] for s in steps
                     if s.get("uses", "").startswith("actions/checkout@") and "repository" in s.get("with", {}))
    runs = [s for s in steps if "run" in s]
    # The suite is installed from its checkout the way scripts/bootstrap does (pip install -e .),
    # which brings squawk-cli (the linter) with it, before the gate runs.
    install = next(i for i, s in enumerate(runs) if "pip install -e ." in s["run"])
    assert runs[install].get("working-directory") == suite_dir
    gate = next(i for i, s in enumerate(runs) if "-m premerge" in " ".join(s["run"].split()))
    assert install < gate
    command = runs[gate]["run"].split()
    assert runs[gate].get("working-directory") == suite_dir
    for part in ("pytest", "checks", "--target", "prod", "-m", "premerge", "--migrations-dir"):
        assert part in command
    assert command[command.index("--target") + 1] == "prod"
    migrations = command[command.index("--migrations-dir") + 1].strip('"')
    assert migrations == f"$GITHUB_WORKSPACE/{app}/migrations", migrations
    env = runs[gate]["env"]
    assert "JC_PROD_DATABASE_URL" in env  # the prod profile's database_url_env
    assert "database_url_env = \"JC_PROD_DATABASE_URL\"" in (ROOT / "targets.toml").read_text()
