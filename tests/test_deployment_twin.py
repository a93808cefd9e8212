"""The deployment twin answers every /health* route of the deployed app, with its shapes and
status rules — each pinned here against the app's own source file.

The deployed Júlia is rafa77-tech/whats-agents (HEAD e8dea89); its health router is
app/api/routes/health.py and the logic behind it app/services/health/*.py (cited per test).
These tests ask the twin (tests/deployment_app.py) over real HTTP, on a clone of the
deployment's schema variant in the self-test stack's PostgreSQL and Redis, and check keys,
types and the words each route may say — never the wording of the app's messages (the twin
does not copy them). Tables the deployment's code reads that its bootstrap schema lacks
(chips, circuit_transitions) are created here, minimal, from the migrations that define them,
where a rule needs them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import redis

from tests.deployment_app import APP_TABLES, APP_VIEWS, DeploymentApi, DeploymentApp
from tests.loopback import Canned, LoopbackApi
from tests.test_dialect_deployment import (  # noqa: F401 - fixtures
    Deployed,
    _dead_url,
    _expected_version,
    deployed,
    variant_template,
)

# app/api/routes/health.py's docstring lists its 16 endpoints; no other route of the app
# starts with /health.
HEALTH_ROUTES = {
    "/health", "/health/ready", "/health/deep", "/health/rate-limit", "/health/circuits",
    "/health/circuits/history", "/health/whatsapp", "/health/grupos", "/health/schema", "/health/jobs",
    "/health/telefones", "/health/pilot", "/health/chips", "/health/fila", "/health/alerts", "/health/score",
}


def get(deployed: Deployed, path: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(deployed.api.url + path, timeout=20) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def app(deployed: Deployed) -> DeploymentApp:
    assert deployed.api.app is not None
    return deployed.api.app


def replace(deployed: Deployed, **changes: Any) -> None:
    deployed.api.app = dataclasses.replace(app(deployed), **changes)


def is_timestamp(value: Any) -> bool:
    return isinstance(value, str) and datetime.fromisoformat(value).tzinfo is not None


def test_the_twin_serves_exactly_the_apps_health_routes(deployed: Deployed) -> None:
    """health.py: 16 routes; the runbook's /health/rate and /health/circuit are not among them."""
    assert set(app(deployed).routes()) == HEALTH_ROUTES
    for path in sorted(HEALTH_ROUTES):
        status, body = get(deployed, path)
        assert status in (200, 503), (path, status)
        assert isinstance(body, dict)
    for path in ("/health/rate", "/health/circuit", "/health/anything"):
        assert get(deployed, path)[0] == 404


def test_liveness(deployed: Deployed) -> None:
    """health.py health_check: {status: healthy, timestamp, service: julia-api}, no I/O, 200."""
    replace(deployed, database_url=_dead_url("postgres"), redis_url=_dead_url("redis"))
    status, body = get(deployed, "/health")
    assert status == 200 and set(body) == {"status", "timestamp", "service"}
    assert body["status"] == "healthy" and body["service"] == "julia-api" and is_timestamp(body["timestamp"])


def test_readiness_words(deployed: Deployed) -> None:
    """health.py readiness_check: always 200; ready (Redis and database ok), degraded (database
    ok, Redis not), not_ready (database failed, with checks.database_error); Evolution is
    ok | degraded | unknown and never decides."""
    status, body = get(deployed, "/health/ready")
    assert status == 200 and set(body) == {"status", "checks", "timestamp"}
    assert body["status"] == "ready" and body["checks"] == {"redis": "ok", "database": "ok", "evolution": "ok"}

    with LoopbackApi(routes={"/instance/connectionState/Revoluna": Canned(200, {"state": "connecting"})}) as evo:
        app(deployed).env["EVOLUTION_API_URL"] = evo.url
        assert get(deployed, "/health/ready")[1]["checks"]["evolution"] == "degraded"
    del app(deployed).env["EVOLUTION_API_URL"]  # no URL: the call fails, "unknown"
    assert get(deployed, "/health/ready")[1]["checks"]["evolution"] == "unknown"

    replace(deployed, redis_url=_dead_url("redis"))
    status, body = get(deployed, "/health/ready")
    assert (status, body["status"], body["checks"]["redis"], body["checks"]["database"]) == (200, "degraded",
                                                                                             "error", "ok")
    replace(deployed, database_url=_dead_url("postgres"))
    status, body = get(deployed, "/health/ready")
    assert (status, body["status"], body["checks"]["database"]) == (200, "not_ready", "error")
    assert "database_error" in body["checks"]


DEEP_PARTS = {"environment", "project_ref", "localhost_check", "dev_guardrails", "redis", "supabase", "tables",
              "views", "schema_version", "prompts"}


def test_deep_report_shape(deployed: Deployed) -> None:
    """app/services/health/deep.py: status, version {git_sha, deployment_id, railway_environment,
    run_mode}, runtime_endpoints (hosts only, app/core/config.py), schema (the fingerprint,
    app/services/health/schema.py), checks (ten parts), deploy_safe, timestamp."""
    status, body = get(deployed, "/health/deep")
    assert status == 200 and body["status"] == "healthy" and body["deploy_safe"] is True
    assert list(body) == ["status", "version", "runtime_endpoints", "schema", "checks", "deploy_safe", "timestamp"]
    assert set(body["version"]) == {"git_sha", "deployment_id", "railway_environment", "run_mode"}
    assert set(body["runtime_endpoints"]) == {"evolution_host", "chatwoot_host", "redis_host", "julia_api_host",
                                             "chip_activator_host", "supabase_project"}
    assert body["runtime_endpoints"]["chatwoot_host"] == "(not configured)"
    assert "://" not in body["runtime_endpoints"]["redis_host"]  # a host, never the URL
    checks = body["checks"]
    assert set(checks) == DEEP_PARTS
    assert set(checks["environment"]) == {"status", "app_env", "db_env"}
    assert set(checks["project_ref"]) == {"status", "app_ref", "db_ref"}
    assert checks["tables"] == {"status": "ok", "missing": []} and checks["views"] == {"status": "ok", "missing": []}
    assert checks["schema_version"] == {"status": "ok", "current": _expected_version(),
                                        "expected": _expected_version()}
    assert set(checks["dev_guardrails"]) == {"status", "app_env", "is_production", "allowlist_configured",
                                             "allowlist_count"}
    assert checks["dev_guardrails"]["allowlist_count"] == 2
    assert set(checks["prompts"]) == {"status", "missing", "inactive", "too_short", "missing_sentinels",
                                      "missing_warnings", "versions"}
    assert checks["prompts"]["status"] == "ok" and set(checks["prompts"]["versions"]) == {
        "julia_base", "julia_primeira_msg", "julia_tools"}
    # the loopback Redis and Evolution URLs: outside production, a warning that does not fail
    assert checks["localhost_check"]["status"] == "warning"
    assert any(v.startswith("REDIS_URL=") for v in checks["localhost_check"]["violations"])
    # the database has no get_table_columns_for_fingerprint (nor has the app's bootstrap schema):
    # the app's fallback fingerprint, a hash of its critical tables' names
    simple = hashlib.sha256("|".join(sorted(APP_TABLES)).encode()).hexdigest()[:16]
    assert body["schema"]["fingerprint"] == f"fallback-{simple}" == "fallback-186a95216dccc6b7"
    assert body["schema"]["tables_checked"] == list(APP_TABLES) and "error" in body["schema"]


def test_deep_guard_mismatch_returns_at_once(deployed: Deployed) -> None:
    """deep.py: a CRITICAL guard answers 503 {status: CRITICAL, message, checks, runtime_endpoints,
    deploy_safe: false} with every later part "pending" and no version / schema."""
    replace(deployed, project_ref="someotherproject0000")
    status, body = get(deployed, "/health/deep")
    assert status == 503 and body["status"] == "CRITICAL" and body["deploy_safe"] is False
    assert set(body) == {"status", "message", "checks", "runtime_endpoints", "deploy_safe", "timestamp"}
    assert body["checks"]["environment"]["status"] == "ok"
    assert body["checks"]["project_ref"]["status"] == "CRITICAL"
    assert {k for k, v in body["checks"].items() if v["status"] == "pending"} == DEEP_PARTS - {
        "environment", "project_ref"}


def test_deep_schema_version_words(deployed: Deployed) -> None:
    """deep.py _verificar_schema_version: ok when current >= expected as strings, else warning;
    a missing row raises in .single() and gives error — none of them fails the report."""
    expected = _expected_version()
    for value, word in (("20990101", "ok"), (expected, "ok"), ("20260120", "warning"), ("2", "warning")):
        deployed.sql(f"UPDATE app_settings SET value = '{value}' WHERE key = 'schema_version'")
        status, body = get(deployed, "/health/deep")
        assert (status, body["status"], body["checks"]["schema_version"]["status"]) == (200, "healthy", word), value
        assert body["checks"]["schema_version"]["current"] == value
    deployed.sql("DELETE FROM app_settings WHERE key = 'schema_version'")
    status, body = get(deployed, "/health/deep")
    assert (status, body["status"], body["deploy_safe"]) == (200, "healthy", True)
    part = body["checks"]["schema_version"]
    assert part["status"] == "error" and part["current"] is None and "PGRST116" in part["message"]


def test_deep_guards_and_dev_parts(deployed: Deployed) -> None:
    """deep.py: without SUPABASE_PROJECT_REF the project_ref guard is skipped (healthy); a
    missing environment row is an error (not a mismatch, no early return); production skips
    dev_guardrails and makes a localhost URL CRITICAL — unhealthy, not the guards' CRITICAL."""
    replace(deployed, project_ref="")
    status, body = get(deployed, "/health/deep")
    assert status == 200 and body["checks"]["project_ref"]["status"] == "skipped"
    assert body["checks"]["project_ref"]["db_ref"] is None

    deployed.sql("DELETE FROM app_settings WHERE key = 'environment'")
    status, body = get(deployed, "/health/deep")
    assert (status, body["status"], body["checks"]["environment"]["status"]) == (503, "unhealthy", "error")
    assert "version" in body

    deployed.sql("INSERT INTO app_settings (key, value) VALUES ('environment', 'production')")
    replace(deployed, app_env="production")
    status, body = get(deployed, "/health/deep")
    assert (status, body["status"]) == (503, "unhealthy")
    assert body["checks"]["localhost_check"]["status"] == "CRITICAL"
    assert body["checks"]["dev_guardrails"] == {"status": "skipped", "message": body["checks"]["dev_guardrails"][
        "message"], "app_env": "production", "is_production": True}


def test_deep_prompts_contract(deployed: Deployed) -> None:
    """app/services/health/schema.py verificar_contrato_prompts: missing / inactive / too short /
    a required sentinel missing are errors (503); a warning sentinel missing is a warning."""
    deployed.sql("UPDATE prompts SET conteudo = replace(conteudo, '[INVARIANT:OUTBOUND_QUIET_HOURS]', '') "
                 "WHERE nome = 'julia_base'")
    status, body = get(deployed, "/health/deep")
    assert status == 200 and body["checks"]["prompts"]["status"] == "warning"
    assert body["checks"]["prompts"]["missing_warnings"] == [
        {"prompt": "julia_base", "sentinel": "[INVARIANT:OUTBOUND_QUIET_HOURS]"}]
    deployed.sql("UPDATE prompts SET conteudo = replace(conteudo, '[CAPABILITY:HANDOFF]', '') "
                 "WHERE nome = 'julia_base'")
    deployed.sql("UPDATE prompts SET ativo = false WHERE nome = 'julia_tools'")
    status, body = get(deployed, "/health/deep")
    prompts = body["checks"]["prompts"]
    assert (status, body["status"], prompts["status"]) == (503, "unhealthy", "error")
    assert prompts["missing_sentinels"] == [{"prompt": "julia_base", "sentinel": "[CAPABILITY:HANDOFF]"}]
    assert prompts["inactive"] == ["julia_tools"] and "julia_tools" not in prompts["versions"]


def test_schema_endpoint(deployed: Deployed) -> None:
    """health.py schema_info: current_version / expected_version / schema_up_to_date (current >=
    expected as strings; false without a version) / applied_at / fingerprint / critical_tables /
    critical_views / timestamp; any failure is 200 {"error", "timestamp"}."""
    status, body = get(deployed, "/health/schema")
    assert status == 200 and set(body) == {"current_version", "expected_version", "schema_up_to_date", "applied_at",
                                           "fingerprint", "critical_tables", "critical_views", "timestamp"}
    assert body["critical_tables"] == list(APP_TABLES) and body["critical_views"] == list(APP_VIEWS)
    assert body["fingerprint"] == "fallback-186a95216dccc6b7" and body["applied_at"]
    for value in ("20990101", "20260120", "2026012"):
        deployed.sql(f"UPDATE app_settings SET value = '{value}' WHERE key = 'schema_version'")
        body = get(deployed, "/health/schema")[1]
        assert body["current_version"] == value and body["schema_up_to_date"] is (value >= body["expected_version"])
    deployed.sql("DELETE FROM app_settings WHERE key = 'schema_version'")
    body = get(deployed, "/health/schema")[1]
    assert body["current_version"] is None and body["schema_up_to_date"] is False
    replace(deployed, database_url=_dead_url("postgres"))
    status, body = get(deployed, "/health/schema")
    assert status == 200 and set(body) == {"error", "timestamp"}


def test_rate_limit_counters(deployed: Deployed) -> None:
    """app/services/rate_limiter.py obter_estatisticas: Redis strings rate:hora:YYYYMMDDHH and
    rate:dia:YYYYMMDD in Brasília time, limits MAX_MSGS_POR_HORA / MAX_MSGS_POR_DIA (20 / 100),
    horario_permitido (Mon–Fri, 08–20), hora_atual, dia_semana; {} on any error."""
    client = redis.Redis.from_url(deployed.redis_url, decode_responses=True)
    at = datetime(2026, 2, 23, 14, 30, tzinfo=UTC)  # a Monday, 11:30 in Brasília
    local = at.astimezone(ZoneInfo("America/Sao_Paulo"))
    keys = (f"rate:hora:{local:%Y%m%d%H}", f"rate:dia:{local:%Y%m%d}")
    assert keys == ("rate:hora:2026022311", "rate:dia:20260223")
    client.set(keys[0], "7")
    client.set(keys[1], "42")
    try:
        assert app(deployed).rate_stats(at) == {"msgs_hora": 7, "limite_hora": 20, "msgs_dia": 42, "limite_dia": 100,
                                                "horario_permitido": True, "hora_atual": "11:30",
                                                "dia_semana": "Monday"}
        app(deployed).env.update(MAX_MSGS_POR_HORA="30", MAX_MSGS_POR_DIA="300")
        saturday = app(deployed).rate_stats(at + timedelta(days=5))
        assert (saturday["limite_hora"], saturday["limite_dia"], saturday["horario_permitido"]) == (30, 300, False)
        client.set(keys[0], "not a number")
        assert app(deployed).rate_stats(at) == {}
    finally:
        client.delete(*keys)
    status, body = get(deployed, "/health/rate-limit")
    assert status == 200 and set(body) == {"rate_limit", "timestamp"} and set(body["rate_limit"]) == {
        "msgs_hora", "limite_hora", "msgs_dia", "limite_dia", "horario_permitido", "hora_atual", "dia_semana"}
    replace(deployed, redis_url=_dead_url("redis"))
    assert get(deployed, "/health/rate-limit")[1]["rate_limit"] == {}


CIRCUIT_TRANSITIONS = """
    CREATE TABLE circuit_transitions (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(), circuit_name text NOT NULL, from_state text NOT NULL,
        to_state text NOT NULL, reason text, falhas_consecutivas integer DEFAULT 0,
        tentativas_half_open integer DEFAULT 0, created_at timestamptz DEFAULT now())"""


def test_circuits_are_the_processs_own(deployed: Deployed) -> None:
    """app/services/circuit_breaker.py: three in-memory breakers (evolution 5 failures, claude 3,
    supabase 5), status {nome, estado, falhas_consecutivas, ultima_falha, ultimo_sucesso,
    tentativas_half_open, tempo_reset_atual, ultimo_erro_tipo}, estado closed|open|half_open;
    each transition written to circuit_transitions (migrations/sprint-36/002_circuit_transitions.sql),
    read back by /health/circuits/history (health.py circuit_breaker_history)."""
    status, body = get(deployed, "/health/circuits/history")
    assert status == 200 and set(body) == {"error", "timestamp"}  # the table is not in the bootstrap schema
    deployed.sql(CIRCUIT_TRANSITIONS)
    del app(deployed).env["EVOLUTION_API_URL"]  # every Evolution call now fails, counted by its breaker
    for _ in range(5):
        assert get(deployed, "/health/whatsapp")[1]["state"] == "error"
    status, body = get(deployed, "/health/circuits")
    assert status == 200 and set(body["circuits"]) == {"evolution", "claude", "supabase"}
    evolution = body["circuits"]["evolution"]
    assert set(evolution) == {"nome", "estado", "falhas_consecutivas", "ultima_falha", "ultimo_sucesso",
                              "tentativas_half_open", "tempo_reset_atual", "ultimo_erro_tipo"}
    assert (evolution["estado"], evolution["falhas_consecutivas"], evolution["tempo_reset_atual"]) == ("open", 5, 300)
    assert body["circuits"]["claude"]["estado"] == "closed"
    assert "open" in get(deployed, "/health/whatsapp")[1]["error"]  # refused without a call
    status, body = get(deployed, "/health/circuits/history?circuit_name=evolution&horas=2")
    assert (body["circuit_filter"], body["period_hours"], body["total_transitions"]) == ("evolution", 2, 1)
    assert body["by_circuit"]["evolution"][0] | {"at": None} == {"from": "closed", "to": "open",
                                                                 "reason": "muitas_falhas_5", "falhas": 5, "at": None}
    assert get(deployed, "/health/circuits/history?horas=x")[0] == 422
    app(deployed).set_circuit("claude", "half_open")
    assert get(deployed, "/health/circuits")[1]["circuits"]["claude"]["estado"] == "half_open"


def test_whatsapp(deployed: Deployed) -> None:
    """app/services/health/connectivity.py verificar_evolution: {connected, instance, state,
    details} from Evolution's connectionState, {connected: false, instance, state: error, error}
    when the call fails."""
    status, body = get(deployed, "/health/whatsapp")
    assert status == 200 and set(body) == {"connected", "instance", "state", "details", "timestamp"}
    assert (body["connected"], body["instance"], body["state"]) == (True, "Revoluna", "open")
    del app(deployed).env["EVOLUTION_API_URL"]
    body = get(deployed, "/health/whatsapp")[1]
    assert set(body) == {"connected", "instance", "state", "error", "timestamp"} and body["state"] == "error"


def test_grupos(deployed: Deployed) -> None:
    """health.py grupos_worker_health (+ app/services/grupos/fila.py): a count per pipeline
    stage and erros_max_tentativas, travados (idle over an hour, at most 100 read) against
    thresholds 100 / 500 — never passed; error on failure. Table from bootstrap/01-schema.sql
    (in the twin's schema, empty)."""
    status, body = get(deployed, "/health/grupos")
    assert status == 200 and body["status"] == "healthy" and body["travados"]["count"] == 0
    assert set(body["fila"].values()) == {0}
    deployed.sql("INSERT INTO fila_processamento_grupos (mensagem_id, estagio, tentativas, updated_at) SELECT "
                 "gen_random_uuid(), 'extracao', 3, now() - interval '2 hours' FROM generate_series(1, 150)")
    deployed.sql("INSERT INTO fila_processamento_grupos (mensagem_id, estagio) VALUES (gen_random_uuid(), "
                 "'finalizado')")
    status, body = get(deployed, "/health/grupos")
    assert set(body) == {"status", "fila", "travados", "timestamp"} and body["status"] == "healthy"
    assert body["fila"]["extracao"] == 150 and body["fila"]["finalizado"] == 1
    assert body["fila"]["erros_max_tentativas"] == 150 and len(body["fila"]) == 11
    assert body["travados"] == {"count": 100, "threshold_degraded": 100, "threshold_unhealthy": 500}
    deployed.sql("DROP TABLE fila_processamento_grupos")
    status, body = get(deployed, "/health/grupos")
    assert status == 200 and body["status"] == "error" and "error" in body


def test_jobs(deployed: Deployed) -> None:
    """app/services/health/jobs_monitor.py obter_status_jobs: per job of the last 24 h its runs,
    outcomes, durations and SLA; critical when a critical job has no run, degraded on an error
    or timeout run. Its staleness is never computed (a naive minus an aware datetime, the
    TypeError swallowed): seconds_since_last_run is null, is_stale false."""
    status, body = get(deployed, "/health/jobs")
    assert status == 200 and set(body) == {"status", "jobs", "alerts", "sla_config", "period", "total_executions",
                                           "timestamp"}
    assert set(body["alerts"]) == {"jobs_with_errors", "jobs_with_timeouts", "stale_jobs", "critical_stale",
                                   "missing_critical"}
    job = body["jobs"]["processar_fila_mensagens"]
    assert set(job) == {"last_run", "last_status", "runs_24h", "success_24h", "errors_24h", "timeouts_24h",
                        "avg_duration_ms", "total_items_processed", "last_error", "sla_seconds", "is_stale",
                        "seconds_since_last_run"}
    assert (job["sla_seconds"], job["is_stale"], job["seconds_since_last_run"]) == (180, False, None)
    missing = body["alerts"]["missing_critical"]
    assert body["status"] == ("critical" if missing else "degraded" if body["alerts"]["jobs_with_errors"] else
                              "healthy")
    deployed.sql("INSERT INTO job_executions (id, job_name, started_at, finished_at, status, duration_ms) "
                 "SELECT gen_random_uuid(), j, now() - interval '1 minute', now(), 'success', 10 FROM "
                 "unnest(ARRAY['processar_fila_mensagens', 'processar_campanhas_agendadas', 'verificar_whatsapp', "
                 "'processar_grupos']) AS j")
    deployed.sql("DELETE FROM job_executions WHERE status <> 'success'")
    assert get(deployed, "/health/jobs")[1]["status"] == "healthy"
    deployed.sql("INSERT INTO job_executions (id, job_name, started_at, status, error) VALUES "
                 "(gen_random_uuid(), 'verificar_whatsapp', now(), 'timeout', 'slow')")
    body = get(deployed, "/health/jobs")[1]
    assert body["status"] == "degraded" and body["alerts"]["jobs_with_timeouts"] == ["verificar_whatsapp"]
    deployed.sql("DROP TABLE job_executions CASCADE")
    assert get(deployed, "/health/jobs")[1]["status"] == "error"


def test_fila(deployed: Deployed) -> None:
    """app/services/health/fila.py obter_saude_fila over app/services/fila.py's six reads of
    fila_mensagens (errors counted by updated_at, a column the bootstrap schema lacks — then
    the route answers error); degraded on a stuck message or a backlog over 100, critical
    over 10 stuck or 500 pending, in the app's order."""
    status, body = get(deployed, "/health/fila")
    assert status == 200 and body["status"] == "error" and "updated_at" in body["error"]
    deployed.sql("ALTER TABLE fila_mensagens ADD COLUMN updated_at timestamptz DEFAULT now()")
    deployed.sql("UPDATE fila_mensagens SET status = 'enviada' WHERE status <> 'enviada'")
    body = get(deployed, "/health/fila")[1]
    assert set(body) == {"status", "alerts", "metrics", "thresholds", "timestamp"} and body["status"] == "healthy"
    assert set(body["metrics"]) == {"pendentes", "processando", "enviadas_ultima_hora", "erros_ultima_hora",
                                    "mensagem_mais_antiga_min", "travadas"}
    assert body["thresholds"] == {"backlog_warning": 100, "backlog_critical": 500, "travadas_warning": 1,
                                  "travadas_critical": 10, "erros_hora_warning": 10, "idade_warning_min": 60}
    deployed.sql("INSERT INTO fila_mensagens (cliente_id, conteudo, status, processando_desde) SELECT "
                 "(SELECT min(id) FROM clientes), 'x', 'processando', now() - interval '2 hours' "
                 "FROM generate_series(1, 11)")
    assert get(deployed, "/health/fila")[1]["status"] == "critical"
    deployed.sql("INSERT INTO fila_mensagens (cliente_id, conteudo, status) SELECT (SELECT min(id) FROM clientes), "
                 "'x', 'pendente' FROM generate_series(1, 101)")
    body = get(deployed, "/health/fila")[1]  # a backlog over 100 sets degraded after the critical
    assert body["status"] == "degraded" and body["metrics"]["pendentes"] == 101 and len(body["alerts"]) == 3


CHIPS = """
    CREATE TABLE chips (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(), telefone text UNIQUE NOT NULL, status text NOT NULL,
        evolution_connected boolean DEFAULT false, trust_score int DEFAULT 50, trust_level text DEFAULT 'amarelo',
        pode_prospectar boolean DEFAULT false, pode_followup boolean DEFAULT false,
        pode_responder boolean DEFAULT true, msgs_enviadas_hoje int DEFAULT 0, erros_ultimas_24h int DEFAULT 0)"""


def test_chips_alerts_and_score(deployed: Deployed) -> None:
    """app/services/health/chips.py, alerts.py and scoring.py over the active chips
    (migrations/sprint-25/001_chips_schema.sql): chips critical with none, each cached in
    Redis (health:chips 30 s, health:alerts and health:score 15 s); alerts critical|warning|ok;
    score = connectivity 30 + queue 25 + chips 25 + circuits 20 with its level."""
    client = redis.Redis.from_url(deployed.redis_url)
    client.delete("health:chips", "health:alerts", "health:score")
    try:
        body = get(deployed, "/health/chips")[1]
        assert body["status"] == "error"  # no chips table, as in the bootstrap schema
        alerts = get(deployed, "/health/alerts")[1]
        assert set(alerts) == {"status", "total_alerts", "alerts", "timestamp"}
        assert alerts["status"] == "ok" and {a["severity"] for a in alerts["alerts"]} == {"error"}
        score = get(deployed, "/health/score")[1]
        assert set(score) == {"score", "max_score", "level", "color", "breakdown", "thresholds", "timestamp"}
        assert score["breakdown"]["chips"] == {"score": 0, "max": 25} and score["breakdown"]["fila"]["score"] == 0
        assert score["breakdown"]["connectivity"] == {"score": 30, "max": 30}  # Redis, Evolution open, database
        assert (score["score"], score["level"], score["color"]) == (50, "degraded", "orange")
        deployed.sql(CHIPS)
        deployed.sql("INSERT INTO chips (telefone, status, evolution_connected, trust_score) VALUES "
                     "('5511999990001', 'active', true, 90), ('5511999990002', 'active', true, 85), "
                     "('5511999990003', 'warming', false, 10)")
        assert get(deployed, "/health/alerts")[1]["total_alerts"] == alerts["total_alerts"]  # still cached
        client.delete("health:chips", "health:alerts", "health:score")
        chips = get(deployed, "/health/chips")[1]
        assert set(chips) == {"status", "message", "summary", "capacidade", "chips", "timestamp"}
        assert chips["status"] == "healthy" and chips["summary"]["total"] == 2 and chips["summary"]["saudaveis"] == 2
        assert {c["telefone"] for c in chips["chips"]} == {"0001", "0002"}
        assert set(chips["chips"][0]) == {"telefone", "trust_score", "trust_level", "health", "circuit_state",
                                          "circuit_falhas", "evolution_connected", "pode_prospectar", "pode_followup",
                                          "pode_responder", "msgs_hoje", "erros_24h", "is_available"}
        app(deployed).set_circuit("evolution", "open")
        assert get(deployed, "/health/score")[1]["breakdown"]["chips"]["score"] == 25
        alerts = get(deployed, "/health/alerts")[1]
        assert alerts["status"] == "critical" and alerts["alerts"][0]["source"] == "circuit_breaker"
    finally:
        client.delete("health:chips", "health:alerts", "health:score")


def test_telefones(deployed: Deployed) -> None:
    """health.py telefones_validation_status (+ app/services/validacao_telefone.py): stats from
    the RPC count_by_status_telefone ({} when it fails, e.g. absent as in the bootstrap schema);
    degraded over 10,000 pending, "warning" over 50,000."""
    status, body = get(deployed, "/health/telefones")
    assert status == 200 and set(body) == {"status", "stats", "total", "taxa_validos_pct", "taxa_invalidos_pct",
                                           "backlog_pendentes", "timestamp"}
    assert (body["status"], body["stats"], body["total"]) == ("healthy", {}, 0)
    deployed.sql("CREATE FUNCTION count_by_status_telefone() RETURNS TABLE (status text, count bigint) "
                 "LANGUAGE sql AS $$ VALUES ('pendente', 10001::bigint), ('validado', 3000::bigint), "
                 "('invalido', 1000::bigint) $$")
    body = get(deployed, "/health/telefones")[1]
    assert (body["status"], body["total"], body["backlog_pendentes"]) == ("degraded", 14001, 10001)
    assert body["taxa_validos_pct"] == round(3000 / 14001 * 100, 2)


def test_pilot(deployed: Deployed) -> None:
    """app/workers/pilot_mode.py get_pilot_status (+ app/core/config.py): PILOT_MODE (default
    true) turns every autonomous feature off; else the *_ENABLED flags (default false)."""
    status, body = get(deployed, "/health/pilot")
    assert status == 200 and set(body) == {"pilot_mode", "features", "enabled_count", "total_count", "message",
                                           "timestamp"}
    assert body["pilot_mode"] is True and not any(body["features"].values()) and body["total_count"] == 4
    app(deployed).env.update(PILOT_MODE="false", DISCOVERY_AUTOMATICO_ENABLED="true")
    body = get(deployed, "/health/pilot")[1]
    assert (body["pilot_mode"], body["enabled_count"], body["features"]["discovery_automatico"]) == (False, 1, True)


def test_a_canned_answer_overrides_the_twin(deployed: Deployed) -> None:
    """Fault tests may replace one route's answer (DeploymentApi.routes) and keep the others."""
    api: DeploymentApi = deployed.api
    api.routes["/health/schema"] = Canned(200, {"error": "boom", "timestamp": "t"})
    assert get(deployed, "/health/schema")[1] == {"error": "boom", "timestamp": "t"}
    assert get(deployed, "/health")[1]["status"] == "healthy"
