"""Units of the seed's job history (fixtures/stack/job_history.py; no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fixtures.stack.job_history import JOB_EXECUTIONS_PER_DAY, _job_table, cron_runs_per_day
from plugins.contract.runtime import load


def test_job_table_is_the_runbooks() -> None:
    """One job table: the seed reads runbook.toml's [runtime.jobs], as the scheduler does."""
    jobs = load().jobs
    now = datetime(2026, 11, 25, 14, 15, tzinfo=UTC)  # a Wednesday
    table = {j["name"]: j for j in _job_table(jobs, now=now, start=now - timedelta(days=3)).obj}  # type: ignore[union-attr]
    assert list(table) == [job.name for job in jobs]
    assert table["verificar-alertas"]["minutes"] == [0, 15, 30, 45]
    assert table["report-semanal"]["dows"] == [1] and table["report-semanal"]["hours"] == [9]
    assert table["relatorio-periodo"]["hours"] == [10, 13, 17, 20]
    assert table["relatorio-periodo"]["tz"] == "America/Sao_Paulo"
    # Only jobs with enough runs to keep a failure far below the threshold may fail.
    assert {n for n, j in table.items() if j["may_fail"]} == {
        "processar-mensagens-agendadas", "processar-campanhas-agendadas", "verificar-alertas"}
    # Jobs firing less often than the window get their last two firings from croniter.
    assert table["report-semanal"]["extra"] == ["2026-11-16T09:00:00+00:00"]  # 23rd: in the window
    assert table["atualizar-prompt-feedback"]["extra"] == ["2026-11-15T02:00:00+00:00", "2026-11-22T02:00:00+00:00"]
    assert table["processar-mensagens-agendadas"]["extra"] == []


def test_seed_volume_follows_the_runbook() -> None:
    """~3,000 cron runs a day; the worker's jobs make up the runbook's ~10,000 (at scale 1)."""
    per_day = cron_runs_per_day(load().jobs)
    assert 3000 < per_day < 3020
    assert JOB_EXECUTIONS_PER_DAY == 10_000
