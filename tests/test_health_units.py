"""Units and properties of the health-response validators and the [health] contract.

The validators stand between a deployment's arbitrary answer and the deploy verdict: for
any body at all they must return typed facts or a one-line ``BadAnswer`` — never another
exception — and the consistency rule must flag exactly the reports whose parts and top-level
word disagree.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures.clients import EndpointResponse
from fixtures.probes.health import (
    BadAnswer,
    EndpointMissing,
    HealthEndpoints,
    NoAnswer,
    Reported,
    alias_note,
    inconsistencies,
    json_object,
    odd_one_out,
    parse_circuits,
    parse_deep,
    parse_rate,
    parse_schema,
    schema_not_up_to_date,
)
from fixtures.stack.refapp.report import DbFacts, DeepFacts, GuardExpectation, build_deep_report
from plugins.contract.health import parse
from plugins.contract.runbook import load_runbook
from plugins.contract.toml_schema import ConfigError
from plugins.contract.verdict import Undecidable

ROOT = Path(__file__).resolve().parents[1]
RUNBOOK = load_runbook(ROOT / "runbook.toml")
HEALTH = RUNBOOK.section("health")
DEEP = RUNBOOK.deep
RECORDINGS = ROOT / "tests" / "recordings"


def resp(body: Any = None, *, status: int = 200, text: str | None = None, ctype: str = "application/json",
         path: str = "/health/deep", tried: tuple[tuple[str, int], ...] = (), location: str | None = None,
         name: str = "deep") -> EndpointResponse:
    return EndpointResponse(
        name=name, url=f"http://x{path}", path=path, status=status, content_type=ctype,
        text=json.dumps(body) if text is None else text, elapsed_ms=1.0,
        tried=tried or ((path, status),), location=location,
    )


def sample_deep(**overrides: Any) -> dict[str, Any]:
    """The runbook's "expected successful response structure", plus hard_guards."""
    body: dict[str, Any] = {
        "status": "healthy", "timestamp": "2026-02-09T12:34:56Z", "environment": "production",
        "project_ref": "jyqgbzhqavgpxqacduoi", "redis": {"status": "connected"},
        "supabase": {"status": "connected"}, "tables": {"status": "all_exist"},
        "views": {"status": "all_exist"}, "migrations": {"current_version": "X", "status": "up_to_date"},
        "hard_guards": {"status": "ok", "db_environment": "production", "db_project_ref": "jyqgbzhqavgpxqacduoi"},
    }
    body.update(overrides)
    return body


# --- [health] in runbook.toml ---------------------------------------------------------------


def test_contract_parses_the_shipped_runbook() -> None:
    assert HEALTH.unhealthy_http_status == (503,)
    assert HEALTH.circuit.protected == ("evolution", "chatwoot", "supabase", "slack", "anthropic")
    assert HEALTH.db_environment_path == "hard_guards.db_environment"


def _table() -> dict[str, Any]:
    import tomllib

    return tomllib.loads((ROOT / "runbook.toml").read_text(encoding="utf-8"))["health"]


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda t: t.update(typo=1), "health.typo: unknown key"),
    (lambda t: t.pop("ready_ok"), "health.ready_ok: missing required key"),
    (lambda t: t.update(ready_ok="connected"), "health.ready_ok: must be a list of strings"),
    (lambda t: t.update(unhealthy_http_status=[503, 999]), "health.unhealthy_http_status[1]: must be an HTTP status code"),
    (lambda t: t.update(unhealthy_http_status=[True]), "health.unhealthy_http_status[0]: must be an HTTP status code"),
    (lambda t: t.update(deploy_flag_paths=["deploy..safe"]), "health.deploy_flag_paths[0]: 'deploy..safe' is not a dotted JSON path"),
    (lambda t: t["circuit"].update(half_open=["open"]), "health.circuit.half_open: 'open' is also listed under health.circuit.open"),
    (lambda t: t["rate"].pop("limit_field"), "health.rate.limit_field: missing required key"),
    (lambda t: t["schema"].update(version_path=3), "health.schema.version_path: must be a non-empty string"),
    (lambda t: t.pop("circuit"), "health.circuit: missing required key"),
    (lambda t: t["schema"].update(status_ok=[]),
     "health.schema.status_ok: must not be empty when health.schema.status_path is set"),
    (lambda t: t.update(liveness_ok=[]),
     "health.liveness_ok: must not be empty when health.liveness_status_path is set"),
])
def test_contract_errors_name_the_key(mutate: Any, message: str) -> None:
    table = _table()
    mutate(table)
    with pytest.raises(ConfigError) as err:
        parse(Path("rb.toml"), table)
    assert str(err.value).startswith("rb.toml: ") and message in str(err.value)


def test_contract_optional_paths_may_be_empty() -> None:
    table = _table()
    table.update(db_environment_path="", deploy_flag_paths=[])
    table["schema"]["settings_version_path"] = ""
    contract = parse(Path("rb.toml"), table)
    assert contract.db_environment_path is None and contract.deploy_flag_paths == ()
    assert contract.schema.settings_version_path is None


def test_bad_health_section_exits_4(tmp_path: Path) -> None:
    runbook = tmp_path / "runbook.toml"
    runbook.write_text((ROOT / "runbook.toml").read_text().replace("ready_ok = [", "ready_okay = ["))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "checks", "-q", "-p", "no:cacheprovider", "--runbook", str(runbook),
         "--reports-dir", str(tmp_path / "reports")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert f"{runbook}: health.ready_okay: unknown key" in proc.stderr


# --- a body that is not the contract's JSON -------------------------------------------------


@pytest.mark.parametrize(("answer", "message"), [
    (resp(status=302, text="", location="https://sso/login"), "answered HTTP 302 redirect to 'https://sso/login'"),
    (resp(text="<!DOCTYPE html><html><body>502</body></html>", status=502, ctype="text/html"),
     "answered HTTP 502 with an HTML page (text/html)"),
    (resp(text="", status=200, ctype=""), "answered HTTP 200 with an empty body (no content-type)"),
    (resp(text="OK", ctype="text/plain"), "answered HTTP 200 with a non-JSON body (text/plain): 'OK'"),
    (resp(text="denied", status=401, ctype="text/plain"), "(access denied: a login or proxy in front of the app)"),
    (resp([1, 2]), "answered HTTP 200 with an array JSON, expected an object"),
    (resp(text="[" * 100_000), "answered HTTP 200 with JSON nested deeper than 64 levels"),
    (resp(text="[" * 65 + "]" * 65), "answered HTTP 200 with JSON nested deeper than 64 levels"),
])
def test_json_object_names_what_came_instead(answer: EndpointResponse, message: str) -> None:
    with pytest.raises(BadAnswer) as err:
        json_object(answer)
    assert message in err.value.message and "\n" not in err.value.message


# --- /health/deep ---------------------------------------------------------------------------


def test_parse_deep_reads_the_runbook_sample() -> None:
    report = parse_deep(resp(sample_deep()), DEEP, HEALTH)
    assert report.healthy(DEEP) and report.failing_parts(DEEP) == []
    assert report.environment == "production" and report.db_environment == Reported("production")
    assert inconsistencies(report, DEEP, HEALTH) == []


def test_parse_deep_accepts_a_bare_status_word_and_absent_parts() -> None:
    body = sample_deep(redis="connected")
    del body["hard_guards"]
    report = parse_deep(resp(body), DEEP, HEALTH)
    assert report.parts["redis"].ok(DEEP.part_ok)
    assert not report.parts["hard_guards"].present and report.db_environment is None


@pytest.mark.parametrize(("body", "message"), [
    ({k: v for k, v in sample_deep().items() if k != "status"}, "the answer has no 'status' field"),
    (sample_deep(status=None), "'status' is null"),
    (sample_deep(status=1), "'status' is a number (1), expected a string"),
    (sample_deep(redis=42), "part 'redis' is a number (42), expected an object"),
    (sample_deep(tables={"status": "missing", "missing": "interacoes"}),
     "'tables.missing' is a string ('interacoes'), expected a list of names"),
    (sample_deep(views={"status": True}), "'views.status' is a boolean (True), expected a string"),
    (sample_deep(deploy_safe="yes"), "'deploy_safe' is a string ('yes'), expected true or false"),
    (sample_deep(environment=["production"]), "'environment' is an array"),
    (sample_deep(hard_guards={"status": "ok", "db_environment": 7}), "'hard_guards.db_environment' is a number"),
])
def test_parse_deep_rejects_wrong_shapes(body: dict[str, Any], message: str) -> None:
    with pytest.raises(BadAnswer) as err:
        parse_deep(resp(body), DEEP, HEALTH)
    assert message in err.value.message


@pytest.mark.parametrize(("name", "found"), [
    ("deep_healthy_hides_error", ["top-level status 'healthy' while supabase 'error'"]),
    ("deep_critical_with_200", ["top-level status 'CRITICAL' (not healthy) with HTTP 200, expected 503"]),
    ("deep_deploy_safe_disagrees", ["deploy_safe is true while top-level status 'unhealthy'"]),
])
def test_recordings_are_inconsistent(name: str, found: list[str]) -> None:
    data = json.loads((RECORDINGS / f"{name}.json").read_text())
    report = parse_deep(resp(data["body"], status=data["http_status"]), DEEP, HEALTH)
    assert inconsistencies(report, DEEP, HEALTH) == found


@pytest.mark.parametrize(("body", "status", "found"), [
    (sample_deep(), 503, ["top-level status 'healthy' with HTTP 503 (healthy must be 200)"]),
    (sample_deep(status="unhealthy", redis={"status": "error"}), 500,
     ["top-level status 'unhealthy' (not healthy) with HTTP 500, expected 503"]),
    (sample_deep(tables={"status": "all_exist", "missing": ["clientes"]}), 200,
     ["top-level status 'healthy' while tables 'all_exist' (missing: clientes)",
      "tables says 'all_exist' but lists missing: clientes"]),
    (sample_deep(migrations={"status": "unknown"}), 200, ["top-level status 'healthy' while migrations 'unknown'"]),
    (sample_deep(deploy={"safe": False}), 200, ["deploy.safe is false while top-level status 'healthy'"]),
    (sample_deep(status="unhealthy", deploy_safe=False, views={"status": "missing", "missing": ["x"]}), 503, []),
])
def test_inconsistencies(body: dict[str, Any], status: int, found: list[str]) -> None:
    assert inconsistencies(parse_deep(resp(body, status=status), DEEP, HEALTH), DEEP, HEALTH) == found


EXPECT = GuardExpectation(app_env="local", project_ref="ref", environment_key="environment",
                          project_ref_key="supabase_project_ref", schema_version_key="schema_version",
                          expected_version="20260202")
_versions = st.sampled_from(["20260126", "20260202", "20260209", "", "X"])
_settings = st.fixed_dictionaries({}, optional={
    "environment": st.sampled_from(["local", "production"]),
    "supabase_project_ref": st.sampled_from(["ref", "other"]),
    "schema_version": _versions,
})
_names = st.lists(st.sampled_from(["clientes", "interacoes"]), unique=True).map(tuple)
_db_facts = st.builds(DbFacts, _names, _names, _settings, st.none() | _versions)


@settings(max_examples=200, deadline=None)
@given(st.none() | st.just("ConnectionError: down"), st.none() | st.just("OperationalError: down"), _db_facts)
def test_the_reference_app_never_contradicts_itself(redis_error: str | None, db_error: str | None,
                                                     db: DbFacts) -> None:
    """Whatever state the reference app sees, its deep report passes the consistency rule
    and is read back without error — the rule does not flag honest reports."""
    code, body = build_deep_report(DeepFacts(redis_error, db_error, None if db_error else db), EXPECT, "t")
    report = parse_deep(resp(body, status=code), DEEP, HEALTH)
    assert inconsistencies(report, DEEP, HEALTH) == []
    assert (code == 200) == report.healthy(DEEP)


_part_status = st.sampled_from(["connected", "ok", "all_exist", "up_to_date", "error", "CRITICAL",
                                "outdated", "mismatch", "missing", "unknown"])
_part = st.fixed_dictionaries({"status": _part_status}, optional={"missing": st.lists(st.sampled_from(["a", "b"]))})


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["healthy", "unhealthy", "CRITICAL"]), st.sampled_from([200, 500, 503]),
       st.dictionaries(st.sampled_from(list(DEEP.parts)), _part), st.none() | st.booleans())
def test_consistency_rule(top: str, code: int, parts: dict[str, dict[str, Any]], flag: bool | None) -> None:
    """healthy ⇔ every reported part ok, 200 ⇔ healthy, 503 otherwise, flag = healthy."""
    body: dict[str, Any] = {"status": top, **parts}
    if flag is not None:
        body["deploy_safe"] = flag
    report = parse_deep(resp(body, status=code), DEEP, HEALTH)
    healthy = top == "healthy"
    ok = [p.get("status") in DEEP.part_ok and not p.get("missing") for p in parts.values()]
    says_ok_but_missing = any(p.get("status") in DEEP.part_ok and p.get("missing") for p in parts.values())
    consistent = (
        (not healthy or (all(ok) and code == 200))
        and (healthy or code == 503)
        and (flag is None or flag == healthy)
        and not says_ok_but_missing
    )
    assert (inconsistencies(report, DEEP, HEALTH) == []) == consistent


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=20,
)
_keys = st.sampled_from(["status", "redis", "tables", "missing", "namespaces", "integrations", "used", "limit",
                         "state", "current_version", "schema_version", "evolution", "mensagens_hora",
                         "deploy_safe", "hard_guards", "db_environment", "environment"])
_shaped = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 30) | st.sampled_from(["healthy", "ok", "closed", "open", "x"]),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(_keys, kids, max_size=5),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(_json, _shaped), st.sampled_from([200, 302, 500, 503]))
def test_any_body_gives_facts_or_one_bad_answer_line(body: Any, status: int) -> None:
    answer = resp(body, status=status, location="/login")
    for parser in (
        lambda r: parse_deep(r, DEEP, HEALTH),
        lambda r: parse_rate(r, HEALTH.rate),
        lambda r: parse_circuits(r, HEALTH.circuit),
        lambda r: parse_schema(r, HEALTH.schema),
    ):
        try:
            parser(answer)
        except BadAnswer as exc:
            assert exc.message and "\n" not in exc.message


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.sampled_from(["text/html", "text/plain", "application/json", ""]))
def test_any_text_gives_an_object_or_one_bad_answer_line(text: str, ctype: str) -> None:
    try:
        assert isinstance(json_object(resp(text=text, ctype=ctype)), dict)
    except BadAnswer as exc:
        assert exc.message.startswith("GET /health/deep answered HTTP 200 with ")


# --- /health/rate, /health/circuit, /health/schema ------------------------------------------


def test_parse_rate_and_ratio() -> None:
    usages = parse_rate(resp({"namespaces": {"mensagens_hora": {"used": 19, "limit": 20},
                                             "mensagens_dia": {"used": 2.5, "limit": 100}}}), HEALTH.rate)
    assert [(u.namespace, u.ratio) for u in usages] == [("mensagens_hora", 0.95), ("mensagens_dia", 0.025)]
    assert usages[0].describe() == "mensagens_hora 19/20 (95%)"


@pytest.mark.parametrize(("body", "message"), [
    ({}, "the answer has no 'namespaces' field"),
    ({"namespaces": []}, "'namespaces' is an array, expected an object"),
    ({"namespaces": {"a": 3}}, "'namespaces.a' is a number, expected an object"),
    ({"namespaces": {"a": {"used": 1}}}, "'namespaces.a' has no 'limit' field"),
    ({"namespaces": {"a": {"used": True, "limit": 2}}}, "'namespaces.a.used' is a boolean (True)"),
    ({"namespaces": {"a": {"used": -1, "limit": 2}}}, "'namespaces.a.used' is a number (-1), expected a non-negative"),
    ({"namespaces": {"a": {"used": 0, "limit": 0}}}, "'namespaces.a.limit' is 0"),
])
def test_parse_rate_rejects(body: dict[str, Any], message: str) -> None:
    with pytest.raises(BadAnswer) as err:
        parse_rate(resp(body, path="/health/rate"), HEALTH.rate)
    assert message in err.value.message


def test_parse_circuits_object_or_word() -> None:
    states = parse_circuits(resp({"integrations": {"evolution": {"state": "open"}, "slack": "half_open"}}),
                            HEALTH.circuit)
    assert states == {"evolution": "open", "slack": "half_open"}
    with pytest.raises(BadAnswer, match="'integrations.slack' has no 'state' field"):
        parse_circuits(resp({"integrations": {"slack": {"status": "closed"}}}), HEALTH.circuit)
    with pytest.raises(BadAnswer, match=r"'integrations.slack' state is null \(None\), expected a word"):
        parse_circuits(resp({"integrations": {"slack": None}}), HEALTH.circuit)


def test_parse_schema() -> None:
    answer = parse_schema(resp({"current_version": 20260202, "schema_version": None, "status": "up_to_date"}),
                          HEALTH.schema)
    assert answer.version == "20260202" and answer.settings_version == Reported(None)
    assert answer.status == "up_to_date" and schema_not_up_to_date(answer, HEALTH.schema) == []
    assert parse_schema(resp({"current_version": "20260202", "status": "up_to_date"}),
                        HEALTH.schema).settings_version is None
    with pytest.raises(BadAnswer, match="'current_version' is a boolean"):
        parse_schema(resp({"current_version": True, "status": "up_to_date"}), HEALTH.schema)
    with pytest.raises(BadAnswer, match="the answer has no 'status' field"):
        parse_schema(resp({"current_version": "20260202"}), HEALTH.schema)


def test_schema_word_is_judged() -> None:
    """/health/schema's own word (the runbook's up_to_date) is read, not only its versions: an
    answer saying 'outdated' says so, quoted; a 200 carrying only a failing word and its error
    is the app's own failure."""
    from fixtures.probes.health import AppError

    outdated = parse_schema(resp({"current_version": "20260126", "status": "outdated"}, path="/health/schema"),
                            HEALTH.schema)
    assert schema_not_up_to_date(outdated, HEALTH.schema) == ["its 'status' is 'outdated', not up_to_date"]
    with pytest.raises(AppError, match=r"^GET /health/schema answered HTTP 200 with status 'error' and no "
                                       r"'current_version': 'OperationalError: down'$"):
        parse_schema(resp({"status": "error", "error": "OperationalError: down"}, path="/health/schema"),
                     HEALTH.schema)


# --- the guards, the aliases, one answer per endpoint ---------------------------------------


@pytest.mark.parametrize(("db", "app", "verdict"), [
    ("production", "local", "app_settings is the odd one out"),
    ("local", "production", "the container's variable is the odd one out"),
    ("production", "production", "the target profile is the odd one out"),
    ("staging", "production", "all three differ"),
    (None, "local", "app_settings is the odd one out"),
    ("production", None, "the app's own value is unknown"),
])
def test_odd_one_out(db: str | None, app: str | None, verdict: str) -> None:
    assert verdict in odd_one_out("local", db, app)


def test_alias_note() -> None:
    assert alias_note(resp({}, path="/health/rate", name="rate")) is None
    note = alias_note(resp({}, path="/health/rate-limit", name="rate",
                           tried=(("/health/rate", 404), ("/health/rate-limit", 200))))
    assert note == "rate: answered by alias /health/rate-limit (runbook path /health/rate → 404)"


class FakeApi:
    """Stands in for the HTTP client: canned answers by endpoint name, counting calls."""

    def __init__(self, answers: dict[str, EndpointResponse | Undecidable]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    def endpoint(self, name: str) -> EndpointResponse:
        self.calls.append(name)
        got = self.answers[name]
        if isinstance(got, Undecidable):
            raise got
        return got


def test_each_endpoint_is_fetched_once_and_failures_are_remembered() -> None:
    api = FakeApi({
        "health": Undecidable("GET http://x/health: no answer within the read timeout"),
        "circuit": resp({}, status=404, path="/health/circuits", name="circuit",
                        tried=(("/health/circuit", 404), ("/health/circuits", 404))),
        "deep": resp(sample_deep(), status=200),
    })
    health = HealthEndpoints(api, RUNBOOK)  # type: ignore[arg-type]
    for _ in range(3):
        with pytest.raises(NoAnswer, match="read timeout"):
            health.answer("health")
        with pytest.raises(EndpointMissing, match=r"endpoint circuit missing: every path answered 404 "
                                                  r"\(/health/circuit, /health/circuits\)"):
            health.answer("circuit")
        assert health.trusted_deep().healthy(DEEP)
    assert sorted(api.calls) == ["circuit", "deep", "health"]


def test_trusted_deep_refuses_a_report_that_lies() -> None:
    data = json.loads((RECORDINGS / "deep_healthy_hides_error.json").read_text())
    health = HealthEndpoints(FakeApi({"deep": resp(data["body"])}), RUNBOOK)  # type: ignore[arg-type]
    assert health.deep().status == "healthy"
    with pytest.raises(Undecidable, match=r"contradicts itself .*\(see JC-DEEP-08\)"):
        health.trusted_deep()
    bad = HealthEndpoints(FakeApi({"deep": resp(text="<html>", ctype="text/html")}), RUNBOOK)  # type: ignore[arg-type]
    with pytest.raises(BadAnswer, match="^cannot decide: GET /health/deep answered HTTP 200 with an HTML page"):
        bad.trusted_deep()


# --- the reference app's migrations part ----------------------------------------------------


@pytest.mark.parametrize(("newest", "status"), [
    (None, "up_to_date"), ("20260202", "up_to_date"), ("20260126", "outdated"), ("", "outdated"),
])
def test_refapp_deep_migrations_also_reads_the_log(newest: str | None, status: str) -> None:
    settings_ = {"environment": "local", "supabase_project_ref": "ref", "schema_version": "20260202"}
    code, body = build_deep_report(DeepFacts(None, None, DbFacts((), (), settings_, newest)), EXPECT, "t")
    assert body["migrations"]["status"] == status and (code == 200) == (status == "up_to_date")
    assert ("applied_version" in body["migrations"]) == (newest is not None)


# --- the deployment's health facts (issue 15), read through the deployment dialect ----------

DEPLOYED = load_runbook(ROOT / "runbook.toml", "deployment")
DEPLOYED_HEALTH = DEPLOYED.section("health")


def deployed_deep(**checks: Any) -> dict[str, Any]:
    """A /health/deep body in whats-agents' shape (app/services/health/deep.py)."""
    ok = {"status": "ok"}
    body: dict[str, Any] = {"status": "healthy", "deploy_safe": True, "checks": {
        "environment": {"status": "ok", "app_env": "production", "db_env": "production"},
        "project_ref": {"status": "ok", "app_ref": "ref", "db_ref": "ref"},
        "localhost_check": ok, "dev_guardrails": {"status": "skipped"}, "redis": ok, "supabase": ok,
        "tables": {"status": "ok", "missing": []}, "views": {"status": "ok", "missing": []},
        "schema_version": {"status": "ok", "current": "2", "expected": "1"}, "prompts": ok}}
    body["checks"].update(checks)
    return body


def test_deployed_report_reads_every_part_by_its_path() -> None:
    body = deployed_deep(prompts={"status": "error", "missing": ["julia_tools"], "too_short": [
        {"nome": "julia_base", "len": 3, "min": 2000}], "inactive": []})
    body.update(status="unhealthy", deploy_safe=False)
    report = parse_deep(resp(body, status=503), DEPLOYED.deep, DEPLOYED_HEALTH)
    assert [p.path for p in report.others(DEPLOYED.deep)] == [
        "checks.localhost_check", "checks.dev_guardrails", "checks.prompts"]
    [failing] = report.failing_pieces(DEPLOYED.deep, DEPLOYED_HEALTH.part_unknown)
    assert failing.explain() == ("checks.prompts 'error' (missing: julia_tools) (too_short: [{\"nome\": "
                                 "\"julia_base\", \"len\": 3, \"min\": 2000}])")
    assert inconsistencies(report, DEPLOYED.deep, DEPLOYED_HEALTH) == []
    env = parse_deep(resp(deployed_deep(environment={"status": "CRITICAL", "message": "wrong env"})),
                     DEPLOYED.deep, DEPLOYED_HEALTH).pieces[-5]
    assert env.explain("Case 3") == "checks.environment 'CRITICAL' (Case 3): 'wrong env'"


@pytest.mark.parametrize(("checks", "found"), [
    # the app's designed skips sit in a healthy report; "pending" and an extra part's error do not
    ({"project_ref": {"status": "skipped", "app_ref": "", "db_ref": None}}, []),
    ({"redis": {"status": "pending"}}, ["top-level status 'healthy' while redis 'pending'"]),
    ({"prompts": {"status": "error"}}, ["top-level status 'healthy' while prompts 'error'"]),
    ({"schema_version": {"status": "warning", "current": "1", "expected": "2"}}, []),
    ({"schema_version": {"status": "error", "current": None}},
     ["top-level status 'healthy' while migrations 'error'"]),
])
def test_deployed_consistency(checks: dict[str, Any], found: list[str]) -> None:
    report = parse_deep(resp(deployed_deep(**checks)), DEPLOYED.deep, DEPLOYED_HEALTH)
    assert inconsistencies(report, DEPLOYED.deep, DEPLOYED_HEALTH) == found


def test_deployed_readiness_dependencies() -> None:
    from fixtures.probes.health import failing_dependencies

    body = {"status": "not_ready", "checks": {"redis": "error", "database": "error",
                                               "database_error": "connection refused", "evolution": "unknown"}}
    assert failing_dependencies(body, DEPLOYED_HEALTH) == [
        "checks.redis is 'error'", "checks.database is 'error' (connection refused)"]
    runbook_style = parse(Path("x"), {**_health_table(), "ready_dependencies": ["redis.status"]})
    assert failing_dependencies({"redis": {"status": "error", "error": "refused"}}, runbook_style) == [
        "redis.status is 'error' (refused)"]


def _health_table() -> dict[str, Any]:
    import tomllib

    return tomllib.loads((ROOT / "runbook.toml").read_text())["health"]


def test_broken_guards_name_both_sides() -> None:
    """The one-line summary of a broken hard guard: which guard, the app's value and the
    app_settings value it read — in either dialect's shape; an unset variable is not named."""
    from fixtures.probes.health import broken_guards

    runbook_shape = sample_deep(status="CRITICAL", environment="local", hard_guards={
        "status": "mismatch", "db_environment": "staging", "db_project_ref": "jyqgbzhqavgpxqacduoi"})
    assert broken_guards(parse_deep(resp(runbook_shape, status=503), DEEP, HEALTH), RUNBOOK) == [
        "environment: APP_ENV 'local' vs app_settings 'staging'"]
    deployed = deployed_deep(environment={"status": "CRITICAL", "app_env": "staging", "db_env": "production"},
                             project_ref={"status": "skipped", "app_ref": "", "db_ref": None})
    deployed.update(status="CRITICAL", deploy_safe=False)
    report = parse_deep(resp(deployed, status=503), DEPLOYED.deep, DEPLOYED_HEALTH)
    assert broken_guards(report, DEPLOYED) == ["environment: APP_ENV 'staging' vs app_settings 'production'"]


def test_deployed_schema_flag_is_judged() -> None:
    """The deployment's /health/schema has no word: its verdict is schema_up_to_date."""
    behind = {"current_version": "20260120", "expected_version": "20260209", "schema_up_to_date": False}
    answer = parse_schema(resp(behind, path="/health/schema"), DEPLOYED_HEALTH.schema)
    assert answer.status is None
    assert schema_not_up_to_date(answer, DEPLOYED_HEALTH.schema) == ["its 'schema_up_to_date' is false"]


def test_deployed_schema_answer() -> None:
    from fixtures.probes.health import AppError

    good = {"current_version": "20260120", "expected_version": "20251231211500", "schema_up_to_date": True,
            "applied_at": None, "fingerprint": "x", "critical_tables": [], "critical_views": [], "timestamp": "t"}
    answer = parse_schema(resp(good, path="/health/schema"), DEPLOYED_HEALTH.schema)
    assert (answer.version, answer.expected, answer.up_to_date, answer.settings_version) == (
        "20260120", "20251231211500", True, None)
    with pytest.raises(AppError, match=r"^GET /health/schema answered HTTP 200 with the app's own error in "
                                       r"'error': 'boom'$"):
        parse_schema(resp({"error": "boom", "timestamp": "t"}, path="/health/schema"), DEPLOYED_HEALTH.schema)
    with pytest.raises(BadAnswer, match="'schema_up_to_date' is a string"):
        parse_schema(resp({**good, "schema_up_to_date": "yes"}, path="/health/schema"), DEPLOYED_HEALTH.schema)


def test_deployed_rate_without_counters() -> None:
    from fixtures.probes.health import NoCounters

    with pytest.raises(NoCounters, match=r"^GET /health/rate-limit 'rate_limit' is \{\}$"):
        parse_rate(resp({"rate_limit": {}, "timestamp": "t"}, path="/health/rate-limit"), DEPLOYED_HEALTH.rate)
