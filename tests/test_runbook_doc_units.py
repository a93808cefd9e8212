"""The runbook lint's parsers, without servers: which commands are found, on which lines."""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures.jq_paths import JqUnsupported, parse_jq, resolve_jq
from fixtures.runbook_doc import (
    CodeBlock,
    code_blocks,
    curl_calls,
    env_var_uses,
    parse_runbook,
    sql_statements,
)
from plugins.contract.runbook_lint import parse as parse_contract
from plugins.contract.toml_schema import ConfigError

DATA = Path(__file__).resolve().parent / "data" / "runbook_lint"
PROD = ("https://whats-agents-production.up.railway.app",)


def _doc(name: str = "known_lines.md"):  # type: ignore[no-untyped-def]
    path = DATA / name
    return parse_runbook(path.read_text(), path, production_urls=PROD, env_table_columns=("Secret Name",))


def _block(text: str, lang: str = "bash", first_line: int = 1) -> CodeBlock:
    return CodeBlock(lang=lang, first_line=first_line, lines=tuple(text.splitlines()))


# --- the fixture document -------------------------------------------------------------------


def test_fixture_statements_lines_and_kinds() -> None:
    doc = _doc()
    assert [(s.line, s.kind) for s in doc.statements] == [
        (39, "SelectStmt"), (42, "SelectStmt"), (45, "SelectStmt"), (52, "SelectStmt"),
        (60, "SelectStmt"), (62, "SelectStmt"), (63, "VacuumStmt"), (63, "VacuumStmt"),
        (64, "IndexStmt"), (66, "SelectStmt"), (72, "InsertStmt"), (75, "UpdateStmt"),
        (78, "DeleteStmt"), (80, ""),
    ]
    broken = [s for s in doc.statements if s.syntax_error]
    assert [s.line for s in broken] == [80] and "FROM" in (broken[0].syntax_error or "")
    assert [s.plannable for s in doc.statements if s.line in (63, 64)] == [False, False, False]
    # the statement text is what the operator pastes, without its `;`
    multi = next(s for s in doc.statements if s.line == 45)
    assert multi.text.startswith("SELECT\n  job_name,") and multi.text.endswith("INTERVAL '24 hours'")


def test_fixture_prose_and_comments_are_not_sql() -> None:
    texts = " ".join(s.text for s in _doc().statements)
    assert "Delete old value" not in texts and "Vacuum the keyboard" not in texts
    assert "DELETE FROM job_executions" not in texts  # commented out in the runbook
    assert "railway" not in texts


def test_fixture_curls() -> None:
    doc = _doc()
    assert [(c.line, c.path, c.jq) for c in doc.curls] == [
        (21, "/health", None),
        (22, "/health/deep", ".redis.status"),
        (23, "/health/rate", ".latency"),
        (24, "/health/nope", ".status"),
        (25, "/health/circuit", ".integrations | keys"),
        (26, "/health/circuit", "[.integrations[] | .state]"),
        (27, "/health/schema", ".history[0].version"),
        (29, "/health/ready", None),
        (30, "/health/ready", ".redis.status.deeper"),
    ]
    assert {c.method for c in doc.curls} == {"GET"}


def test_fixture_env_vars() -> None:
    assert _doc().env_var_lines() == {
        "SUPABASE_URL": (10, 90), "APP_ENV": (11, 86), "LEGACY_TOKEN": (12,), "CHATWOOT_API_URL": (87,),
    }


def test_expect_markers_name_only_lines_the_parser_found() -> None:
    """Every `expect:` marker of the fixture sits on a line the parser reports (so the
    end-to-end test's expected sets are reachable)."""
    doc = _doc()
    lines = (DATA / "known_lines.md").read_text().splitlines()
    found = ({s.line for s in doc.statements} | {c.line for c in doc.curls}
             | {u.line for u in doc.env_vars})
    marked = {n for n, line in enumerate(lines, 1) if re.search(r"expect: JC-RUNBOOK-\d\d", line)}
    assert marked and marked <= found


# --- blocks and SQL ---------------------------------------------------------------------------


def test_code_blocks_fences() -> None:
    text = "a\n```bash\nx\n```\n~~~sql\ny\n```\nstill y\n~~~\n````\n```\nz\n````\n```\nunclosed\n"
    blocks = code_blocks(text)
    assert [(b.lang, b.first_line, b.lines) for b in blocks] == [
        ("bash", 3, ("x",)), ("sql", 6, ("y", "```", "still y")), ("", 11, ("```", "z")),
        ("", 15, ("unclosed",)),
    ]


@pytest.mark.parametrize(
    ("text", "lang", "expected"),
    [
        ("SELECT 'a;b' FROM t; -- x; y\nrailway up", "bash", [(1, "SelectStmt")]),
        ("SELECT 1\nFROM t\nrailway restart\n", "bash", [(1, "SelectStmt")]),  # no `;`: cut back
        ("# comment\nUPDATE t SET a = 1\n# next\nSELECT 2;", "bash", [(2, "UpdateStmt"), (4, "SelectStmt")]),
        ("VACUUM a; VACUUM b;\n\nWITH x AS (SELECT 1) SELECT * FROM x;", "sql",
         [(1, "VacuumStmt"), (1, "VacuumStmt"), (3, "SelectStmt")]),
        ("select lower(x) from t;", "sql", [(1, "SelectStmt")]),
        ("Delete old value\nUpdate the wiki", "", []),
        ("-- SELECT commented;\nCREATE TABLE a AS SELECT 1;", "sql", [(2, "CreateTableAsStmt")]),
        ('{"SELECT": 1}', "json", []),
    ],
    ids=["semicolon-in-string", "cut-back", "bash-comments", "several-per-line", "lowercase-in-sql",
         "prose", "commented-out", "json-block"],
)
def test_sql_statements(text: str, lang: str, expected: list[tuple[int, str]]) -> None:
    found = sql_statements(_block(text, lang, first_line=1))
    assert [(s.line, s.kind) for s in found] == expected
    assert all(s.syntax_error is None for s in found)


def test_sql_syntax_errors_only_for_sql_shaped_chunks() -> None:
    found = sql_statements(_block("SELECT a, FROM t;\nWith love from ops;\nselect from where x;", "bash"))
    assert [(s.line, bool(s.syntax_error)) for s in found] == [(1, True)]
    found = sql_statements(_block("select from where x;", "sql"))
    assert [(s.line, bool(s.syntax_error)) for s in found] == [(1, True)]


def test_multibyte_text_keeps_offsets() -> None:
    found = sql_statements(_block("INSERT INTO t (a) VALUES ('Emergência');\nSELECT 'ção' AS x;", "bash"))
    assert [(s.line, s.text) for s in found] == [
        (1, "INSERT INTO t (a) VALUES ('Emergência')"), (2, "SELECT 'ção' AS x"),
    ]


# --- curl and jq ------------------------------------------------------------------------------


def test_curl_methods_and_non_production_urls() -> None:
    text = ("curl -X POST -H 'Content-type: application/json' https://whats-agents-production.up.railway.app/x\n"
            "curl --data '{}' https://whats-agents-production.up.railway.app/y?z=1 && jq .\n"
            "curl https://whats-agents-production.up.railway.app\n"
            "curl https://whats-agents-production.up.railway.app.evil.com/health\n"
            "curl $SUPABASE_URL/rest/v1/app_settings\n")
    found = curl_calls(_block(text), PROD)
    assert [(c.line, c.method, c.path, c.jq) for c in found] == [
        (1, "POST", "/x", None), (2, "POST", "/y?z=1", None), (3, "GET", "/", None),
    ]


@pytest.mark.parametrize(
    ("expr", "steps", "builtin"),
    [
        (".", (), None),
        (".a.b", ("a", "b"), None),
        (".a[0].b", ("a", 0, "b"), None),
        ('.["x y"].z?', ("x y", "z"), None),
        ('."é"', ("é",), None),
        (".a | .b", ("a", "b"), None),
        (".a | keys", ("a",), "keys"),
        (".[1]", (1,), None),
    ],
)
def test_parse_jq(expr: str, steps: tuple[object, ...], builtin: str | None) -> None:
    path = parse_jq(expr)
    assert path.steps == steps and path.builtin == builtin


@pytest.mark.parametrize("expr", ["keys", ".a[]", "[.a]", ".a // 1", "map(.x)", ".a | select(.b)",
                                  ".a, .b", "{a: .b}", ".a | keys | .[0]", ".a + 1"])
def test_parse_jq_unsupported(expr: str) -> None:
    with pytest.raises(JqUnsupported):
        parse_jq(expr)


def test_resolve_jq() -> None:
    body = {"a": {"b": [1, {"c": None}]}, "s": "x"}
    assert resolve_jq(body, parse_jq(".a.b[1].c")).found  # present, even if null
    miss = resolve_jq(body, parse_jq(".latency"))
    assert not miss.found and "no key 'latency'" in (miss.missing or "") and "a, s" in (miss.missing or "")
    assert "is a string" in (resolve_jq(body, parse_jq(".s.t")).missing or "")
    assert "not a list" in (resolve_jq(body, parse_jq(".a[0]")).missing or "")
    past = resolve_jq(body, parse_jq(".a.b[5]"))
    assert not past.found and past.missing is None and past.undetermined
    assert "'keys' fails" in (resolve_jq(body, parse_jq(".s | keys")).missing or "")


def test_env_var_uses() -> None:
    text = ("echo $A_VAR\n# echo $COMMENTED\necho '$SINGLE'\ncurl -H \"Bearer ${TOKEN_X}\" \\\n  $URL_Y/x\n"
            "echo $HOME $lower\n")
    found = env_var_uses(_block(text, first_line=10))
    assert [(u.name, u.line, u.how) for u in found] == [
        ("A_VAR", 10, "echo"), ("TOKEN_X", 13, "command"), ("URL_Y", 13, "command"),
    ]


# --- the contract section ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"bogus": 1}, "runbook_lint.bogus: unknown key"),
        ({"production_urls": "https://x"}, "runbook_lint.production_urls: must be a list"),
        ({"production_urls": ["ftp://x"]}, "runbook_lint.production_urls[0]: must start with http"),
        ({"placeholder_pattern": "("}, "runbook_lint.placeholder_pattern: not a regular expression"),
        ({"env_table_columns": [1]}, "runbook_lint.env_table_columns[0]: must be a non-empty string"),
    ],
)
def test_contract_errors_name_the_key(edit: dict[str, object], message: str) -> None:
    table = {"production_urls": ["https://p"], "env_table_columns": ["Secret Name"], "placeholder_pattern": "^X+$"}
    with pytest.raises(ConfigError) as info:
        parse_contract(Path("runbook.toml"), {**table, **edit})
    assert str(info.value).startswith("runbook.toml: " + message)


def test_shipped_placeholder_pattern() -> None:
    from plugins.contract.runbook import load_runbook

    pattern = load_runbook(Path(__file__).resolve().parents[1] / "runbook.toml").section("runbook_lint").placeholder
    for value in ("XXXXX-XXXXX-XXXXX", "xxxxx-xxxxx-xxxxx", "<job id>", "[uuid]", "..."):
        assert pattern.match(value), value
    for value in ("30 minutos", "production", "falha", "Xavier"):
        assert not pattern.match(value), value


# --- properties -------------------------------------------------------------------------------

keys = st.text(string.ascii_letters + "_", min_size=1, max_size=6)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)


@st.composite
def doc_and_path(draw: st.DrawFn) -> tuple[object, list[object]]:
    body = draw(json_values)
    node, steps = body, []
    while isinstance(node, (dict, list)) and node and draw(st.booleans()):
        if isinstance(node, dict):
            key = draw(st.sampled_from(sorted(node)))
            steps.append(key)
            node = node[key]
        else:
            idx = draw(st.integers(0, len(node) - 1))
            steps.append(idx)
            node = node[idx]
    return body, steps


def _jq_text(steps: list[object]) -> str:
    text = "".join(f"[{s}]" if isinstance(s, int) else f".{s}" if re.fullmatch(r"[A-Za-z_]\w*", str(s))
                   else f".[{json.dumps(s)}]" for s in steps)
    return text if text.startswith(".") else "." + text


@given(doc_and_path())
def test_every_path_drawn_from_a_document_resolves(case: tuple[object, list[object]]) -> None:
    body, steps = case
    path = parse_jq(_jq_text(steps))
    assert list(path.steps) == steps
    assert resolve_jq(body, path).found


@given(st.dictionaries(keys, json_values, max_size=4), keys)
def test_a_key_not_in_the_object_is_missing(body: dict[str, object], key: str) -> None:
    result = resolve_jq(body, parse_jq(_jq_text([key])))
    assert result.found == (key in body)
    assert result.found or (result.missing and key in result.missing)


@settings(max_examples=150)
@given(st.lists(st.sampled_from(["```bash", "```sql", "```", "~~~", "SELECT 1;", "SELECT", "FROM t",
                                 "'", "-- c", "# c", "", "| Secret Name |", "|---|", "| X_Y |",
                                 "curl https://whats-agents-production.up.railway.app/h | jq '.a'",
                                 "echo $A_B \\", "INSERT INTO t VALUES ('é');", "Delete it"]),
                max_size=25))
def test_parser_never_raises_on_markdown_shaped_text(lines: list[str]) -> None:
    doc = parse_runbook("\n".join(lines), Path("x.md"), production_urls=PROD, env_table_columns=("Secret Name",))
    n = len(lines)
    assert all(1 <= s.line <= n for s in doc.statements)
    assert all(1 <= c.line <= n for c in doc.curls)


@given(st.lists(st.sampled_from(["# shell comment", "", "railway restart", "-- sql comment"]), max_size=6),
       st.sampled_from(["SELECT a\nFROM t;", "UPDATE t SET a = 'x;y';", "VACUUM t;"]))
def test_a_statement_is_reported_on_its_first_line(before: list[str], statement: str) -> None:
    text = "\n".join([*before, statement])
    found = sql_statements(_block(text, "bash", first_line=100))
    assert [s.line for s in found] == [100 + len(before)]


# --- where the self-tests find the real runbook -------------------------------------------


def test_the_shared_runbook_is_found_beside_the_clone_or_where_pointed(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from tests import conftest

    monkeypatch.delenv(conftest.SHARED_RUNBOOK_ENV, raising=False)
    assert conftest.shared_runbook_path() == conftest.ROOT.parent / "shared" / "RUNBOOK.md"
    doc = tmp_path / "RUNBOOK.md"
    doc.write_text("# Runbook\n")
    monkeypatch.setenv(conftest.SHARED_RUNBOOK_ENV, str(doc))
    assert conftest.require_shared_runbook() == doc


def test_a_missing_shared_runbook_skips_but_fails_in_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests import conftest

    monkeypatch.setenv(conftest.SHARED_RUNBOOK_ENV, str(tmp_path / "absent.md"))
    monkeypatch.delenv(conftest.REQUIRE_SHARED_RUNBOOK_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="absent.md is not beside the clone"):
        conftest.require_shared_runbook()
    monkeypatch.setenv(conftest.REQUIRE_SHARED_RUNBOOK_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="JC_REQUIRE_SHARED_RUNBOOK is set but .*absent.md"):
        conftest.require_shared_runbook()
