"""The `[runtime]` section of runbook.toml: the scheduler's jobs, the queue and the pause switch.

Rule 4 ("Scheduler MUST be 1 instance"), "Workers and Scheduled Jobs", Scenario 3 and the
"Kill Stuck Job" procedure all speak of tables, columns and status words a deployment may
spell its own way (the runbook itself uses ``sucesso`` / ``falha`` / ``executando``; many
deployments write ``success`` / ``error`` / ``running``). This module is the one place those
names and the job table live: the checks, the reference scheduler and the seed generator all
read the same parsed object, so there is never a second job table to drift.

Strict, like every contract section: an unknown key, a wrong type, an invalid cron expression or
time zone is a ``ConfigError`` naming ``runtime.<key>``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from plugins.contract.dialects import respelled
from plugins.contract.toml_schema import ConfigError, _Spec, _check_table, _str_list

DEFAULT_RUNBOOK = Path(__file__).resolve().parents[2] / "runbook.toml"
SECTION = "runtime"

_TINY = timedelta(microseconds=1)


@dataclass(frozen=True)
class Job:
    """One row of the runbook's "Scheduled Jobs Reference": when it fires and what breaks if not."""

    name: str
    cron: str
    timezone: str
    grace: timedelta
    if_fails: str
    # Critical jobs are judged by JC-SCHED-03 (critical, post-deploy gate); the others by
    # JC-SCHED-05 (normal, nightly). The runbook's table is all critical; a deployment may
    # mark only the jobs its own code calls critical.
    critical: bool = True

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def _iter(self, start: datetime) -> croniter:
        return croniter(self.cron, start.astimezone(self.zone))

    def fires_between(self, start: datetime, end: datetime) -> list[datetime]:
        """Firings in ``[start, end]``, in UTC (computed in the job's own time zone)."""
        it = self._iter(start - _TINY)
        fires: list[datetime] = []
        while True:
            fire = it.get_next(datetime)
            if fire > end:
                return fires
            fires.append(fire.astimezone(UTC))

    def previous_fire(self, moment: datetime) -> datetime:
        """The latest firing at or before ``moment`` (UTC)."""
        return self._iter(moment + _TINY).get_prev(datetime).astimezone(UTC)

    def next_fire(self, moment: datetime) -> datetime:
        """The first firing strictly after ``moment`` (UTC)."""
        return self._iter(moment).get_next(datetime).astimezone(UTC)

    def due_fire(self, now: datetime) -> datetime:
        """The latest firing whose grace has run out: a successful run must exist since it."""
        return self.previous_fire(now - self.grace)

    def runs_per_day(self) -> float:
        """Average firings per day, from the expanded cron fields (no iteration).

        Day-of-month and month restrictions are averaged over a 365-day year; a job
        restricting both day of month and day of week counts the union, as cron does.
        """
        (minutes, hours, doms, months, dows), _ = croniter.expand(self.cron)
        per_day = (60 if minutes == ["*"] else len(minutes)) * (24 if hours == ["*"] else len(hours))
        month_part = 1.0 if months == ["*"] else len(months) / 12
        dom_part = 1.0 if doms == ["*"] else min(1.0, len(doms) * 12 / 365)
        dow_part = 1.0 if dows == ["*"] else len({int(d) % 7 for d in dows}) / 7
        if doms != ["*"] and dows != ["*"]:
            day_part = dom_part + dow_part - dom_part * dow_part
        else:
            day_part = dom_part * dow_part
        return per_day * day_part * month_part


@dataclass(frozen=True)
class ExecutionsTable:
    """Names of the job history table (``job_executions``) and its columns (``instance`` ""
    when the deployment does not record which scheduler ran a job)."""

    table: str
    id: str
    job: str
    status: str
    started_at: str
    ended_at: str
    error: str
    duration_ms: str
    instance: str


@dataclass(frozen=True)
class StatusWords:
    """Which status words mean success, failure and running; the first is the one to write."""

    success: tuple[str, ...]
    failure: tuple[str, ...]
    running: tuple[str, ...]


LIVENESS_KEY = "heartbeat_key"
LIVENESS_RUNS = "job_runs"
WORKER_KEY = "arq_key"
WORKER_PROGRESS = "queue_progress"


@dataclass(frozen=True)
class SchedulerContract:
    """How a live scheduler shows itself.

    ``liveness = "heartbeat_key"`` (the runbook's): each live instance keeps one Redis key
    ``<heartbeat_prefix><instance>`` with a TTL. ``"job_runs"``: the scheduler writes no key,
    only its job history — then the every-minute ``beat_job`` is the beat: a scheduler that
    recorded no run of it within the job's grace is down, two runs in one cron slot are two
    schedulers.
    """

    heartbeat_prefix: str
    heartbeat_ttl_s: int
    service_name: str
    liveness: str = LIVENESS_KEY
    beat_job: str = ""
    # How often a live scheduler renews its key: a key whose expiry is far longer than this
    # outlives the scheduler that wrote it (RuntimeContract.expiry_ratio_max).
    heartbeat_period_s: float = 5.0


@dataclass(frozen=True)
class QueueContract:
    """The message queue (``fila_mensagens``) and how a live worker shows itself.

    A row's state is the runbook's boolean (``processed``: ``processada = true``) or, when
    ``status`` names a column, a word: ``pending`` words wait, ``sent`` words were sent (a
    deployment with ``status`` in pendente|processando|enviada|…). ``updated_at`` is when a
    row was processed (the runbook's ``updated_at``; a deployment's ``enviada_em``).

    ``due_at`` (optional) is when a waiting row becomes due (a deployment's ``agendar_para``):
    a row due in the future is scheduled, not backlog; a row without one is due when created.
    ``claimed_at`` (optional) is when a worker took a row (``processando_desde``).

    ``worker_liveness``: ``"arq_key"`` (the runbook's ARQ worker renews ``health_check_key``)
    or ``"queue_progress"`` (the worker writes no key: it is alive while it claims or sends
    due rows). ``stalled_cause`` is what a queue with due rows and no live worker means.
    """

    table: str
    processed: str
    created_at: str
    updated_at: str
    max_age: timedelta
    processing_window: timedelta
    pickup: timedelta
    health_check_key: str
    id: str = "id"
    status: str = ""
    pending: tuple[str, ...] = ()
    sent: tuple[str, ...] = ()
    due_at: str = ""
    claimed_at: str = ""
    worker_liveness: str = WORKER_KEY
    service_name: str = "julia-worker"
    stalled_cause: str = "julia-worker is down or its event loop is stuck"
    # ARQ's health_check_interval: the worker renews its key that often, with a TTL of the
    # interval + 1 s (ARQ's default interval is 3600 s).
    health_check_interval_s: float = 5.0


@dataclass(frozen=True)
class PauseContract:
    """Júlia's switch (``julia_status``): the newest row rules — not counting the rows a
    heartbeat writes (an ``active`` row whose ``changed_via`` is in ``heartbeat_via``, e.g. a
    deployment inserting ``ativo`` / ``sistema`` every minute): a pause stays a pause.

    ``current_view`` (optional) is the app's own "current state" view (the newest row of any
    kind); JC-PAUSE-01 reads it beside the newest decision and says which one it judged.
    ``holds_queue``: the runbook's pause holds the queue ("Messages will queue … but won't
    be processed"), so a backlog while paused is by design; false when nothing in the
    deployment reads the switch — a backlog is then judged as any other."""

    table: str
    status: str
    reason: str
    changed_via: str
    created_at: str
    active: tuple[str, ...]
    paused: tuple[str, ...]
    error: tuple[str, ...]
    heartbeat_via: tuple[str, ...] = ()
    current_view: str = ""
    holds_queue: bool = True
    id: str = "id"  # the row's key, named beside an impossible time


REFUSED_WARNING = "warning"
REFUSED_FAILURE = "failure"


@dataclass(frozen=True)
class RuntimeContract:
    """``clock_skew``: how far ahead of the database's clock a stamp may be and still be
    believed; a row stamped later, or a run that ended before it started, is no evidence.
    ``expiry_ratio_max``: a heartbeat may expire at most this many renewal periods after it
    was written — one that lives longer (or never expires) outlives the process that wrote
    it and proves nothing. ``refused_evidence``: what such evidence is when the verdict
    stands on other, genuine evidence — a ``warning`` (passed, saying so) or a ``failure``.
    """

    look_back: timedelta
    stuck_after: timedelta
    failure_window: timedelta
    failure_rate_max: float
    clock_skew: timedelta
    executions: ExecutionsTable
    status: StatusWords
    scheduler: SchedulerContract
    queue: QueueContract
    pause: PauseContract
    jobs: tuple[Job, ...]
    expiry_ratio_max: float = 4.0
    refused_evidence: str = REFUSED_WARNING

    def job(self, name: str) -> Job | None:
        return next((j for j in self.jobs if j.name == name), None)

    @property
    def beat(self) -> Job | None:
        """The job whose runs are the scheduler's beat (``liveness = "job_runs"``)."""
        return self.job(self.scheduler.beat_job) if self.scheduler.liveness == LIVENESS_RUNS else None


_RUNTIME_SPEC: _Spec = {
    "look_back_hours": ((int, float), True),
    "stuck_minutes": ((int, float), True),
    "failure_window_days": ((int, float), True),
    "failure_rate_max": ((int, float), True),
    "clock_skew_seconds": ((int, float), True),
    "heartbeat_expiry_ratio_max": ((int, float), True),
    "refused_evidence": (str, True),
    "executions": (dict, True),
    "status": (dict, True),
    "scheduler": (dict, True),
    "queue": (dict, True),
    "pause": (dict, True),
    "jobs": (list, True),
}
_EXECUTIONS_SPEC: _Spec = {k: (str, True) for k in (
    "table", "id", "job", "status", "started_at", "ended_at", "error", "duration_ms", "instance")}
_STATUS_SPEC: _Spec = {"success": (list, True), "failure": (list, True), "running": (list, True)}
_SCHEDULER_SPEC: _Spec = {
    "heartbeat_prefix": (str, True),
    "heartbeat_ttl_seconds": (int, True),
    "service_name": (str, True),
    "liveness": (str, False),
    "beat_job": (str, False),
    "heartbeat_period_seconds": ((int, float), True),
}
_QUEUE_SPEC: _Spec = {
    "table": (str, True),
    "processed": (str, True),
    "created_at": (str, True),
    "updated_at": (str, True),
    "max_age_minutes": ((int, float), True),
    "processing_window_minutes": ((int, float), True),
    "pickup_seconds": ((int, float), True),
    "health_check_key": (str, True),
    "id": (str, False),
    "status": (str, False),
    "pending": (list, False),
    "sent": (list, False),
    "due_at": (str, False),
    "claimed_at": (str, False),
    "worker_liveness": (str, False),
    "service_name": (str, False),
    "stalled_cause": (str, False),
    "health_check_interval_seconds": ((int, float), True),
}
_PAUSE_SPEC: _Spec = {
    "table": (str, True),
    "status": (str, True),
    "reason": (str, True),
    "changed_via": (str, True),
    "created_at": (str, True),
    "active": (list, True),
    "paused": (list, True),
    "error": (list, True),
    "heartbeat_via": (list, False),
    "current_view": (str, False),
    "holds_queue": (bool, False),
    "id": (str, False),
}
_JOB_SPEC: _Spec = {
    "name": (str, True),
    "cron": (str, True),
    "timezone": (str, True),
    "grace_minutes": ((int, float), True),
    "if_fails": (str, True),
    "critical": (bool, False),
}


def _positive(path: Path, key: str, value: float) -> float:
    if value <= 0:
        raise ConfigError(f"{path}: {key}: must be greater than 0, got {value!r}")
    return float(value)


def _names(path: Path, prefix: str, table: dict[str, Any], spec: _Spec,
           optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """A table of names; only the ``optional`` ones may be "" (= the deployment has none)."""
    table = _check_table(path, prefix, table, spec)
    for key, value in table.items():
        if isinstance(value, str) and not value and key not in optional:
            raise ConfigError(f"{path}: {prefix}.{key}: must not be empty")
    return table


def _queue_state(path: Path, qu: dict[str, Any]) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """A queue row's state: the boolean column or the status word column, exactly one."""
    prefix = f"{SECTION}.queue"
    status = qu.get("status", "")
    if bool(status) == bool(qu["processed"]):
        raise ConfigError(f"{path}: {prefix}.status: give exactly one of {prefix}.processed (a boolean column) "
                          "and status (a status word column)")
    if not status:
        for key in ("pending", "sent"):
            if qu.get(key):
                raise ConfigError(f"{path}: {prefix}.{key}: status words need {prefix}.status")
        return "", (), ()
    pending = _words(path, f"{prefix}.pending", qu.get("pending", []))
    sent = _words(path, f"{prefix}.sent", qu.get("sent", []))
    both = set(pending) & set(sent)
    if both:
        raise ConfigError(f"{path}: {prefix}.sent: {sorted(both)[0]!r} is also listed under {prefix}.pending")
    return status, pending, sent


def _words(path: Path, key: str, value: list[Any]) -> tuple[str, ...]:
    return tuple(_str_list(path, key, value))


def _job(path: Path, i: int, raw: Any, seen: set[str]) -> Job:
    prefix = f"{SECTION}.jobs[{i}]"
    table = _names(path, prefix, raw, _JOB_SPEC)
    name = table["name"]
    if name in seen:
        raise ConfigError(f"{path}: {prefix}.name: job {name!r} is listed twice")
    seen.add(name)
    cron = " ".join(table["cron"].split())
    if len(cron.split()) != 5 or not croniter.is_valid(cron):
        raise ConfigError(
            f"{path}: {prefix}.cron: {table['cron']!r} is not a 5-field cron expression "
            "(minute hour day-of-month month day-of-week)"
        )
    try:
        ZoneInfo(table["timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{path}: {prefix}.timezone: unknown time zone {table['timezone']!r}") from None
    grace = _positive(path, f"{prefix}.grace_minutes", table["grace_minutes"])
    return Job(name=name, cron=cron, timezone=table["timezone"], grace=timedelta(minutes=grace),
               if_fails=table["if_fails"], critical=table.get("critical", True))


def _mode(path: Path, key: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"{path}: {key}: must be one of {', '.join(repr(a) for a in allowed)}, got {value!r}")
    return value


def _liveness(path: Path, sc: dict[str, Any], qu: dict[str, Any], jobs: tuple[Job, ...]) -> tuple[str, str]:
    """The scheduler's and the worker's liveness modes, each with what it needs."""
    liveness = _mode(path, f"{SECTION}.scheduler.liveness", sc.get("liveness", LIVENESS_KEY),
                     (LIVENESS_KEY, LIVENESS_RUNS))
    beat = sc.get("beat_job", "")
    if liveness == LIVENESS_RUNS:
        job = next((j for j in jobs if j.name == beat), None)
        if job is None:
            raise ConfigError(f"{path}: {SECTION}.scheduler.beat_job: {beat!r} is not a job of {SECTION}.jobs "
                              f"(liveness = {LIVENESS_RUNS!r} needs the job whose runs are the beat)")
    elif not sc["heartbeat_prefix"]:
        raise ConfigError(f"{path}: {SECTION}.scheduler.heartbeat_prefix: must not be empty "
                          f"(liveness = {LIVENESS_KEY!r})")
    worker = _mode(path, f"{SECTION}.queue.worker_liveness", qu.get("worker_liveness", WORKER_KEY),
                   (WORKER_KEY, WORKER_PROGRESS))
    if worker == WORKER_KEY and not qu["health_check_key"]:
        raise ConfigError(f"{path}: {SECTION}.queue.health_check_key: must not be empty "
                          f"(worker_liveness = {WORKER_KEY!r})")
    return liveness, worker


def _beat_can_go_stale(path: Path, jobs: tuple[Job, ...], beat: str, ratio: float) -> None:
    """A beat job's runs prove the scheduler alive for its grace: a grace far longer than the
    job's period would let a run prove it alive long after it died."""
    i, job = next((i, j) for i, j in enumerate(jobs) if j.name == beat)
    period = timedelta(days=1) / job.runs_per_day()
    if job.grace > ratio * period:
        raise ConfigError(
            f"{path}: {SECTION}.jobs[{i}].grace_minutes: the beat job {beat!r} ('{job.cron}', every "
            f"{period.total_seconds() / 60:g} min) may be at most {SECTION}.heartbeat_expiry_ratio_max = {ratio:g} "
            f"periods late, got {job.grace.total_seconds() / 60:g} min: its runs could not go stale")


def parse(path: Path, table: dict[str, Any]) -> RuntimeContract:
    """Validate and type the `[runtime]` section (registered in plugins.contract.runbook.SECTIONS)."""
    path = Path(path)
    rt = _check_table(path, SECTION, table, _RUNTIME_SPEC)
    ex = _names(path, f"{SECTION}.executions", rt["executions"], _EXECUTIONS_SPEC, optional=("instance",))
    st = _check_table(path, f"{SECTION}.status", rt["status"], _STATUS_SPEC)
    sc = _names(path, f"{SECTION}.scheduler", rt["scheduler"], _SCHEDULER_SPEC,
                optional=("heartbeat_prefix", "beat_job"))
    qu = _names(path, f"{SECTION}.queue", rt["queue"], _QUEUE_SPEC,
                optional=("processed", "status", "due_at", "claimed_at", "health_check_key"))
    queue_status, pending, sent = _queue_state(path, qu)
    pa = _names(path, f"{SECTION}.pause", rt["pause"], _PAUSE_SPEC, optional=("current_view",))

    status = StatusWords(**{k: _words(path, f"{SECTION}.status.{k}", st[k]) for k in ("success", "failure", "running")})
    seen_words: dict[str, str] = {}
    for kind in ("success", "failure", "running"):
        for word in getattr(status, kind):
            if word in seen_words:
                raise ConfigError(
                    f"{path}: {SECTION}.status.{kind}: {word!r} is also listed under {seen_words[word]}"
                )
            seen_words[word] = kind
    rate = float(rt["failure_rate_max"])
    if not 0 <= rate < 1:
        raise ConfigError(f"{path}: {SECTION}.failure_rate_max: must be a ratio in [0, 1), got {rate!r}")
    if rt["clock_skew_seconds"] < 0:
        raise ConfigError(f"{path}: {SECTION}.clock_skew_seconds: must not be negative")
    ratio = float(rt["heartbeat_expiry_ratio_max"])
    if ratio <= 1:
        raise ConfigError(f"{path}: {SECTION}.heartbeat_expiry_ratio_max: must be greater than 1 (a heartbeat "
                          f"lives at least one renewal period), got {rt['heartbeat_expiry_ratio_max']!r}")
    refused = _mode(path, f"{SECTION}.refused_evidence", rt["refused_evidence"], (REFUSED_WARNING, REFUSED_FAILURE))
    ttl = int(_positive(path, f"{SECTION}.scheduler.heartbeat_ttl_seconds", sc["heartbeat_ttl_seconds"]))
    period = _positive(path, f"{SECTION}.scheduler.heartbeat_period_seconds", sc["heartbeat_period_seconds"])
    if not period <= ttl <= ratio * period:
        raise ConfigError(
            f"{path}: {SECTION}.scheduler.heartbeat_ttl_seconds: must lie between the renewal period "
            f"(heartbeat_period_seconds = {period:g}) and {SECTION}.heartbeat_expiry_ratio_max = {ratio:g} periods "
            f"({ratio * period:g} s), got {ttl}: a key expiring sooner dies between beats, one living longer "
            "outlives its scheduler")
    interval = _positive(path, f"{SECTION}.queue.health_check_interval_seconds", qu["health_check_interval_seconds"])

    if not rt["jobs"]:
        raise ConfigError(f"{path}: {SECTION}.jobs: the job table must not be empty")
    seen: set[str] = set()
    jobs = tuple(_job(path, i, raw, seen) for i, raw in enumerate(rt["jobs"]))
    liveness, worker_liveness = _liveness(path, sc, qu, jobs)
    if liveness == LIVENESS_RUNS:
        _beat_can_go_stale(path, jobs, sc["beat_job"], ratio)

    return RuntimeContract(
        look_back=timedelta(hours=_positive(path, f"{SECTION}.look_back_hours", rt["look_back_hours"])),
        stuck_after=timedelta(minutes=_positive(path, f"{SECTION}.stuck_minutes", rt["stuck_minutes"])),
        failure_window=timedelta(days=_positive(path, f"{SECTION}.failure_window_days", rt["failure_window_days"])),
        failure_rate_max=rate,
        clock_skew=timedelta(seconds=float(rt["clock_skew_seconds"])),
        executions=ExecutionsTable(**ex),
        status=status,
        scheduler=SchedulerContract(heartbeat_prefix=sc["heartbeat_prefix"], heartbeat_ttl_s=ttl,
                                    service_name=sc["service_name"], liveness=liveness,
                                    beat_job=sc.get("beat_job", ""), heartbeat_period_s=period),
        queue=QueueContract(
            table=qu["table"], processed=qu["processed"], created_at=qu["created_at"],
            updated_at=qu["updated_at"],
            max_age=timedelta(minutes=_positive(path, f"{SECTION}.queue.max_age_minutes", qu["max_age_minutes"])),
            processing_window=timedelta(minutes=_positive(
                path, f"{SECTION}.queue.processing_window_minutes", qu["processing_window_minutes"])),
            pickup=timedelta(seconds=_positive(path, f"{SECTION}.queue.pickup_seconds", qu["pickup_seconds"])),
            health_check_key=qu["health_check_key"],
            id=qu.get("id", "id"), status=queue_status, pending=pending, sent=sent,
            due_at=qu.get("due_at", ""), claimed_at=qu.get("claimed_at", ""), worker_liveness=worker_liveness,
            **{k: qu[k] for k in ("service_name", "stalled_cause") if k in qu},
            health_check_interval_s=interval,
        ),
        pause=PauseContract(
            table=pa["table"], status=pa["status"], reason=pa["reason"], changed_via=pa["changed_via"],
            created_at=pa["created_at"],
            active=_words(path, f"{SECTION}.pause.active", pa["active"]),
            paused=_words(path, f"{SECTION}.pause.paused", pa["paused"]),
            error=_words(path, f"{SECTION}.pause.error", pa["error"]),
            heartbeat_via=tuple(_str_list(path, f"{SECTION}.pause.heartbeat_via", pa.get("heartbeat_via", []),
                                          nonempty=False)),
            current_view=pa.get("current_view", ""), holds_queue=pa.get("holds_queue", True),
            id=pa.get("id", "id"),
        ),
        jobs=jobs,
        expiry_ratio_max=ratio,
        refused_evidence=refused,
    )


DIALECT_ENV = "JC_DIALECT"


def load(path: Path | None = None, dialect: str | None = None) -> RuntimeContract:
    """The `[runtime]` section of a runbook file (default: ``$JC_RUNBOOK`` or the shipped one),
    respelled by ``dialect`` (default: ``$JC_DIALECT``; none = the runbook's words).

    For the reference app and the seed, which need the job table without the whole suite:
    only this section is validated (and the dialect's respellings, which must all be keys of
    the runbook); plugins.contract.runbook.load_runbook validates the whole file.
    """
    path = Path(path or os.environ.get("JC_RUNBOOK") or DEFAULT_RUNBOOK)
    dialect = dialect if dialect is not None else os.environ.get(DIALECT_ENV) or None
    data, _, where = respelled(path, dialect)
    if SECTION not in data:
        # worded as load_runbook words a missing section of a respelled runbook
        raise ConfigError(f"{where}: {SECTION}: missing required {'key' if dialect else 'section'}")
    return parse(where, data[SECTION])
