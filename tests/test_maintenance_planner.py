"""JC-MAINT-01's coverage rule against the planner: each part of ``pm.covers`` proven with EXPLAIN.

A foreign key needs an index because of the lookup its trigger runs on every delete or key
update of a parent row — ``SELECT 1 FROM ONLY child x WHERE fk = $1 FOR KEY SHARE OF x``
(one ``col = $n`` per key column) — planned once and reused with any parameter, i.e. as a
*generic* plan. So an index covers a key exactly when the generic plan of that lookup finds
its rows through the index by the whole key (every key column an index condition). Here each
rule of the catalog judgement is built on a real server, one child table per case with a
single candidate index, enough rows and fresh statistics that a sequential scan is not the
cheap way; the lookup is PREPAREd and EXPLAINed under ``plan_cache_mode = force_generic_plan``,
and the planner's verdict must equal the rule's, read from the catalog as the check reads it.

Run on every supported PostgreSQL major installed here (tests/test_catalog_versions.py's
servers); the test ids say which ones ran.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from fixtures.probes import maintenance as pm
from fixtures.clients import Database
from plugins.contract.redaction import Redactor
from plugins.contract.runbook import load_runbook
from tests.test_catalog_versions import MAJORS, ROOT, database_url

SCHEMA = "jc_planner_proof"
PARENTS = 2000
CHILD_ROWS = 40_000


@dataclass(frozen=True)
class Case:
    """One child table: its foreign key's columns, its one candidate index, the rule's verdict."""

    name: str
    key: tuple[str, ...]
    index: str  # the index's definition after "ON child" ("" = a statement of its own)
    covered: bool
    statement: str = ""  # how the index is made when not a plain CREATE INDEX


CASES = [
    # covered: the lookup finds its rows through the index by the whole key
    Case("plain", ("p_id",), "(p_id)", True),
    Case("leading_of_composite", ("p_id",), "(p_id, other)", True),
    Case("partial_is_not_null", ("p_id",), "(p_id) WHERE p_id IS NOT NULL", True),
    Case("partial_is_not_null_wide", ("p_id",), "(p_id, other, created_at) WHERE p_id IS NOT NULL", True),
    Case("composite_any_order", ("p_id", "p_k2"), "(p_k2, p_id)", True),
    Case("composite_partial_both_not_null", ("p_id", "p_k2"),
         "(p_id, p_k2) WHERE p_id IS NOT NULL AND p_k2 IS NOT NULL", True),
    Case("composite_partial_one_not_null", ("p_id", "p_k2"), "(p_id, p_k2) WHERE p_k2 IS NOT NULL", True),
    Case("expression_after_the_key", ("p_id",), "(p_id, lower(label))", True),
    Case("hash", ("p_id",), "USING hash (p_id)", True),
    # not covered
    Case("partial_status", ("p_id",), "(p_id) WHERE status = 'x'", False),
    Case("partial_boolean", ("p_id",), "(p_id) WHERE flag = true", False),
    Case("partial_deleted_at_is_null", ("p_id",), "(p_id) WHERE deleted_at IS NULL", False),
    Case("partial_not_null_and_status", ("p_id",), "(p_id) WHERE p_id IS NOT NULL AND status = 'x'", False),
    Case("partial_other_column_not_null", ("p_id",), "(p_id) WHERE other IS NOT NULL", False),
    Case("expression_of_the_key", ("p_id",), "((p_id + 0))", False),
    Case("included_only", ("p_id",), "(other) INCLUDE (p_id)", False),
    Case("not_leading", ("p_id",), "(other, p_id)", False),
    Case("composite_prefix_only", ("p_id", "p_k2"), "(p_id)", False),
    Case("brin", ("p_id",), "USING brin (p_id)", False),
    # a failed CREATE INDEX CONCURRENTLY leaves an invalid index behind (duplicates here)
    Case("invalid", ("p_id",), "", False, "CREATE UNIQUE INDEX CONCURRENTLY {index} ON {table} (p_id)"),
]


def _prepare(conn: psycopg.Connection[Any]) -> None:
    """Parents with a two-column key, and one narrow child table per case: 20 children per
    parent, every value of ``other`` distinct (so no plan reaches the key through it)."""
    conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    conn.execute(f"CREATE SCHEMA {SCHEMA}")
    conn.execute(f"CREATE TABLE {SCHEMA}.parent (id bigint PRIMARY KEY, k2 bigint NOT NULL, UNIQUE (id, k2))")
    conn.execute(f"INSERT INTO {SCHEMA}.parent SELECT g, g % 7 FROM generate_series(1, {PARENTS}) g")
    for case in CASES:
        table = f"{SCHEMA}.{case.name}"
        key = ", ".join(case.key)
        target = "parent (id)" if case.key == ("p_id",) else "parent (id, k2)"
        conn.execute(
            f"CREATE TABLE {table} (id bigint PRIMARY KEY, p_id bigint, p_k2 bigint, other bigint, "
            f"status text, flag boolean, deleted_at timestamptz, created_at timestamptz, label text, "
            f"CONSTRAINT {case.name}_fkey FOREIGN KEY ({key}) REFERENCES {SCHEMA}.{target})")
        conn.execute(
            f"INSERT INTO {table} SELECT g, 1 + g % {PARENTS}, (1 + g % {PARENTS}) % 7, g, "
            f"(ARRAY['a', 'b', 'x'])[1 + g % 3], g % 2 = 0, CASE WHEN g % 5 = 0 THEN now() END, now(), 'l' || g "
            f"FROM generate_series(1, {CHILD_ROWS}) g")
        index = f"{case.name}_idx"
        if case.statement:
            try:
                conn.execute(case.statement.format(index=index, table=table))
            except psycopg.errors.UniqueViolation:
                pass  # the point: the index is left behind, invalid
        else:
            conn.execute(f"CREATE INDEX {index} ON {table} {case.index}")
    conn.execute(f"ANALYZE {SCHEMA}.parent")
    for case in CASES:
        conn.execute(f"ANALYZE {SCHEMA}.{case.name}")


def _scans(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _scans(child)


def planner_covers(conn: psycopg.Connection[Any], case: Case) -> tuple[bool, list[str]]:
    """Whether the generic plan of the key's lookup reaches its rows through the case's index
    with every key column an index condition; and the plan's scan lines (for the message)."""
    params = ", ".join("bigint" for _ in case.key)
    where = " AND ".join(f"{col} = ${i}" for i, col in enumerate(case.key, 1))
    conn.execute("DEALLOCATE ALL")
    conn.execute("SET plan_cache_mode = force_generic_plan")
    conn.execute(f"PREPARE lookup({params}) AS SELECT 1 FROM ONLY {SCHEMA}.{case.name} x WHERE {where} "
                 "FOR KEY SHARE OF x")
    args = ", ".join("1" for _ in case.key)
    row = conn.execute(f"EXPLAIN (FORMAT JSON) EXECUTE lookup({args})").fetchone()
    assert row is not None
    plan = row[0] if isinstance(row[0], list) else json.loads(row[0])
    nodes = list(_scans(plan[0]["Plan"]))
    lines = [f"{n['Node Type']} {n.get('Index Name', '')} {n.get('Index Cond', '')}".strip() for n in nodes]
    index = f"{case.name}_idx"
    for node in nodes:
        if node.get("Index Name") == index:
            cond = node.get("Index Cond", "")
            # a generic plan shows the parameters as $1, $2: each key column must be bound by one
            return all(re.search(rf"\b{col} = \$\d", cond) for col in case.key), lines
    return False, lines


@pytest.fixture
def proof(database_url: str) -> Iterator[psycopg.Connection[Any]]:  # noqa: F811 - the imported fixture
    # no automatic server-side statements of psycopg's: the test PREPAREs (and DEALLOCATEs) its own
    with psycopg.connect(database_url, autocommit=True, prepare_threshold=None) as conn:
        _prepare(conn)
        try:
            yield conn
        finally:
            conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")


@pytest.mark.parametrize("database_url", MAJORS, indirect=True, ids=lambda m: f"pg{m}" if m else "no-server")
def test_every_coverage_rule_agrees_with_the_planner(proof: psycopg.Connection[Any], database_url: str) -> None:  # noqa: F811
    rb = load_runbook(ROOT / "runbook.toml")
    db = Database(database_url, rb.db_session, Redactor(), read_only=True)
    try:
        indexes = pm.indexes(db, [SCHEMA])
        keys = {fk.table: fk.columns for fk in pm.foreign_keys(db, [SCHEMA])}
    finally:
        db.close()
    invalid = next(i for i in indexes if i.name == "invalid_idx")
    assert not invalid.usable  # the failed CREATE INDEX CONCURRENTLY left it behind
    disagreements = []
    for case in CASES:
        assert keys[case.name] == case.key
        candidate = [i for i in indexes if i.table == case.name and i.name == f"{case.name}_idx"]
        assert len(candidate) == 1, case.name
        rule = pm.covers(candidate[0], case.key)
        planner, plan = planner_covers(proof, case)
        if not (rule == planner == case.covered):
            disagreements.append(f"{case.name}: expected {case.covered}, rule {rule}, planner {planner} ({plan})")
    assert disagreements == []


def test_the_real_schema_partial_indexes() -> None:
    """The twelve partial indexes of the deployment's schema that lead with a foreign key
    column (whats-agents bootstrap/01-schema.sql:5571-6351): the seven whose predicate is the
    key's IS NOT NULL cover their six keys (flagged before this rule); the five others do not
    (status, eh_oferta, deleted_at, eh_duplicada predicates), as the planner rules above say."""
    def partial(cols: tuple[str, ...], predicate: str) -> pm.IndexDef:
        return pm.IndexDef("public", "t", "ix", "btree", cols, len(cols), True, True, False, False, 8192, "",
                           predicate=predicate)

    covered = [
        (partial(("hospital_id",), "(hospital_id IS NOT NULL)"), ("hospital_id",)),
        (partial(("first_touch_campaign_id",), "(first_touch_campaign_id IS NOT NULL)"), ("first_touch_campaign_id",)),
        (partial(("last_touch_campaign_id",), "(last_touch_campaign_id IS NOT NULL)"), ("last_touch_campaign_id",)),
        (partial(("cliente_id",), "(cliente_id IS NOT NULL)"), ("cliente_id",)),
        (partial(("attributed_campaign_id",), "(attributed_campaign_id IS NOT NULL)"), ("attributed_campaign_id",)),
        (partial(("attributed_campaign_id", "origem", "created_at"), "(attributed_campaign_id IS NOT NULL)"),
         ("attributed_campaign_id",)),
        (partial(("especialidade_id",), "(especialidade_id IS NOT NULL)"), ("especialidade_id",)),
    ]
    not_covered = [
        (partial(("vaga_id",), "(status = ANY (ARRAY['pending'::text, 'contacted'::text]))"), ("vaga_id",)),
        (partial(("grupo_id", "timestamp_msg"), "(eh_oferta = true)"), ("grupo_id",)),
        (partial(("especialidade_id", "status", "data"),
                 "(((status)::text = 'aberta'::text) AND (deleted_at IS NULL))"), ("especialidade_id",)),
        (partial(("hospital_id", "data", "periodo_id", "especialidade_id"), "(eh_duplicada = false)"),
         ("hospital_id",)),
        (partial(("hospital_id", "status", "data"), "(deleted_at IS NULL)"), ("hospital_id",)),
    ]
    assert all(pm.covers(i, c) for i, c in covered)
    assert not any(pm.covers(i, c) for i, c in not_covered)
