"""Units of the reference app's pure parts: the health verdicts the suite relies on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fixtures.stack.refapp.config import DEFAULT_RUNBOOK, ConfigError, load_settings
from fixtures.stack.refapp.report import (
    DbFacts,
    DeepFacts,
    GuardExpectation,
    MigrationRecord,
    build_circuit_report,
    build_deep_report,
    build_rate_report,
    build_schema_report,
    one_line,
    redact,
    schema_status,
    utc_timestamp,
)

EXPECT = GuardExpectation(
    app_env="production", project_ref="jyqgbzhqavgpxqacduoi", environment_key="environment",
    project_ref_key="supabase_project_ref", schema_version_key="schema_version",
    expected_version="20260202",
)
GOOD_SETTINGS = {"environment": "production", "supabase_project_ref": "jyqgbzhqavgpxqacduoi",
                 "schema_version": "20260202"}
TS = "2026-02-09T12:34:56Z"
DEEP_KEYS = {"status", "timestamp", "environment", "project_ref", "redis", "supabase", "tables",
             "views", "migrations", "hard_guards"}


def deep(redis_error: str | None = None, db_error: str | None = None, *, tables: tuple[str, ...] = (),
         views: tuple[str, ...] = (), settings: dict[str, str] | None = None) -> tuple[int, dict]:
    db = None if db_error else DbFacts(tables, views, GOOD_SETTINGS if settings is None else settings)
    return build_deep_report(DeepFacts(redis_error, db_error, db), EXPECT, TS)


def test_deep_healthy() -> None:
    code, body = deep()
    assert code == 200 and body["status"] == "healthy"
    assert set(body) == DEEP_KEYS
    assert body["redis"] == {"status": "connected"} and body["supabase"] == {"status": "connected"}
    assert body["tables"] == {"status": "all_exist", "missing": []}
    assert body["migrations"] == {"current_version": "20260202", "expected_version": "20260202",
                                  "status": "up_to_date"}
    assert body["hard_guards"]["status"] == "ok" and body["hard_guards"]["mismatches"] == []


def test_deep_redis_down_is_unhealthy_but_db_still_checked() -> None:
    code, body = deep(redis_error="ConnectionError: refused")
    assert (code, body["status"]) == (503, "unhealthy")
    assert body["redis"] == {"status": "error", "error": "ConnectionError: refused"}
    assert body["tables"]["status"] == "all_exist"


def test_deep_db_down_reports_unknown_without_crashing() -> None:
    code, body = deep(db_error="OperationalError: refused")
    assert (code, body["status"]) == (503, "unhealthy")
    assert body["supabase"]["status"] == "error"
    for section in ("tables", "views", "migrations", "hard_guards"):
        assert body[section]["status"] == "unknown"
    assert body["migrations"]["current_version"] is None


@pytest.mark.parametrize(("kwargs", "section", "status"), [
    ({"tables": ("interacoes",)}, "tables", "missing"),
    ({"views": ("metricas_conversa",)}, "views", "missing"),
    ({"settings": {**GOOD_SETTINGS, "schema_version": "20260126"}}, "migrations", "outdated"),
    ({"settings": {k: v for k, v in GOOD_SETTINGS.items() if k != "schema_version"}}, "migrations", "outdated"),
])
def test_deep_failures_are_unhealthy(kwargs: dict, section: str, status: str) -> None:
    code, body = deep(**kwargs)
    assert (code, body["status"], body[section]["status"]) == (503, "unhealthy", status)


def test_deep_missing_names_are_listed() -> None:
    _, body = deep(tables=("interacoes",), views=("avaliacoes_qualidade",))
    assert body["tables"]["missing"] == ["interacoes"]
    assert body["views"]["missing"] == ["avaliacoes_qualidade"]


def test_deep_database_ahead_of_code_is_up_to_date() -> None:
    code, body = deep(settings={**GOOD_SETTINGS, "schema_version": "20260209"})
    assert code == 200 and body["migrations"]["status"] == "up_to_date"


def test_guard_mismatch_is_critical_and_outranks_other_failures() -> None:
    code, body = deep(redis_error="down", settings={**GOOD_SETTINGS, "environment": "staging"})
    assert (code, body["status"]) == (503, "CRITICAL")
    guards = body["hard_guards"]
    assert guards["status"] == "mismatch" and guards["db_environment"] == "staging"
    assert guards["mismatches"] == [{"guard": "APP_ENV", "setting": "environment",
                                     "expected": "production", "found": "staging", "reason": "different"}]


def test_missing_guard_key_is_a_mismatch() -> None:
    settings = {k: v for k, v in GOOD_SETTINGS.items() if k != "supabase_project_ref"}
    code, body = deep(settings=settings)
    assert (code, body["status"]) == (503, "CRITICAL")
    assert body["hard_guards"]["db_project_ref"] is None
    assert body["hard_guards"]["mismatches"][0]["reason"] == "missing"


@pytest.mark.parametrize(("current", "expected", "status"), [
    ("20260202", "20260202", "up_to_date"),
    ("20260209", "20260202", "up_to_date"),
    ("20260126", "20260202", "outdated"),
    ("20260202120000", "20260202", "up_to_date"),
    ("20260201235959", "20260202", "outdated"),
    (None, "20260202", "outdated"),
    ("X", "20260202", "outdated"),
])
def test_schema_status(current: str | None, expected: str, status: str) -> None:
    assert schema_status(current, expected) == status


def test_schema_report_newest_first_and_checks_app_settings_too() -> None:
    t = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
    history = [MigrationRecord("20260105", "core tables", t - timedelta(days=28)),
               MigrationRecord("20260202", "campanhas grupos", t)]
    body = build_schema_report(history, "20260105", "20260202")
    assert body["current_version"] == "20260202" and body["status"] == "outdated"
    assert [h["version"] for h in body["history"]] == ["20260202", "20260105"]
    assert body["history"][0] == {"version": "20260202", "description": "campanhas grupos",
                                  "installed_on": "2026-02-02T09:00:00Z"}
    assert build_schema_report(history, "20260202", "20260202")["status"] == "up_to_date"
    assert build_schema_report([], None, "20260202")["current_version"] is None


def test_rate_report_defaults_and_ratio() -> None:
    body = build_rate_report({"mensagens_hora": {"used": "17", "limit": "20"}})
    assert body == {"status": "ok", "namespaces": {
        "mensagens_hora": {"used": 17, "limit": 20, "ratio": 0.85},
        "mensagens_dia": {"used": 0, "limit": 100, "ratio": 0.0}}}


def test_rate_report_rejects_corrupt_counters() -> None:
    with pytest.raises(ValueError, match="julia:rate:mensagens_dia"):
        build_rate_report({"mensagens_dia": {"used": "abc"}})


def test_circuit_report() -> None:
    assert build_circuit_report({})["status"] == "ok"
    body = build_circuit_report({"evolution": "open", "slack": None})
    assert body["status"] == "degraded"
    assert body["integrations"]["evolution"] == {"state": "open"}
    assert body["integrations"]["slack"] == {"state": "closed"}
    assert list(body["integrations"]) == ["evolution", "chatwoot", "supabase", "slack", "anthropic"]


def test_one_line_is_single_line_and_redacted() -> None:
    dsn = "postgresql://julia:hunter2pw@db.internal:5432/postgres"
    exc = RuntimeError(f"connection failed for {dsn}\n\tIs the server running?\nDETAIL: hunter2pw")
    reason = one_line(exc, [dsn, "hunter2pw"])
    assert "\n" not in reason and "hunter2pw" not in reason and dsn not in reason
    assert reason == "RuntimeError: connection failed for ***"
    assert len(one_line(RuntimeError("x" * 1000), [])) <= 240
    assert one_line(TimeoutError(), []) == "TimeoutError"


def test_redact_longest_secret_first() -> None:
    assert redact("a=postgresql://u:pw@h/db", ["pw", "postgresql://u:pw@h/db"]) == "a=***"


def test_utc_timestamp_format() -> None:
    assert utc_timestamp(datetime(2026, 2, 9, 12, 34, 56, 789, tzinfo=UTC)) == TS


ENV = {"DATABASE_URL": "postgresql://julia:s3cret@127.0.0.1:5432/julia", "REDIS_URL": "redis://:rpw@127.0.0.1:6379/0",
       "APP_ENV": "local", "SUPABASE_PROJECT_REF": "localjuliaref0000000"}


def test_settings_defaults_come_from_runbook_and_migrations() -> None:
    settings = load_settings(ENV)
    assert DEFAULT_RUNBOOK == Path(__file__).resolve().parents[1] / "runbook.toml"
    assert settings.names.critical_tables == ("clientes", "conversations", "interacoes", "job_executions")
    assert settings.names.settings_table == "app_settings"
    assert settings.expected_schema_version.isdigit()
    assert {"s3cret", "rpw", ENV["DATABASE_URL"], ENV["REDIS_URL"]} <= set(settings.secrets)
    assert load_settings({**ENV, "EXPECTED_SCHEMA_VERSION": "20991231"}).expected_schema_version == "20991231"


@pytest.mark.parametrize("missing", ["DATABASE_URL", "REDIS_URL", "APP_ENV", "SUPABASE_PROJECT_REF"])
def test_settings_missing_variable_is_named(missing: str) -> None:
    with pytest.raises(ConfigError, match=missing):
        load_settings({k: v for k, v in ENV.items() if k != missing})


def test_settings_bad_runbook_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read runbook"):
        load_settings({**ENV, "JC_RUNBOOK": str(tmp_path / "absent.toml")})
    (tmp_path / "rb.toml").write_text("[database]\nschema = 'public'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="lacks"):
        load_settings({**ENV, "JC_RUNBOOK": str(tmp_path / "rb.toml")})
