"""Units and properties of the dialect layer: the contract's new general mechanisms (a deep
part over several paths, rate counters listed rather than mapped, the migration log kept in
app_settings, warning words) and the drift recognizers (another dialect reads what the one
in force cannot: drift; nobody reads it: the fault stays a fault)."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures import probes
from fixtures.clients import EndpointResponse
from fixtures.migrations import Migration
from fixtures.probes.drift import (
    alias_finding,
    deep_word_findings,
    read_deep,
    read_rate,
    recognize_endpoint,
    relation_drift,
)
from fixtures.probes.health import BadAnswer, HealthEndpoints, parse_deep, parse_rate
from fixtures.probes.schema import compare_migrations
from plugins.contract.dialects import known_dialects, leaf_diff, raw_contract
from plugins.contract.drift import Dialects, DriftFinding
from plugins.contract.runbook import load_runbook
from plugins.contract.toml_schema import ConfigError

ROOT = Path(__file__).resolve().parents[1]
RUNBOOK = load_runbook(ROOT / "runbook.toml")
DEPLOYMENT = load_runbook(ROOT / "runbook.toml", "deployment")


def resp(body: Any, *, path: str = "/health/deep", status: int = 200, name: str = "") -> EndpointResponse:
    return EndpointResponse(name=name, url=f"http://x{path}", path=path, status=status,
                            content_type="application/json", text=json.dumps(body), elapsed_ms=1.0,
                            tried=((path, status),))


@pytest.fixture
def contract(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "runbook.toml", tmp_path / "runbook.toml")
    (tmp_path / "dialects").mkdir()
    return tmp_path / "runbook.toml"


def _dialect(contract: Path, text: str) -> None:
    (contract.parent / "dialects" / "d.toml").write_text(text)


# --- the contract's new mechanisms ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('[deep.parts]\nhard_guards = []\n', "deep.parts.hard_guards: must not be empty"),
        ('[deep.parts]\nhard_guards = ["a", 3]\n', r"deep.parts.hard_guards\[1\]: must be a non-empty string"),
        ('[deep.parts]\nhard_guards = 3\n', "deep.parts.hard_guards: must be a JSON path string or a list"),
        ('[database]\nmigrations_source = "wiki"\n', "database.migrations_source: must be one of table, settings"),
        ('[deep]\npart_warning = ["ok"]\n', "deep.part_warning: 'ok' is also listed under deep.part_ok"),
        ('[health.rate]\nnamespaces = [{ name = "h", used_path = "a" }]\n',
         r"health.rate.namespaces\[0\].limit_path: missing required key"),
        ('[health.rate]\nnamespaces = [{ name = "h", used_path = "a", limit_path = "b", max = 1 }]\n',
         r"health.rate.namespaces\[0\].max: unknown key"),
        ('[health.rate]\nnamespaces = [{ name = "h", used_path = "a", limit_path = "b" },'
         ' { name = "h", used_path = "c", limit_path = "d" }]\n', r"health.rate.namespaces\[1\].name: 'h' is listed twice"),
        ('[health.rate]\nnamespaces = "h"\n', "health.rate.namespaces: must be a list of tables"),
        ('[health.rate]\nnamespaces = [{ name = "h", used_path = "a..b", limit_path = "b" }]\n',
         r"health.rate.namespaces\[0\].used_path: 'a..b' is not a dotted JSON path"),
        # the keys issue 15 added for the deployment's health facts
        ('[deep]\nother_parts = ["checks..x"]\n', r"deep.other_parts\[0\]: 'checks..x' is not a dotted JSON path"),
        ('[deep]\nother_parts = ["redis"]\n', r"deep.other_parts\[0\]: 'redis' is already a part of deep.parts"),
        ('[deep]\nother_parts = "checks.prompts"\n', r"deep.other_parts: must be a list"),
        ('[deep]\nmigrations_behind = ["ok"]\n', r"deep.migrations_behind: 'ok' is also listed under deep.part_ok"),
        ('[health]\nready_status_ok = []\n',
         r"health.ready_status_ok: must not be empty when health.ready_status_path is set"),
        ('[health]\nready_dependencies = ["a..b"]\n', r"health.ready_dependencies\[0\]: 'a..b' is not a dotted"),
        ('[health]\npart_skipped = ["pending"]\n',
         r"health.part_skipped: 'pending' is not listed under health.part_unknown"),
        ('[health.circuit]\nper_process = "yes"\n', r"health.circuit.per_process: must be true or false"),
        ('[health.schema]\nerror_path = 3\n', r"health.schema.error_path: must be a non-empty string"),
        ('[report.identity]\nunset = "unknown"\n', r"report.identity.unset: must be a list of words"),
        ('[report.identity]\nunset = [""]\n', r"report.identity.unset\[0\]: must be a non-empty string"),
    ],
)
def test_bad_dialect_values_name_file_and_key(contract: Path, text: str, error: str) -> None:
    _dialect(contract, text)
    with pytest.raises(ConfigError, match=r"runbook.toml \+ d.toml: " + error):
        load_runbook(contract, "d")


def test_runbook_defaults_are_the_runbooks_words() -> None:
    assert RUNBOOK.migrations_source == "table" and RUNBOOK.migration_log == "public._migrations"
    assert RUNBOOK.schema_applied_at_key == "" and RUNBOOK.deep.part_warning == ()
    assert RUNBOOK.deep.parts["hard_guards"] == ("hard_guards",)
    assert RUNBOOK.section("health").rate.namespaces == ()
    assert RUNBOOK.drift == ()


def test_deployment_health_facts() -> None:
    """The deployment dialect's health keys, as whats-agents' code spells them (the dialect
    file cites each source): the same /health/schema route, the guard fields, the readiness
    word, the extra deep parts, the non-failing 'behind' word, the identity in /health/deep."""
    health = DEPLOYMENT.section("health")
    assert DEPLOYMENT.endpoints["schema"] == ("/health/schema",)
    assert (DEPLOYMENT.deep.environment_path, DEPLOYMENT.deep.project_ref_path) == (
        "checks.environment.app_env", "checks.project_ref.app_ref")
    assert (health.db_environment_path, health.db_project_ref_path) == ("checks.environment.db_env",
                                                                        "checks.project_ref.db_ref")
    assert (health.ready_status_path, health.ready_status_ok) == ("status", ("ready",))
    assert health.part_skipped == ("skipped",) and health.circuit.per_process
    assert DEPLOYMENT.deep.other_parts == ("checks.localhost_check", "checks.dev_guardrails", "checks.prompts")
    assert DEPLOYMENT.deep.migrations_behind == ("warning",)
    assert (health.schema.expected_path, health.schema.up_to_date_path, health.schema.error_path) == (
        "expected_version", "schema_up_to_date", "error")
    identity = DEPLOYMENT.section("report").identity
    assert identity["git_sha"].endpoint == "deep" and identity["git_sha"].paths == ("version.git_sha",)
    assert DEPLOYMENT.section("report").identity_unset == ("unknown",)
    runbook_health = RUNBOOK.section("health")
    assert (runbook_health.ready_status_path, runbook_health.ready_status_ok) == ("status", ("ready",))
    assert (runbook_health.schema.status_path, health.schema.status_path) == ("status", None)
    assert RUNBOOK.deep.other_parts == ()
    assert runbook_health.schema.error_path is None and not runbook_health.circuit.per_process


def test_deployment_dialect_is_valid_and_all_declared() -> None:
    assert DEPLOYMENT.migration_log == "app_settings.schema_version"
    assert DEPLOYMENT.deep.parts["hard_guards"] == ("checks.environment", "checks.project_ref")
    keys = {d.key for d in DEPLOYMENT.drift}
    assert {"endpoints.rate", "endpoints.circuit", "database.migrations_source", "deep.parts.hard_guards",
            "health.rate.namespaces", "database.critical_views"} <= keys
    assert known_dialects(RUNBOOK.path) == ["runbook", "deployment"]


DEPLOYED_RATE = {"rate_limit": {"msgs_hora": 17, "limite_hora": 20, "msgs_dia": 40, "limite_dia": 100,
                                "pode_enviar": True}}


def test_rate_counters_listed() -> None:
    usages = parse_rate(resp(DEPLOYED_RATE, path="/health/rate-limit"), DEPLOYMENT.section("health").rate)
    assert [u.describe() for u in usages] == ["msgs_hora 17/20 (85%)", "msgs_dia 40/100 (40%)"]
    broken = {"rate_limit": {**DEPLOYED_RATE["rate_limit"], "limite_dia": 0}}
    with pytest.raises(BadAnswer, match=r"'rate_limit.limite_dia' is 0"):
        parse_rate(resp(broken, path="/health/rate-limit"), DEPLOYMENT.section("health").rate)
    missing = {"rate_limit": {"msgs_hora": 1}}
    with pytest.raises(BadAnswer, match=r"'rate_limit' has no 'limite_hora' field"):
        parse_rate(resp(missing, path="/health/rate-limit"), DEPLOYMENT.section("health").rate)


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(
                        st.sampled_from(["rate_limit", "msgs_hora", "limite_hora", "msgs_dia", "limite_dia"]),
                        kids, max_size=5), max_leaves=12))
def test_listed_rate_parser_only_rejects_with_bad_answer(body: Any) -> None:
    try:
        usages = parse_rate(resp(body, path="/health/rate-limit"), DEPLOYMENT.section("health").rate)
    except BadAnswer as exc:
        assert "\n" not in exc.message
    else:
        assert all(u.limit > 0 and u.used >= 0 for u in usages)


WORDS = ["ok", "warning", "error", "CRITICAL", "skipped", "pending", None]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(WORDS), st.sampled_from(WORDS))
def test_split_part_holds_only_when_every_piece_holds(env: str | None, ref: str | None) -> None:
    """A part over several paths: absent if any piece is; failing if any piece fails;
    a warning only if no piece fails."""
    checks: dict[str, Any] = {}
    if env is not None:
        checks["environment"] = {"status": env}
    if ref is not None:
        checks["project_ref"] = {"status": ref}
    body = {"status": "healthy", "checks": checks}
    part = parse_deep(resp(body), DEPLOYMENT.deep, DEPLOYMENT.section("health")).parts["hard_guards"]
    assert part.present == (env is not None and ref is not None)
    if part.present:
        fine = set(DEPLOYMENT.deep.part_fine)
        assert part.ok(DEPLOYMENT.deep.part_fine) == ({env, ref} <= fine)
        assert part.ok(DEPLOYMENT.deep.part_ok) == ({env, ref} == {"ok"})
        assert part.path == "checks.environment + checks.project_ref"


def test_warning_part_is_not_failing() -> None:
    body = {"status": "healthy", "deploy_safe": True, "checks": {
        name: {"status": "ok"} for name in ("redis", "supabase", "tables", "views", "environment", "project_ref")}}
    body["checks"]["schema_version"] = {"status": "warning", "current": "20990101"}
    report = parse_deep(resp(body), DEPLOYMENT.deep, DEPLOYMENT.section("health"))
    assert report.failing_parts(DEPLOYMENT.deep) == []
    assert report.parts["migrations"].status == "warning"


def _mig(version: str) -> Migration:
    return Migration(version, "x", Path(f"{version}_x.sql"))


def test_a_hand_kept_version_applies_every_file_up_to_it() -> None:
    files = (_mig("20260105"), _mig("20260112"), _mig("20260120"))
    row = probes.MigrationRow("20260112", "app_settings.schema_version (kept by hand)", None, cumulative=True)
    cmp = compare_migrations(files, [row])
    assert [m.version for m in cmp.unapplied] == ["20260120"] and not cmp.drift and not cmp.ahead
    ahead = probes.MigrationRow("20260301", "x", None, cumulative=True)
    assert compare_migrations(files, [ahead]).ahead == (ahead,) and not compare_migrations(files, [ahead]).unapplied
    gone = probes.MigrationRow("20260110", "x", None, cumulative=True)  # no such file, older files exist
    assert compare_migrations(files, [gone]).drift == (gone,)
    # a log row (not cumulative) applies only itself
    assert len(compare_migrations(files, [probes.MigrationRow("20260112", "x", None)]).unapplied) == 2


# --- drift: raw contracts and recognition -----------------------------------------------------


def test_leaf_diff_and_findings_quote_the_runbook_against_the_deployment() -> None:
    assert leaf_diff({"a": 1, "b": {"c": [1]}}, {"a": 1, "b": {"c": [2]}, "d": 3}, "x") == [
        ("x.b.c", [1], [2]), ("x.d", None, 3)]
    d = Dialects.load(RUNBOOK)
    [other] = d.others
    found = d.findings(other, ("health.circuit",), "GET /health/circuits")
    assert DriftFinding("health.circuit.state_field", "state", "estado", "GET /health/circuits") in found
    # in the deployment dialect, a deployment answering in the runbook's words: the dialect is stale
    back = Dialects.load(DEPLOYMENT)
    [runbook] = back.others
    [stale] = back.findings(runbook, ("health.circuit.state_field",), "GET /health/circuit")
    assert (stale.runbook, stale.deployment) == ("state", "state") and "the dialect is stale" in stale.note
    assert raw_contract(RUNBOOK.path, "deployment")["endpoints"]["rate"] == ["/health/rate-limit"]


class _Api:
    """A stand-in API: path -> (status, body)."""

    def __init__(self, routes: dict[str, tuple[int, Any]]) -> None:
        self.routes = routes
        self.asked: list[str] = []

    def get(self, path: str) -> EndpointResponse:
        self.asked.append(path)
        status, body = self.routes.get(path, (404, {"detail": "Not Found"}))
        return resp(body, path=path, status=status)


def test_a_body_another_dialect_reads_is_drift() -> None:
    api = _Api({"/health/rate-limit": (200, DEPLOYED_RATE)})
    health = HealthEndpoints(api, RUNBOOK)  # type: ignore[arg-type]
    found = recognize_endpoint(Dialects.load(RUNBOOK), health, "rate", read_rate, ("health.rate",))
    assert found is not None and found.dialect.name == "deployment" and found.path == "/health/rate-limit"
    keys = {(f.key, str(f.runbook), str(f.deployment)) for f in found.findings}
    assert ("health.rate.namespaces_path", "namespaces", "rate_limit") in keys
    assert ("endpoints.rate", "/health/rate", "/health/rate-limit") not in keys  # an alias the runbook knows
    message = found.undecidable("GET /health/rate-limit: the answer has no 'namespaces' field").message
    assert message.startswith("drift, not an outage: GET /health/rate-limit: the answer has no 'namespaces' field")
    assert '`dialect = "deployment"`' in message


def test_a_body_no_dialect_reads_stays_a_fault() -> None:
    api = _Api({"/health/rate-limit": (200, {"status": "ok"})})
    health = HealthEndpoints(api, RUNBOOK)  # type: ignore[arg-type]
    assert recognize_endpoint(Dialects.load(RUNBOOK), health, "rate", read_rate, ("health.rate",)) is None
    assert api.asked == ["/health/rate-limit"]  # one GET per route of the other dialect, remembered


def test_a_route_only_another_dialect_names_is_route_drift(contract: Path) -> None:
    """A dialect reading the schema version from the deep report (no shipped dialect does: the
    deployment serves /health/schema, whats-agents app/api/routes/health.py)."""
    _dialect(contract, '[endpoints]\nschema = ["/health/deep"]\n[health.schema]\n'
                       'version_path = "checks.schema_version.current"\nsettings_version_path = ""\n')
    runbook = load_runbook(contract)
    body = {"status": "healthy", "checks": {"schema_version": {"status": "ok", "current": "1"}}}
    health = HealthEndpoints(_Api({"/health/deep": (200, body)}), runbook)  # type: ignore[arg-type]
    from fixtures.probes.drift import read_schema

    found = recognize_endpoint(Dialects.load(runbook), health, "schema", read_schema, ("health.schema",))
    assert found is not None
    assert found.findings[0] == DriftFinding("endpoints.schema", "/health/schema", "/health/deep",
                                             "GET /health/deep answers; the runbook's route does not")


def test_alias_answer_is_route_drift() -> None:
    answered = EndpointResponse(name="circuit", url="http://x/health/circuits", path="/health/circuits", status=200,
                                content_type="application/json", text="{}", elapsed_ms=1.0,
                                tried=(("/health/circuit", 404), ("/health/circuits", 200)))
    found = alias_finding(Dialects.load(RUNBOOK), answered)
    assert found == DriftFinding("endpoints.circuit", "/health/circuit", "/health/circuits",
                                 "GET /health/circuits answers on an alias (/health/circuit → 404)")
    assert alias_finding(Dialects.load(RUNBOOK), resp({}, path="/health/circuit", name="circuit")) is None


def test_views_kept_as_tables_are_drift_only_where_another_dialect_lists_them() -> None:
    d = Dialects.load(RUNBOOK)
    found = {"metricas_conversa": probes.Relation("metricas_conversa", "table"),
             "avaliacoes_qualidade": probes.Relation("avaliacoes_qualidade", "view")}
    rec = relation_drift(d, found, "view")
    assert rec is not None and rec.value == {"metricas_conversa"}
    assert (rec.findings[0].runbook, rec.findings[0].deployment) == ("metricas_conversa (view)",
                                                                     "metricas_conversa (table)")
    assert relation_drift(d, {"x": probes.Relation("x", "table")}, "view") is None
    assert relation_drift(d, {"metricas_conversa": probes.Relation("metricas_conversa", "missing")}, "view") is None


def test_a_word_only_another_dialect_knows_is_word_drift() -> None:
    d = Dialects.load(RUNBOOK)
    body = {"status": "healthy", "checks": {"schema_version": {"status": "warning"}, "redis": {"status": "ok"}}}
    report = read_deep(resp(body), DEPLOYMENT)
    [word] = deep_word_findings(d, d.others[0], report, "GET /health/deep")
    assert (word.key, word.runbook, word.deployment) == ("deep.part_warning", [], ["warning"])
    assert re.search(r"checks.schema_version is 'warning'", word.observed)


# --- the runtime contract's dialect mechanisms ------------------------------------------------


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('[runtime.queue]\nprocessed = ""\n', r"runtime.queue.status: give exactly one of runtime.queue.processed"),
        ('[runtime.queue]\nstatus = "status"\n', r"runtime.queue.status: give exactly one of"),
        ('[runtime.queue]\nprocessed = ""\nstatus = "status"\nsent = ["enviada"]\n',
         r"runtime.queue.pending: must not be empty"),
        ('[runtime.queue]\nprocessed = ""\nstatus = "status"\npending = ["x"]\nsent = ["x"]\n',
         r"runtime.queue.sent: 'x' is also listed under runtime.queue.pending"),
        ('[runtime.queue]\npending = ["x"]\n', r"runtime.queue.pending: status words need runtime.queue.status"),
        ('[runtime.executions]\njob = ""\n', r"runtime.executions.job: must not be empty"),
        ('[runtime.pause]\nheartbeat_via = [""]\n', r"runtime.pause.heartbeat_via\[0\]: must be a non-empty string"),
    ],
)
def test_bad_runtime_respellings(contract: Path, text: str, error: str) -> None:
    _dialect(contract, text)
    with pytest.raises(ConfigError, match=error):
        load_runbook(contract, "d")


def test_runtime_contract_in_both_dialects() -> None:
    from fixtures.probes.runtime import not_heartbeat, queue_predicates
    from plugins.contract.runtime import load

    ours, theirs = load(dialect=""), load(dialect="deployment")
    assert (ours.queue.processed, ours.queue.status, ours.pause.heartbeat_via) == ("processada", "", ())
    assert (theirs.queue.status, theirs.queue.sent, theirs.queue.updated_at) == ("status", ("enviada",), "enviada_em")
    assert theirs.executions.instance == "" and theirs.jobs[0].timezone == "America/Sao_Paulo"
    waiting, done, params = queue_predicates(ours)
    assert (waiting.as_string(None), done.as_string(None), params) == (
        '"f"."processada" = false', '"f"."processada" = true', {})
    waiting, done, params = queue_predicates(theirs)
    assert done.as_string(None) == '"f"."status" = ANY (%(q_sent)s)' and params["q_sent"] == ["enviada"]
    assert not_heartbeat(ours)[0].as_string(None) == "true"
    assert not_heartbeat(theirs)[1] == {"hb_via": ["sistema"], "hb_active": ["ativo"]}


def test_reference_worker_writes_in_the_dialect_in_force() -> None:
    from fixtures.stack.refapp import history, worker
    from plugins.contract.runtime import load

    theirs = load(dialect="deployment")
    q = worker.queue_statements(theirs, "public")
    assert "SET \"status\" = 'enviada', \"enviada_em\" = now()" in q.claim.as_string(None)
    assert "WHERE \"status\" = ANY ('{pendente,processando}')" in q.claim.as_string(None)
    assert "(NOT (\"alterado_via\" = ANY ('{sistema}') AND \"status\" = ANY ('{ativo}'))) DESC" in (
        q.newest_status.as_string(None))
    start = history.statements(theirs, "public").start.as_string(None)
    assert start == ('INSERT INTO "public"."job_executions" ("id", "job_name", "status", "started_at") '
                     "VALUES (%s, %s, %s, %s)")
    assert len(history.start_params(theirs, "j", datetime.now(UTC), "i")) == 4
    assert len(history.start_params(load(dialect=""), "j", datetime.now(UTC), "i")) == 5


def test_a_fault_read_in_another_dialect_is_a_fault_not_drift() -> None:
    from fixtures.probes.drift import judge_circuits, read_circuits
    from plugins.contract.drift import DriftUndecidable, DriftViolation

    body = {"circuits": {"evolution": {"estado": "open", "falhas_consecutivas": 5},
                         "claude": {"estado": "closed", "falhas_consecutivas": 0}}}
    health = HealthEndpoints(_Api({"/health/circuits": (200, body)}), RUNBOOK)  # type: ignore[arg-type]
    found = recognize_endpoint(Dialects.load(RUNBOOK), health, "circuit", read_circuits, ("health.circuit",))
    assert found is not None
    fault = found.verdict("no 'integrations' field", judge_circuits)
    assert isinstance(fault, DriftViolation) and fault.findings == found.findings
    assert fault.message.startswith("open circuit(s): evolution is 'open' (read in dialect 'deployment', "
                                    "/health/circuits); also drift from the runbook's words: ")
    body["circuits"]["evolution"]["estado"] = "closed"
    health = HealthEndpoints(_Api({"/health/circuits": (200, body)}), RUNBOOK)  # type: ignore[arg-type]
    found = recognize_endpoint(Dialects.load(RUNBOOK), health, "circuit", read_circuits, ("health.circuit",))
    assert found is not None and isinstance(found.verdict("x", judge_circuits), DriftUndecidable)
