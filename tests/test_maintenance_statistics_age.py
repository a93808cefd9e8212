"""Evidence younger than its window decides nothing (issue 16, point 7), under both dialects.

The maintenance checks that judge a window from PostgreSQL's cumulative statistics — the
weekly VACUUM / ANALYZE (JC-MAINT-03: "never vacuumed in 8 days"), unused indices
(JC-MAINT-05: "fewer than 10 scans in a month") — read since when those statistics exist
(fixtures.probes.maintenance.statistics.stats_origin). ``pg_stat_reset()`` on the stack's database, as an
operator might run it, clears every vacuum time and scan count: JC-MAINT-03 becomes
undecidable naming since when, JC-MAINT-05 names no index unused, and the checks that trust
no window-bound statistic (bloat from pg_stats, slow statements' means, growth by the rows'
own time column) are unmoved. The healthy stacks stay certified: their tables were
vacuumed and analyzed when the database was cloned (the weekly maintenance a maintained
database has), and such a stamp is evidence whatever the statistics' age.
"""

from __future__ import annotations

import datetime as dt

import psycopg

from fixtures.stack.backends.native import NativeStack
from tests.area_helpers import area, clean_app_repo  # noqa: F401 - fixtures
from tests.test_dialect_deployment import (  # noqa: F401 - fixtures
    Deployed,
    deployed,
    not_passed,
    variant_template,
)

MAINT = ("checks/test_maintenance.py",)
# The high-volume tables with a window, in both dialects' [maintenance].
WINDOWS = {"job_executions": 8, "interacoes": 8, "business_events": 8, "mensagens_grupo": 8, "health_incidents": 32}


def reset_statistics(database_url: str) -> str:
    """pg_stat_reset() on the database; returns its reset time as the checks print it."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_reset()")
        row = conn.execute("SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()").fetchone()
    assert row is not None and row[0] is not None
    return str(row[0].astimezone(dt.UTC).isoformat(timespec="seconds"))


def assert_undecided(message: str, output: str, since: str) -> None:
    """JC-MAINT-03's one line (the certificate's) and its whole message (the run's output)."""
    assert message.startswith(f"statistics exist since {since} ("), message
    assert " ago, reset on this database), younger than the window: " \
        in message, message
    full = " ".join(output.split())
    for table, days in WINDOWS.items():
        assert f"{table}: no vacuum on record (window {days} days)" in full, table
        assert f"{table}: no analyze on record (window {days} days)" in full, table
    assert "whether they were done before cannot be told" in full
    assert "never vacuumed" not in full and "never analyzed" not in full


def warnings_of(certificate: dict, inv: str) -> list[str]:  # type: ignore[type-arg]
    return next(r.get("warnings", []) for r in certificate["invariants"] if r["id"] == inv)


def test_reference_stack_statistics_reset(healthy: NativeStack, area) -> None:  # type: ignore[no-untyped-def]
    assert healthy.info is not None
    since = reset_statistics(healthy.info.database_url)
    run = area(paths=MAINT)
    assert run.outcomes()["JC-MAINT-03"] == "error"
    assert run.not_passed() == {"JC-MAINT-03"}, run.output[-3000:]
    assert_undecided(run.message("JC-MAINT-03"), run.output, since)
    assert run.certificate is not None
    [warning] = warnings_of(run.certificate, "JC-MAINT-05")  # every scan count is 0 now
    assert warning.startswith(f"no index judged unused: statistics exist since {since} ("), warning
    assert "public.idx_job_executions_job_name_started_at_status (" in warning


def test_deployment_statistics_reset(deployed: Deployed) -> None:
    since = reset_statistics(deployed.database_url)
    run = deployed.run("deployment", paths=MAINT)
    assert not_passed(run) == {"JC-MAINT-03": "error"}, run.output[-3000:]
    assert_undecided(run.message("JC-MAINT-03"), run.output, since)
    assert run.certificate is not None
    for warning in warnings_of(run.certificate, "JC-MAINT-05"):
        assert warning.startswith(f"no index judged unused: statistics exist since {since} ("), warning


def test_deployment_healthy_twin_is_decided_on_young_statistics(deployed: Deployed) -> None:
    """The twin's cluster is minutes old, but its tables carry the vacuum and analyze of its
    clone: JC-MAINT-03 decides (passes), nothing is undecidable."""
    run = deployed.run("deployment", paths=MAINT)
    assert not_passed(run) == {}, run.output[-3000:]
