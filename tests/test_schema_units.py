"""Units of the schema area: the `[schema]` parser, the baseline format and diff, the
migration comparison, the folder scan, and the migration lint (real squawk, no database)."""

from __future__ import annotations

import string
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures import migration_lint
from fixtures.probes import MigrationRow
from fixtures.probes_schema import compare_migrations
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
from fixtures.stack.dbsetup import MIGRATIONS_DIR, Migration, scan_migrations
from plugins.config import ConfigError
from plugins.contract_schema import LintPolicy, parse

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
    from plugins.config import load_runbook

    policy = load_runbook(ROOT / "runbook.toml").section("schema").lint
    result = migration_lint.lint(sorted(MIGRATIONS_DIR.glob("*.sql")), policy, schema="public", pg_version=(15, 0))
    # the FK-index migration, and the runtime one that re-indexes job_executions / fila_mensagens
    assert {f.file for f in result.blocking} <= {"20260126_fk_indices.sql", "20260205140000_runtime_query_indices.sql"}
    assert [f.line for f in result.blocking if f.file == "20260126_fk_indices.sql"] == [4, 5, 6, 7, 8, 9, 10]


def test_example_premerge_workflow_runs_the_documented_command() -> None:
    yaml = pytest.importorskip("yaml")
    workflow = yaml.safe_load((ROOT / "examples/github-actions/premerge.yml").read_text())
    steps = workflow["jobs"]["migration-order"]["steps"]
    command = " ".join(s.get("run", "") for s in steps).split()
    for part in ("--target", "prod", "-m", "premerge", "--migrations-dir"):
        assert part in command
    env = next(s["env"] for s in steps if "env" in s)
    assert "JC_PROD_DATABASE_URL" in env  # the prod profile's database_url_env
