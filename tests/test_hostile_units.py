"""A hostile target, one defence at a time (issue 17): scrubbing is linear and scrubs exactly
what the plain regexes scrub; every GET has a total deadline and a decoded-size cap; a body
nested deeper than the parser can go is a one-line cause, never a RecursionError.

The transport tests talk to real loopback HTTP servers (tests/loopback.py); the whole-run
proofs are in tests/test_hostile_faults.py. No test here measures time: bench/scrub.py does.
"""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from allure_commons.model2 import TestResult as AllureResult
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures import json_bounds
from fixtures.clients import Api
from fixtures.probes import runtime as pr
from fixtures.probes.health import BadAnswer, json_object
from plugins.contract.redaction import MASK, _BEARER, _DSN_PASSWORD, _KV_PASSWORD, Redactor
from plugins.contract.runbook import HttpPolicy, load_runbook
from plugins.contract.toml_schema import ConfigError
from plugins.contract.verdict import Undecidable
from plugins.scrub import AllureRedactor, scrub_file, scrub_value
from tests.hostile_servers import HostileApi, Streamed, gzip_bomb, large_json, trickle
from tests.loopback import Canned, LoopbackApi

ROOT = Path(__file__).resolve().parents[1]


def _plain_regexes(text: str) -> str:
    """What Redactor.scrub did before it was made linear (no registered secret)."""
    for pattern in (_DSN_PASSWORD, _KV_PASSWORD, _BEARER):
        text = pattern.sub(lambda m: m.group("pre") + MASK, text)
    return text


# Pieces that make the three shapes, their near misses and the characters that end them,
# with the few non-ASCII letters re.IGNORECASE treats specially ('ſ' ~ 's', 'İ' lower-cases
# to two characters, 'K' is the Kelvin sign).
_PIECES = ["://", "password", "PassWord", "paſſword", "bearer ", "Bearer\t", "BEARER", "=", " = ", "'", "@",
           ":", "/", "a", "Z", "9", "+", "-", ".", "_", "x", "İ", "é", "K", "\n", "abcdefgh12", "u:p@h",
           "pg://", "db2://", "9://", "postgresql://", "::", "@@", "\u00a0"]


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=16))
def test_scrub_masks_what_the_plain_regexes_mask(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert Redactor().scrub(text) == _plain_regexes(text)


@settings(max_examples=500, deadline=None)
@given(st.text(string.printable + "ſİé", max_size=60))
def test_scrub_masks_what_the_plain_regexes_mask_on_any_text(text: str) -> None:
    assert Redactor().scrub(text) == _plain_regexes(text)


_SECRETS = ("postgresql://jc:s3cr%40t-pw@db.example.com/julia", "tok*en-91", "Júlia-sécret")
_SECRET_PIECES = ["s3cr@t-pw", "s3cr%40t-pw", "tok*en-91", "tok", "*", "**", "en-91", "Júlia-sécret", "é",
                  "postgresql://jc:", "@db.example.com/julia", " ", "password=", "://"]


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from(_SECRET_PIECES), max_size=12))
def test_scrub_with_secrets_matches_the_plain_way(pieces: list[str]) -> None:
    """With secrets registered (one holding a '*', as the mask does; one not ASCII), the
    result is the plain way's: each secret replaced longest first, then the regexes."""
    red = Redactor()
    for secret in _SECRETS:
        red.register(secret)
    text = "".join(pieces)
    plain = text
    for secret in sorted(red._secrets, key=len, reverse=True):
        if secret in plain:
            plain = plain.replace(secret, MASK)
    assert red.scrub(text) == _plain_regexes(plain)


def test_scrub_on_long_runs_gives_the_same_text() -> None:
    """The shapes that made the old scrub quadratic (a long run of scheme characters, of
    user characters after '://', of password characters with no '@'), at a size it could not
    finish in seconds, with a real DSN at the end so the mask is still applied."""
    dsn = "postgresql://julia:pw-123@db.example.com/julia"
    for run in ("a" * 400_000, "9" * 400_000, "a://" + "b" * 400_000, "a://b:" + "c" * 400_000,
                "a://b:c" * 60_000, "password" * 50_000, "Bearer " * 60_000):
        text = run + " ;" + dsn
        assert Redactor().scrub(text) == run + " ;postgresql://julia:***@db.example.com/julia"


# --- every GET has a total deadline and a body cap ----------------------------------------


def _api(url: str, **http: float) -> Api:
    policy = HttpPolicy(**{"connect_timeout_s": 1.0, "read_timeout_s": 1.0, "liveness_budget_ms": 1000,
                           "total_timeout_s": 1.5, "max_body_mb": 1.0, **http})  # type: ignore[arg-type]
    return Api(url, policy, {"deep": ("/health/deep",)}, Redactor())


@pytest.mark.parametrize("where", ["body", "headers"])
def test_a_trickling_server_meets_the_total_deadline(where: str) -> None:
    """A byte (or a header line) every 0.3 s never trips the 1 s read timeout; the 1.5 s
    deadline ends the GET, and two of them in a row end the API for the run."""
    answer = Streamed(trickle(), every_s=0.3, trickle_headers=where == "headers")
    with HostileApi(streamed={"/health/deep": answer}) as server:
        api = _api(server.url)
        messages = []
        for _ in range(3):
            with pytest.raises(Undecidable) as err:
                api.endpoint("deep")
            messages.append(err.value.message)
        api.close()
        served = list(server.requests)
    deadline = (f"GET {server.url}/health/deep: no complete answer within the total deadline "
                "(1.5 s, runbook.toml http.total_timeout_s)")
    assert messages[:2] == [deadline, deadline]
    assert messages[2] == f"API unresponsive: 2 requests in a row timed out (last: {deadline})"
    assert served == ["/health/deep", "/health/deep"], "the third GET was never sent"


def test_a_gzip_bomb_is_read_up_to_the_cap() -> None:
    """1 GB of JSON-looking text gzipped to about 1 MB: decoded chunk by chunk and no longer
    read past 1 MB; every reader of it is told the body was larger than that."""
    bomb = Streamed(gzip_bomb(1024), headers=(("Content-Encoding", "gzip"),))
    with HostileApi(streamed={"/health/deep": bomb}) as server:
        api = _api(server.url)
        resp = api.endpoint("deep")
        api.close()
    assert resp.status == 200 and resp.too_large_mb == 1.0
    assert len(resp.text) == 1 << 20 and resp.text.startswith('{"status": "healthy", "pad": "aaa')
    said = ("GET /health/deep answered HTTP 200 with a body larger than 1 MB (runbook.toml http.max_body_mb): "
            "not read further")
    with pytest.raises(BadAnswer) as bad:
        json_object(resp)
    assert bad.value.message == said
    with pytest.raises(Undecidable) as undecided:
        resp.body  # noqa: B018 - the property decodes
    assert undecided.value.message == said


def test_a_body_under_the_cap_is_read_whole_and_one_over_it_is_not() -> None:
    under = Streamed(large_json(0, head=b'{"status": "healthy", "pad": "' + b"a" * 1000))
    over = Streamed(large_json(2))
    with HostileApi(streamed={"/under": under, "/over": over}) as server:
        api = _api(server.url)
        small, big = api.get("/under"), api.get("/over")
        api.close()
    assert small.too_large_mb is None and json_object(small)["status"] == "healthy"
    assert big.too_large_mb == 1.0 and len(big.text) == 1 << 20


# --- a body too deep to walk is a one-line cause ------------------------------------------


def test_a_deeply_nested_body_is_one_line_for_every_reader() -> None:
    with LoopbackApi(routes={"/health/deep": Canned(200, "[" * 100_000, content_type="application/json")}) as server:
        api = _api(server.url)
        resp = api.endpoint("deep")
        api.close()
    said = "GET /health/deep answered HTTP 200 with JSON nested deeper than 64 levels"
    with pytest.raises(BadAnswer) as bad:
        json_object(resp)
    assert bad.value.message == said
    with pytest.raises(Undecidable) as undecided:
        resp.body  # noqa: B018 - the property decodes
    assert undecided.value.message == said


def test_json_bounds() -> None:
    assert json_bounds.loads('{"a": [1, {"b": null}]}') == {"a": [1, {"b": None}]}
    assert json_bounds.depth([[[]]]) == 3 and json_bounds.depth("x") == 0
    assert json_bounds.loads("[" * 64 + "]" * 64) is not None
    for text in ("[" * 65 + "]" * 65, "[" * 100_000, '{"a":' * 5000 + "1" + "}" * 5000):
        with pytest.raises(json_bounds.TooDeep, match="JSON nested deeper than 64 levels"):
            json_bounds.loads(text)
    with pytest.raises(ValueError):
        json_bounds.loads("[")


def _deep(levels: int) -> list:
    value: list = ["postgresql://u:s3cret-pw@h/db"]
    for _ in range(levels):
        value = [value]
    return value


def test_scrubbing_never_recurses_past_the_bound(tmp_path: Path) -> None:
    """Whatever reached a writer — a value built by code, a file on disk — is scrubbed
    without a RecursionError: the part deeper than the bound is replaced, never shown raw."""
    red = Redactor()
    shallow = scrub_value({"a": _deep(3)}, red)
    assert "s3cret-pw" not in str(shallow) and "***" in str(shallow)
    deep = scrub_value(_deep(50_000), red)
    assert json_bounds.depth(deep) == json_bounds.MAX_DEPTH and json_bounds.NOT_SHOWN in str(deep)
    assert "s3cret-pw" not in str(deep)
    assert json_bounds.capped(_deep(3)) == _deep(3)
    # an Allure model object holding a very deep list
    result = AllureResult(name="x", description="postgresql://u:s3cret-pw@h/db")
    result.parameters = _deep(50_000)  # type: ignore[assignment]
    AllureRedactor(red, tmp_path).report_result(result)
    assert "s3cret-pw" not in (result.description or "")
    # a JSON file too deep to walk is scrubbed as text
    path = tmp_path / "deep-attachment.json"
    path.write_text("[" * 100_000 + '"postgresql://u:s3cret-pw@h/db"' + "]" * 100_000)
    assert scrub_file(path, red) and "s3cret-pw" not in path.read_text()


def test_the_railway_query_is_bounded_too() -> None:
    """The one request to an outside service (Railway's replica count, a read sent as POST)
    has the same total deadline and the same one-line answer to a body too deep to read."""
    policy = HttpPolicy(connect_timeout_s=1.0, read_timeout_s=1.0, liveness_budget_ms=1000, total_timeout_s=1.5)
    routes = {"/deep": Canned(200, "[" * 100_000, content_type="application/json")}
    with HostileApi(routes=routes, streamed={"/slow": Streamed(trickle(), every_s=0.3)}) as server:
        for path, says in (("/slow", ": no complete answer within the total deadline (1.5 s, runbook.toml "
                                     "http.total_timeout_s)"),
                           ("/deep", " answered JSON nested deeper than 64 levels")):
            with pytest.raises(Undecidable) as err:
                pr.railway_scale(url=server.url + path, token="tok-123456", token_kind="project", service_id="s",
                                 environment_id="e", timeout_s=1.0, http=policy)
            assert err.value.message == f"Railway API {server.url}{path}{says}"


def test_the_bounds_come_from_the_contract(tmp_path: Path) -> None:
    """runbook.toml [http] sets them (shipped: 15 s, 4 MB); absent, the defaults hold; zero or
    a word is a config error naming the key."""
    text = (ROOT / "runbook.toml").read_text()
    http = load_runbook(ROOT / "runbook.toml").http
    assert (http.total_timeout_s, http.max_body_mb) == (15.0, 4.0)
    bare = tmp_path / "bare.toml"
    bare.write_text(re.sub(r"(?m)^(total_timeout_s|max_body_mb) = .*\n", "", text))
    assert (load_runbook(bare).http.total_timeout_s, load_runbook(bare).http.max_body_mb) == (
        HttpPolicy.total_timeout_s, HttpPolicy.max_body_mb)
    for old, new, says in (("total_timeout_s = 15.0", "total_timeout_s = 0", "http.total_timeout_s: must be greater than 0"),
                           ("max_body_mb = 4.0", 'max_body_mb = "4"', "http.max_body_mb: must be a number")):
        bad = tmp_path / "bad.toml"
        bad.write_text(text.replace(old, new))
        with pytest.raises(ConfigError, match=re.escape(says)):
            load_runbook(bad)
