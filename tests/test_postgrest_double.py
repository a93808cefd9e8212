"""The PostgREST double (tests/postgrest_double.py) speaks PostgREST, proven on a real PostgreSQL.

Each test pins one feature or error of PostgREST as PostgREST documents and implements it —
not as the real app happens to use it — on a schema of its own (authors, books, …). The
references: PostgREST's docs (https://docs.postgrest.org/en/v14/references/api/
tables_views.html, resource_embedding.html, functions.html, preferences.html,
pagination_count.html, errors.html) and its source (src/library/PostgREST/Error.hs for the
error bodies and the SQLSTATE → HTTP table, ApiRequest/QueryParams.hs for the grammar,
Response.hs and RangeQuery.hs for statuses and Content-Range); postgrest-py 2.25 for the
request shapes a client sends (percent-encoded query strings, ``Prefer``, the single-object
``Accept``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from fixtures.stack.backends.native import NativeStack
from tests.postgrest_double import PostgrestDouble, sqlstate_status

DB = "jc_postgrest_double"
READER = "jc_double_reader"

SCHEMA = """
CREATE TABLE authors (
    id serial PRIMARY KEY, name text NOT NULL UNIQUE, born date, active boolean DEFAULT true,
    meta jsonb DEFAULT '{}', tags text[] DEFAULT '{}', created_at timestamptz DEFAULT now());
CREATE TABLE books (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(), title text NOT NULL,
    author_id int REFERENCES authors(id), editor_id int REFERENCES authors(id),
    pages int CHECK (pages > 0), published_at timestamptz);
CREATE TABLE author_profiles (author_id int PRIMARY KEY REFERENCES authors(id), bio text);
CREATE TABLE reviews (id serial PRIMARY KEY, book_id uuid REFERENCES books(id), stars int);
CREATE VIEW active_authors AS SELECT id, name FROM authors WHERE active;
CREATE FUNCTION add(a int, b int DEFAULT 1) RETURNS int LANGUAGE sql AS 'SELECT a + b';
CREATE FUNCTION books_by(author int) RETURNS SETOF books LANGUAGE sql STABLE
    AS 'SELECT * FROM books WHERE author_id = author ORDER BY title';
CREATE FUNCTION one_author(aid int) RETURNS authors LANGUAGE sql STABLE AS 'SELECT * FROM authors WHERE id = aid';
CREATE FUNCTION author_names() RETURNS SETOF text LANGUAGE sql STABLE AS 'SELECT name FROM authors ORDER BY id';
CREATE FUNCTION touch(n int) RETURNS void LANGUAGE sql AS 'UPDATE authors SET born = born WHERE id = n';
CREATE FUNCTION bump(n int) RETURNS int LANGUAGE sql AS 'UPDATE authors SET born = born WHERE id = n RETURNING id';
CREATE FUNCTION since(t timestamptz) RETURNS bigint LANGUAGE sql STABLE
    AS 'SELECT count(*) FROM books WHERE published_at >= t';
CREATE FUNCTION by_tags(wanted text[]) RETURNS SETOF text LANGUAGE sql STABLE
    AS 'SELECT name FROM authors WHERE tags @> wanted ORDER BY id';
CREATE FUNCTION counted() RETURNS TABLE (total bigint) LANGUAGE sql STABLE AS 'SELECT count(*) FROM authors';
CREATE FUNCTION pick(x int) RETURNS text LANGUAGE sql AS 'SELECT ''int''';
CREATE FUNCTION pick(x text) RETURNS text LANGUAGE sql AS 'SELECT ''text''';
CREATE FUNCTION refuse() RETURNS int LANGUAGE plpgsql
    AS $$BEGIN RAISE EXCEPTION 'refused' USING DETAIL = 'because', HINT = 'ask nicely'; END$$;
"""

SEED = """
TRUNCATE reviews, author_profiles, books, authors RESTART IDENTITY CASCADE;
INSERT INTO authors (name, born, active, meta, tags) VALUES
  ('Ana', '1980-01-02', true, '{"city": "Recife", "n": 1}', '{a,b}'),
  ('Bruno', NULL, false, '{}', '{}'),
  ('Carla, "C"', '1990-05-06', true, '{"city": "Natal"}', '{b}');
INSERT INTO books (id, title, author_id, editor_id, pages, published_at) VALUES
  ('00000000-0000-0000-0000-000000000001', 'Primeiro', 1, 2, 100, '2026-01-01T10:00:00+00:00'),
  ('00000000-0000-0000-0000-000000000002', 'Segundo', 1, NULL, 200, NULL),
  ('00000000-0000-0000-0000-000000000003', 'Terceiro', 3, 1, 300, '2026-01-02T10:00:00-03:00');
INSERT INTO author_profiles VALUES (1, 'bio da Ana');
INSERT INTO reviews (book_id, stars) VALUES
  ('00000000-0000-0000-0000-000000000001', 5), ('00000000-0000-0000-0000-000000000001', 4);
"""
B1, B2, B3 = (f"00000000-0000-0000-0000-00000000000{i}" for i in (1, 2, 3))


def _with_db(url: str, dbname: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = dbname
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in info.items() if v is not None})


@pytest.fixture(scope="module")
def database(stack: NativeStack) -> Iterator[str]:
    assert stack.info is not None
    admin = stack.info.admin_url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB}"')
        conn.execute(f'DROP ROLE IF EXISTS "{READER}"')
        conn.execute(f'CREATE ROLE "{READER}" NOLOGIN')
    url = _with_db(stack.info.database_url, DB)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA)
        conn.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{READER}"')
    try:
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
            conn.execute(f'DROP ROLE IF EXISTS "{READER}"')


@pytest.fixture(scope="module")
def double(database: str) -> Iterator[PostgrestDouble]:
    with PostgrestDouble(database) as d:
        yield d


@pytest.fixture
def api(double: PostgrestDouble, database: str) -> Iterator[httpx.Client]:
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(SEED)
    # postgrest-py's client: base URL <supabase>/rest/v1, its headers (postgrest/base_client.py)
    with httpx.Client(base_url=double.url + "/rest/v1", timeout=10,
                      headers={"Accept-Profile": "public", "Content-Profile": "public"}) as client:
        yield client


def error(resp: httpx.Response) -> dict[str, Any]:
    """An error body always carries PostgREST's four keys (Error.hs errorPayload, Verbose)."""
    body = resp.json()
    assert set(body) == {"code", "message", "details", "hint"}, body
    return body


# --- reading -------------------------------------------------------------------------------------


def test_select_columns_aliases_and_json_paths(api: httpx.Client) -> None:
    r = api.get("/authors", params={"select": "id,nome:name,city:meta->>city,n:meta->n", "id": "eq.1"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert r.json() == [{"id": 1, "nome": "Ana", "city": "Recife", "n": 1}]
    assert r.headers["Content-Range"] == "0-0/*"   # no count asked: the total is "*"


def test_select_star_and_default_is_star(api: httpx.Client) -> None:
    star = api.get("/books", params={"select": "*", "id": f"eq.{B2}"}).json()
    assert star == api.get("/books", params={"id": f"eq.{B2}"}).json()
    assert star == [{"id": B2, "title": "Segundo", "author_id": 1, "editor_id": None, "pages": 200,
                     "published_at": None}]


def test_embedding_many_to_one_through_a_hint_or_the_fk_column(api: httpx.Client) -> None:
    # books has two FKs to authors: the hint (constraint or column) or the column as target picks one
    r = api.get("/books", params={"select": "title,authors!author_id(name),editor:editor_id(name)",
                                  "order": "title"})
    assert r.json() == [{"title": "Primeiro", "authors": {"name": "Ana"}, "editor": {"name": "Bruno"}},
                        {"title": "Segundo", "authors": {"name": "Ana"}, "editor": None},
                        {"title": "Terceiro", "authors": {"name": 'Carla, "C"'}, "editor": {"name": "Ana"}}]
    by_constraint = api.get("/books", params={"select": "title,authors!books_editor_id_fkey(name)",
                                              "id": f"eq.{B3}"}).json()
    assert by_constraint == [{"title": "Terceiro", "authors": {"name": "Ana"}}]


def test_embedding_one_to_many_one_to_one_and_nested(api: httpx.Client) -> None:
    r = api.get("/books", params={"select": "title,reviews(stars),authors!author_id(name,author_profiles(bio))",
                                  "order": "title", "limit": "2"})
    assert r.json() == [
        {"title": "Primeiro", "reviews": [{"stars": 5}, {"stars": 4}],
         "authors": {"name": "Ana", "author_profiles": {"bio": "bio da Ana"}}},
        {"title": "Segundo", "reviews": [], "authors": {"name": "Ana", "author_profiles": {"bio": "bio da Ana"}}},
    ]


def test_embedding_inner_join_filters_the_parent(api: httpx.Client) -> None:
    r = api.get("/books", params={"select": "title,reviews!inner(stars)"})
    assert [b["title"] for b in r.json()] == ["Primeiro"]


def test_embedding_ambiguous_and_missing_relationships(api: httpx.Client) -> None:
    r = api.get("/books", params={"select": "title,authors(name)"})
    assert r.status_code == 300
    body = error(r)
    assert body["code"] == "PGRST201"
    assert body["message"] == "Could not embed because more than one relationship was found for 'books' and 'authors'"
    assert "'authors!books_author_id_fkey'" in body["hint"] and "'authors!books_editor_id_fkey'" in body["hint"]
    assert {d["cardinality"] for d in json.loads(body["details"])} == {"many-to-one"}
    r = api.get("/books", params={"select": "title,publishers(name)"})
    assert r.status_code == 400
    body = error(r)
    assert body["code"] == "PGRST200"
    assert body["message"] == "Could not find a relationship between 'books' and 'publishers' in the schema cache"
    assert body["details"] == ("Searched for a foreign key relationship between 'books' and 'publishers' in the "
                               "schema 'public', but no matches were found.")


@pytest.mark.parametrize(("params", "titles"), [
    ({"pages": "eq.100"}, ["Primeiro"]),
    ({"pages": "neq.100"}, ["Segundo", "Terceiro"]),
    ({"pages": "gt.100"}, ["Segundo", "Terceiro"]),
    ({"pages": "gte.200"}, ["Segundo", "Terceiro"]),
    ({"pages": "lt.200"}, ["Primeiro"]),
    ({"pages": "lte.200"}, ["Primeiro", "Segundo"]),
    ({"title": "like.*eir*"}, ["Primeiro", "Terceiro"]),
    ({"title": "ilike.SEG*"}, ["Segundo"]),
    ({"published_at": "is.null"}, ["Segundo"]),
    ({"published_at": "not.is.null"}, ["Primeiro", "Terceiro"]),
    ({"published_at": "is.not_null"}, ["Primeiro", "Terceiro"]),
    ({"editor_id": "is.NULL"}, ["Segundo"]),                       # is values are case-insensitive
    ({"title": "in.(Primeiro,Terceiro)"}, ["Primeiro", "Terceiro"]),
    ({"title": "not.in.(Primeiro,Terceiro)"}, ["Segundo"]),
    ({"id": f"in.({B1},{B3})"}, ["Primeiro", "Terceiro"]),
    ({"pages": ["gte.100", "lte.200"]}, ["Primeiro", "Segundo"]),  # repeated keys: AND
    ({"or": "(published_at.is.null,pages.gt.250)"}, ["Segundo", "Terceiro"]),
    ({"and": "(pages.gt.50,or(title.eq.Segundo,title.eq.Terceiro))"}, ["Segundo", "Terceiro"]),
    ({"not.or": "(pages.eq.100,pages.eq.200)"}, ["Terceiro"]),
    # ISO timestamps with offsets (postgrest-py sends datetime.isoformat(), µs and ±HH:MM)
    ({"published_at": "gte.2026-01-01T07:00:00.000001-03:00"}, ["Terceiro"]),
    ({"published_at": "lt.2026-01-02T12:00:00+00:00"}, ["Primeiro"]),
])
def test_filters(api: httpx.Client, params: dict[str, Any], titles: list[str]) -> None:
    r = api.get("/books", params={"select": "title", "order": "title", **params})
    assert r.status_code == 200, r.text
    assert [b["title"] for b in r.json()] == titles


def test_filters_on_booleans_arrays_and_json(api: httpx.Client) -> None:
    def names(**params: str) -> list[str]:
        return [a["name"] for a in api.get("/authors", params={"select": "name", "order": "id", **params}).json()]

    # postgrest-py sends Python's str(): True/False capitalised; PostgreSQL's boolean input takes them
    assert names(active="eq.True") == ["Ana", 'Carla, "C"']
    assert names(active="eq.False") == ["Bruno"]
    assert names(active="is.TRUE") == ["Ana", 'Carla, "C"']
    assert names(tags="cs.{b}") == ["Ana", 'Carla, "C"']              # array containment
    assert names(tags="cd.{a,b,c}") == ["Ana", "Bruno", 'Carla, "C"']
    assert names(meta='cs.{"city": "Natal"}') == ['Carla, "C"']        # jsonb containment (json.dumps spacing)
    assert names(name='in.("Carla, \\"C\\"",Ana)') == ["Ana", 'Carla, "C"']   # quoted in-list values
    assert names(**{"meta->>city": "eq.Recife"}) == ["Ana"]


def test_percent_encoded_query_strings_are_decoded(api: httpx.Client) -> None:
    # exactly as httpx encodes postgrest-py's params: ',' '(' ':' '+' '{' '"' and spaces escaped
    raw = ("/books?select=title&published_at=gte.2026-01-01T10%3A00%3A00%2B00%3A00"
           "&title=in.%28Primeiro%2CTerceiro%29&order=title")
    assert [b["title"] for b in api.get(raw).json()] == ["Primeiro", "Terceiro"]
    raw = '/authors?select=name&meta=cs.%7B%22city%22%3A%20%22Recife%22%7D'
    assert api.get(raw).json() == [{"name": "Ana"}]


def test_values_are_bound_never_spliced(api: httpx.Client, database: str) -> None:
    r = api.get("/authors", params={"name": "eq.x'; DROP TABLE authors; --", "select": "name"})
    assert r.status_code == 200 and r.json() == []
    r = api.get("/authors", params={"select": 'name,"x"; DROP TABLE authors; --"'})
    assert r.status_code == 400
    with psycopg.connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM authors").fetchone() == (3,)


def test_order_multi_column_directions_and_nulls(api: httpx.Client) -> None:
    def titles(order: str) -> list[str]:
        return [b["title"] for b in api.get("/books", params={"select": "title", "order": order}).json()]

    assert titles("published_at.desc.nullslast,title") == ["Terceiro", "Primeiro", "Segundo"]
    assert titles("published_at.desc.nullsfirst") == ["Segundo", "Terceiro", "Primeiro"]
    assert titles("published_at.asc,title.desc") == ["Primeiro", "Terceiro", "Segundo"]
    assert titles("editor_id.nullsfirst,pages.desc") == ["Segundo", "Terceiro", "Primeiro"]


def test_limit_offset_and_exact_count(api: httpx.Client) -> None:
    count = {"Prefer": "count=exact"}
    r = api.get("/books", params={"select": "title", "order": "title", "limit": "1", "offset": "1"}, headers=count)
    assert (r.status_code, r.headers["Content-Range"], r.json()) == (206, "1-1/3", [{"title": "Segundo"}])
    r = api.get("/books", params={"select": "title"}, headers=count)
    assert (r.status_code, r.headers["Content-Range"]) == (200, "0-2/3")
    r = api.get("/books", params={"select": "title", "pages": "gt.1000"}, headers=count)
    assert (r.status_code, r.headers["Content-Range"], r.json()) == (200, "*/0", [])
    r = api.get("/books", params={"limit": "1", "offset": "5"}, headers=count)
    assert r.status_code == 416
    assert error(r) == {"code": "PGRST103", "message": "Requested range not satisfiable",
                        "details": "An offset of 5 was requested, but there are only 3 rows.", "hint": None}
    r = api.get("/books", params={"limit": "-1"})
    assert r.status_code == 416 and error(r)["details"] == "Limit should be greater than or equal to zero."


def test_max_rows_caps_every_read(database: str, api: httpx.Client) -> None:
    """db-max-rows: a read returns at most that many rows, the count still counts them all."""
    with PostgrestDouble(database, max_rows=2) as capped, httpx.Client(base_url=capped.url + "/rest/v1") as client:
        r = client.get("/books", params={"select": "title", "order": "title"}, headers={"Prefer": "count=exact"})
        assert (r.status_code, r.headers["Content-Range"], len(r.json())) == (206, "0-1/3", 2)
        assert len(client.get("/books", params={"limit": "1"}).json()) == 1


def test_single_object_media_type(api: httpx.Client) -> None:
    one = {"Accept": "application/vnd.pgrst.object+json"}
    r = api.get("/authors", params={"select": "name", "id": "eq.1"}, headers=one)
    assert r.status_code == 200 and r.json() == {"name": "Ana"}
    assert r.headers["content-type"].startswith("application/vnd.pgrst.object+json")
    for params, rows in (({"id": "eq.99"}, 0), ({"active": "is.true"}, 2)):
        r = api.get("/authors", params=params, headers=one)
        assert r.status_code == 406
        # postgrest-py's maybe_single() keys on this exact details text
        assert error(r) == {"code": "PGRST116", "message": "Cannot coerce the result to a single JSON object",
                            "details": f"The result contains {rows} rows", "hint": None}


def test_head_answers_headers_only(api: httpx.Client) -> None:
    r = api.head("/books", headers={"Prefer": "count=exact"})
    assert (r.status_code, r.headers["Content-Range"], r.content) == (200, "0-2/3", b"")


# --- writing -------------------------------------------------------------------------------------


def test_insert_returns_rows_with_their_defaults(api: httpx.Client) -> None:
    rep = {"Prefer": "return=representation"}
    r = api.post("/authors", json={"name": "Davi", "meta": {"city": "Olinda"}, "tags": ["x"]}, headers=rep)
    assert r.status_code == 201
    [row] = r.json()
    assert row["id"] == 4 and row["active"] is True and row["meta"] == {"city": "Olinda"} and row["tags"] == ["x"]
    assert row["created_at"].endswith("+00:00")      # timestamptz in UTC, as Supabase's databases answer
    r = api.post("/books", json={"title": "Quarto", "author_id": 4}, headers=rep, params={"select": "id,title"})
    assert r.status_code == 201 and len(r.json()[0]["id"]) == 36 and r.json()[0]["title"] == "Quarto"


def test_insert_minimal_and_single_object(api: httpx.Client) -> None:
    r = api.post("/authors", json={"name": "Eva"}, headers={"Prefer": "return=minimal"})
    assert (r.status_code, r.content, r.headers["Content-Range"]) == (201, b"", "*/*")
    r = api.post("/authors", json={"name": "Fábio"},
                 headers={"Prefer": "return=representation", "Accept": "application/vnd.pgrst.object+json"})
    assert r.status_code == 201 and r.json()["name"] == "Fábio"


def test_insert_lists_with_and_without_columns(api: httpx.Client) -> None:
    rep = {"Prefer": "return=representation"}
    r = api.post("/authors", json=[{"name": "G1", "born": "2000-01-01"}, {"name": "G2", "born": None}], headers=rep)
    assert r.status_code == 201 and [a["name"] for a in r.json()] == ["G1", "G2"]
    r = api.post("/authors", json=[{"name": "H1"}, {"name": "H2", "born": "2000-01-01"}], headers=rep)
    assert r.status_code == 400 and error(r)["code"] == "PGRST102"
    assert error(r)["message"] == "All object keys must match"
    # postgrest-py adds ?columns="a","b" to list bodies: missing keys become NULL
    r = api.post("/authors", params={"columns": '"name","born"'},
                 json=[{"name": "H1"}, {"name": "H2", "born": "2000-01-01"}], headers=rep)
    assert r.status_code == 201 and [a["born"] for a in r.json()] == [None, "2000-01-01"]


def test_insert_unknown_column_and_bad_body(api: httpx.Client) -> None:
    r = api.post("/authors", json={"name": "I", "nope": 1})
    assert r.status_code == 400
    assert error(r) == {"code": "PGRST204", "message": "Could not find the 'nope' column of 'authors' in the schema "
                                                       "cache", "details": None, "hint": None}
    r = api.post("/authors", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and error(r)["code"] == "PGRST102"


def test_upsert_merge_and_ignore_duplicates(api: httpx.Client) -> None:
    merge = {"Prefer": "return=representation,resolution=merge-duplicates"}
    r = api.post("/authors", params={"on_conflict": "name"}, json={"name": "Ana", "born": "1970-07-07"}, headers=merge)
    assert r.status_code == 200 and r.json()[0]["born"] == "1970-07-07" and r.json()[0]["id"] == 1  # only updated
    assert "resolution=merge-duplicates" in r.headers["Preference-Applied"]
    r = api.post("/authors", params={"on_conflict": "name"}, json={"name": "Joana"}, headers=merge)
    assert r.status_code == 201 and r.json()[0]["name"] == "Joana"
    ignore = {"Prefer": "return=representation,resolution=ignore-duplicates"}
    r = api.post("/authors", params={"on_conflict": "name"}, json={"name": "Ana", "born": "1900-01-01"}, headers=ignore)
    assert r.status_code == 201 and r.json() == []
    assert api.get("/authors", params={"select": "born", "id": "eq.1"}).json() == [{"born": "1970-07-07"}]
    # without on_conflict the primary key is the conflict target
    r = api.post("/author_profiles", json={"author_id": 1, "bio": "nova"}, headers=merge)
    assert r.status_code == 200 and r.json() == [{"author_id": 1, "bio": "nova"}]


def test_patch_and_delete(api: httpx.Client) -> None:
    rep = {"Prefer": "return=representation"}
    r = api.patch("/books", params={"author_id": "eq.1", "select": "title,pages"}, json={"pages": 111}, headers=rep)
    assert r.status_code == 200 and sorted(r.json(), key=lambda b: b["title"]) == [
        {"title": "Primeiro", "pages": 111}, {"title": "Segundo", "pages": 111}]
    assert r.headers["Content-Range"] == "0-1/*"
    r = api.patch("/books", params={"title": "eq.Nenhum"}, json={"pages": 1}, headers=rep)
    assert (r.status_code, r.json()) == (200, [])
    r = api.patch("/books", params={"id": f"eq.{B3}"}, json={"pages": 301}, headers={"Prefer": "return=minimal"})
    assert (r.status_code, r.content) == (204, b"")
    r = api.delete("/reviews", params={"stars": "eq.4"}, headers=rep)
    assert r.status_code == 200 and [x["stars"] for x in r.json()] == [4]
    r = api.delete("/reviews", params={"stars": "eq.5"})
    assert r.status_code == 204
    r = api.patch("/books", params={"id": f"eq.{B1}"}, json={"pages": 1},
                  headers={"Accept": "application/vnd.pgrst.object+json", "Prefer": "return=representation"})
    assert r.status_code == 200 and r.json()["pages"] == 1


def test_single_object_mutation_of_several_rows_is_refused_and_rolled_back(api: httpx.Client) -> None:
    r = api.patch("/books", params={"author_id": "eq.1"}, json={"pages": 7},
                  headers={"Accept": "application/vnd.pgrst.object+json", "Prefer": "return=representation"})
    assert r.status_code == 406 and error(r)["details"] == "The result contains 2 rows"
    assert [b["pages"] for b in api.get("/books", params={"author_id": "eq.1", "order": "title"}).json()] == [100, 200]


# --- functions -----------------------------------------------------------------------------------


def test_rpc_results_by_return_type(api: httpx.Client) -> None:
    assert api.post("/rpc/add", json={"a": 2, "b": 3}).json() == 5
    assert api.post("/rpc/add", json={"a": 2}).json() == 3                            # a default
    assert api.get("/rpc/add", params={"a": "2", "b": "5"}).json() == 7               # GET: query args
    assert [b["title"] for b in api.post("/rpc/books_by", json={"author": 1}).json()] == ["Primeiro", "Segundo"]
    assert api.post("/rpc/one_author", json={"aid": 2}).json()["name"] == "Bruno"   # single composite: object
    assert api.post("/rpc/author_names", json={}).json() == ["Ana", "Bruno", 'Carla, "C"']
    assert api.post("/rpc/author_names").json() == ["Ana", "Bruno", 'Carla, "C"']     # no body: no args
    assert api.post("/rpc/since", json={"t": "2026-01-01T11:00:00+00:00"}).json() == 1
    assert api.post("/rpc/by_tags", json={"wanted": ["b"]}).json() == ["Ana", 'Carla, "C"']
    # RETURNS TABLE with one column is composite for PostgREST (SchemaCache.hs: any TABLE/OUT argument)
    assert api.post("/rpc/counted").json() == [{"total": 3}]
    r = api.post("/rpc/touch", json={"n": 1})
    assert (r.status_code, r.content) == (204, b"")                                    # void


def test_rpc_missing_function_or_arguments(api: httpx.Client) -> None:
    r = api.post("/rpc/get_columns", json={"table_names": ["a"]})
    assert r.status_code == 404
    body = error(r)
    assert body["code"] == "PGRST202"
    assert body["message"] == "Could not find the function public.get_columns(table_names) in the schema cache"
    assert body["details"] == ("Searched for the function public.get_columns with parameter table_names or with a "
                               "single unnamed json/jsonb parameter, but no matches were found in the schema cache.")
    r = api.post("/rpc/add", json={"x": 1, "y": 2})
    body = error(r)
    assert (r.status_code, body["code"]) == (404, "PGRST202")
    assert body["message"] == "Could not find the function public.add(x, y) in the schema cache"
    assert body["hint"] == "Perhaps you meant to call the function public.add(a, b)"
    r = api.post("/rpc/add", json={})
    assert error(r)["message"] == "Could not find the function public.add without parameters in the schema cache"


def test_rpc_overloads_and_read_only_get(api: httpx.Client) -> None:
    r = api.post("/rpc/pick", json={"x": 1})
    assert r.status_code == 300 and error(r)["code"] == "PGRST203"
    # GET runs read-only (PostgREST): a function that writes fails with 25006 → 405
    r = api.get("/rpc/bump", params={"n": "1"})
    assert r.status_code == 405 and error(r)["code"] == "25006"
    assert api.post("/rpc/bump", json={"n": 1}).json() == 1


# --- errors --------------------------------------------------------------------------------------


def test_unknown_table_and_paths(api: httpx.Client) -> None:
    r = api.get("/book")
    assert r.status_code == 404
    assert error(r) == {"code": "PGRST205", "message": "Could not find the table 'public.book' in the schema cache",
                        "details": None, "hint": "Perhaps you meant the table 'public.books'"}
    # supabase-py asks for information_schema.columns as a table name; PostgREST does not serve it
    r = api.get("/information_schema.columns", params={"select": "table_name"})
    assert r.status_code == 404 and error(r)["message"] == (
        "Could not find the table 'public.information_schema.columns' in the schema cache")
    r = httpx.get(api.base_url.copy_with(path="/auth/v1/user"))
    assert r.status_code == 404 and error(r)["code"] == "PGRST125"
    r = api.get("/books", headers={"Accept-Profile": "private"})
    assert r.status_code == 406 and error(r) == {
        "code": "PGRST106", "message": "Invalid schema: private", "details": None,
        "hint": "Only the following schemas are exposed: public"}


def test_unparsable_query_parameters(api: httpx.Client) -> None:
    for params in ({"pages": "between.1.2"}, {"pages": "eq"}, {"title": "in.Primeiro"}, {"order": "title.sideways"},
                   {"or": "pages.eq.1"}, {"limit": "ten"}, {"published_at": "is.maybe"}):
        r = api.get("/books", params=params)
        assert r.status_code == 400 and error(r)["code"] == "PGRST100", params


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "code"), [
    ("post", "/authors", {"json": {"name": "Ana"}}, 409, "23505"),                   # unique_violation
    ("post", "/books", {"json": {"title": "X", "author_id": 99}}, 409, "23503"),     # foreign_key_violation
    ("post", "/books", {"json": {"author_id": 1}}, 400, "23502"),                    # not_null_violation
    ("post", "/books", {"json": {"title": "X", "pages": 0}}, 400, "23514"),          # check_violation
    ("get", "/books", {"params": {"id": "eq.not-a-uuid"}}, 400, "22P02"),             # invalid_text_representation
    ("get", "/books", {"params": {"select": "nope"}}, 400, "42703"),                  # undefined_column
    ("post", "/rpc/refuse", {"json": {}}, 400, "P0001"),                             # raise_exception
])
def test_postgresql_errors_keep_their_sqlstate(api: httpx.Client, method: str, path: str, kwargs: dict[str, Any],
                                               status: int, code: str) -> None:
    r = getattr(api, method)(path, **kwargs)
    body = error(r)
    assert (r.status_code, body["code"]) == (status, code), body
    assert body["message"]


def test_unique_violation_reads_as_postgres_wrote_it(api: httpx.Client) -> None:
    body = error(api.post("/authors", json={"name": "Ana"}))
    assert body == {"code": "23505", "message": 'duplicate key value violates unique constraint "authors_name_key"',
                    "details": "Key (name)=(Ana) already exists.", "hint": None}
    # the relation is named as PostgREST names it (FROM "public"."books"), not by an alias of the double
    assert error(api.get("/books", params={"select": "title,nope"}))["message"] == "column books.nope does not exist"
    body = error(api.patch("/books", params={"nope": "eq.1"}, json={"pages": 1}))
    assert body["message"] == "column books.nope does not exist"
    body = error(api.post("/rpc/refuse", json={}))
    assert (body["message"], body["details"], body["hint"]) == ("refused", "because", "ask nicely")


def test_sqlstate_to_http_status_table() -> None:
    """PostgREST's mapSQLtoHTTP, row by row (Error.hs)."""
    assert [sqlstate_status(c) for c in ("08006", "09000", "0L000", "0P000", "23503", "23505", "25006", "25001",
                                         "28000", "2D000", "38000", "39000", "3B000", "40001", "53400", "53100",
                                         "54000", "55000", "57P01", "57014", "58000", "F0000", "HV000", "P0001",
                                         "P0002", "XX000", "42883", "42P01", "42P17", "42501", "22P02", "23502",
                                         "42703")] == [
        503, 500, 403, 403, 409, 409, 405, 500, 403, 500, 500, 500, 500, 500, 500, 503, 500, 500, 503, 500, 500,
        500, 500, 400, 500, 500, 404, 404, 500, 403, 400, 400, 400]


def test_requests_run_as_the_given_role(double: PostgrestDouble, database: str, api: httpx.Client) -> None:
    with PostgrestDouble(database, role=READER) as reader, httpx.Client(base_url=reader.url + "/rest/v1") as client:
        assert client.get("/authors", params={"select": "name", "id": "eq.1"}).json() == [{"name": "Ana"}]
        r = client.post("/authors", json={"name": "Zé"})
        assert r.status_code == 403 and error(r)["code"] == "42501"


def test_an_unreachable_database_answers_503(database: str) -> None:
    """PostgREST's PGRST000 (Error.hs: a connection usage error is 503)."""
    with PostgrestDouble(database) as d, httpx.Client(base_url=d.url + "/rest/v1") as client:
        d.stop_pool()
        d.database_url = "postgresql://postgres@127.0.0.1:1/nowhere?connect_timeout=2"
        r = client.get("/authors")
        assert r.status_code == 503 and error(r)["code"] == "PGRST000"
        assert error(r)["message"] == "Database connection error."


def test_a_relation_created_after_start_is_found(double: PostgrestDouble, database: str, api: httpx.Client) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS late (id int PRIMARY KEY)")
    try:
        assert api.get("/late").json() == []
    finally:
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute("DROP TABLE late")
