"""The `[runtime]` section of runbook.toml: the scheduler's jobs, the queue and the pause switch.

Rule 4 ("Scheduler MUST be 1 instance"), "Workers and Scheduled Jobs", Scenario 3 and the
"Kill Stuck Job" procedure all speak of tables, columns and status words a deployment may
spell its own way (the runbook itself uses ``sucesso`` / ``falha`` / ``executando``; many
deployments write ``success`` / ``error`` / ``running``). This module is the one place those
names and the job table live: the checks, the reference scheduler and the seed generator all
read the same parsed object, so there is never a second job table to drift.

Strict, like every contract section: an unknown key, a wrong type, an invalid cron expression or
time zone is a ``ConfigError`` naming ``runtime.<key>``.

Longer than the suite's ~450-line budget on purpose: the section's objects with their time
arithmetic (a job's firings in its own time zone) and the model that reads them from the
file are one subject, every name the runtime checks, the reference scheduler and the seed
share.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import model_validator

from plugins.contract.dialects import respelled
from plugins.contract.toml_schema import (
    AnyList,
    Bool,
    ConfigError,
    Int,
    Number,
    Str,
    Table,
    check,
    fail,
    one_of,
    positive,
    str_list,
    validate,
    within,
    within_table,
)

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


# --- how [runtime] is written ---------------------------------------------------------------
#
# Each table declares its keys and types, and that a name it needs is not "" (``Name``); the
# rest is checked by RuntimeSection.contract(), in the order an operator has always been told.


def _filled(value: str) -> str:
    if not value:
        raise fail("must not be empty")
    return value


Name = Annotated[Str, check(_filled)]  # a table or column name; Str alone where "" = the deployment has none


def _words(value: list[Any]) -> tuple[str, ...]:
    return tuple(str_list(value))


def _mode(allowed: tuple[str, ...]) -> Any:
    return lambda value: one_of(allowed, value, quote=True)


class _Executions(Table):
    """Names of the job history table and its columns (``instance`` "" = not recorded)."""

    table: Name
    id: Name
    job: Name
    status: Name
    started_at: Name
    ended_at: Name
    error: Name
    duration_ms: Name
    instance: Str


class _Status(Table):
    success: AnyList
    failure: AnyList
    running: AnyList


class _Scheduler(Table):
    heartbeat_prefix: Str
    heartbeat_ttl_seconds: Int
    service_name: Name
    liveness: Name = LIVENESS_KEY
    beat_job: Str = ""
    heartbeat_period_seconds: Number


class _Queue(Table):
    table: Name
    processed: Str
    created_at: Name
    updated_at: Name
    max_age_minutes: Number
    processing_window_minutes: Number
    pickup_seconds: Number
    health_check_key: Str
    id: Name = "id"
    status: Str = ""
    pending: AnyList = []
    sent: AnyList = []
    due_at: Str = ""
    claimed_at: Str = ""
    worker_liveness: Name = WORKER_KEY
    service_name: Name = QueueContract.service_name
    stalled_cause: Name = QueueContract.stalled_cause
    health_check_interval_seconds: Number

    @model_validator(mode="after")
    def _one_state(self) -> _Queue:
        """A row's state is the boolean column or the status word column, exactly one."""
        where = f"{SECTION}.queue"
        if bool(self.status) == bool(self.processed):
            raise fail(f"give exactly one of {where}.processed (a boolean column) and status (a status word column)",
                       at="status")
        if not self.status:
            for key in ("pending", "sent"):
                if getattr(self, key):
                    raise fail(f"status words need {where}.status", at=key)
        else:
            pending, sent = within("pending", _words, self.pending), within("sent", _words, self.sent)
            both = set(pending) & set(sent)
            if both:
                raise fail(f"{sorted(both)[0]!r} is also listed under {where}.pending", at="sent")
        return self


class _Pause(Table):
    table: Name
    status: Name
    reason: Name
    changed_via: Name
    created_at: Name
    active: AnyList
    paused: AnyList
    error: AnyList
    heartbeat_via: AnyList = []
    current_view: Str = ""
    holds_queue: Bool = True
    id: Name = "id"


def _cron(text: str) -> str:
    cron = " ".join(text.split())
    if len(cron.split()) != 5 or not croniter.is_valid(cron):
        raise fail(f"{text!r} is not a 5-field cron expression (minute hour day-of-month month day-of-week)")
    return cron


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise fail(f"unknown time zone {name!r}") from None
    return name


class _Job(Table):
    NOT_A_TABLE = "must be a table"

    name: Name
    cron: Name
    timezone: Name
    grace_minutes: Number
    if_fails: Name
    critical: Bool = True


def _job(raw: Any, seen: set[str]) -> Job:
    entry = within_table("", _Job, raw)
    if entry.name in seen:
        raise fail(f"job {entry.name!r} is listed twice", at="name")
    seen.add(entry.name)
    cron = within("cron", _cron, entry.cron)
    within("timezone", _zone, entry.timezone)
    grace = within("grace_minutes", positive, entry.grace_minutes)
    return Job(name=entry.name, cron=cron, timezone=entry.timezone, grace=timedelta(minutes=float(grace)),
               if_fails=entry.if_fails, critical=entry.critical)


def _jobs(value: list[Any]) -> tuple[Job, ...]:
    if not value:
        raise fail("the job table must not be empty")
    seen: set[str] = set()
    return tuple(within(i, lambda raw: _job(raw, seen), raw) for i, raw in enumerate(value))


def _one_meaning_per_word(status: dict[str, tuple[str, ...]]) -> None:
    seen: dict[str, str] = {}
    for kind, words in status.items():
        for word in words:
            if word in seen:
                raise fail(f"{word!r} is also listed under {seen[word]}", at=kind)
            seen[word] = kind


def _failure_rate(value: float) -> float:
    rate = float(value)
    if not 0 <= rate < 1:
        raise fail(f"must be a ratio in [0, 1), got {rate!r}")
    return rate


def _not_negative(value: float) -> float:
    if value < 0:
        raise fail("must not be negative")
    return value


def _expiry_ratio(value: float) -> float:
    if float(value) <= 1:
        raise fail(f"must be greater than 1 (a heartbeat lives at least one renewal period), got {value!r}")
    return float(value)


class RuntimeSection(Table):
    look_back_hours: Number
    stuck_minutes: Number
    failure_window_days: Number
    failure_rate_max: Number
    clock_skew_seconds: Number
    heartbeat_expiry_ratio_max: Number
    refused_evidence: Str
    executions: _Executions
    status: _Status
    scheduler: _Scheduler
    queue: _Queue
    pause: _Pause
    jobs: AnyList

    @model_validator(mode="after")
    def _values(self) -> RuntimeSection:
        self.contract()
        return self

    def contract(self) -> RuntimeContract:
        """The section's values, each checked, in this order, as the contract object."""
        sc, qu, pa = self.scheduler, self.queue, self.pause
        status = {kind: within(f"status.{kind}", _words, getattr(self.status, kind))
                  for kind in ("success", "failure", "running")}
        within("status", _one_meaning_per_word, status)
        rate = within("failure_rate_max", _failure_rate, self.failure_rate_max)
        within("clock_skew_seconds", _not_negative, self.clock_skew_seconds)
        ratio = within("heartbeat_expiry_ratio_max", _expiry_ratio, self.heartbeat_expiry_ratio_max)
        within("refused_evidence", _mode((REFUSED_WARNING, REFUSED_FAILURE)), self.refused_evidence)
        ttl = int(within("scheduler.heartbeat_ttl_seconds", positive, sc.heartbeat_ttl_seconds))
        period = float(within("scheduler.heartbeat_period_seconds", positive, sc.heartbeat_period_seconds))
        if not period <= ttl <= ratio * period:
            raise fail(
                f"must lie between the renewal period (heartbeat_period_seconds = {period:g}) and "
                f"{SECTION}.heartbeat_expiry_ratio_max = {ratio:g} periods ({ratio * period:g} s), got {ttl}: a key "
                "expiring sooner dies between beats, one living longer outlives its scheduler",
                at="scheduler.heartbeat_ttl_seconds")
        interval = within("queue.health_check_interval_seconds", positive, qu.health_check_interval_seconds)
        jobs = within("jobs", _jobs, self.jobs)
        self._liveness(jobs)
        if sc.liveness == LIVENESS_RUNS:
            self._beat_can_go_stale(jobs, ratio)
        return RuntimeContract(
            look_back=timedelta(hours=within("look_back_hours", positive, self.look_back_hours)),
            stuck_after=timedelta(minutes=within("stuck_minutes", positive, self.stuck_minutes)),
            failure_window=timedelta(days=within("failure_window_days", positive, self.failure_window_days)),
            failure_rate_max=rate,
            clock_skew=timedelta(seconds=float(self.clock_skew_seconds)),
            executions=ExecutionsTable(**{key: getattr(self.executions, key) for key in (
                "table", "id", "job", "status", "started_at", "ended_at", "error", "duration_ms", "instance")}),
            status=StatusWords(**status),
            scheduler=SchedulerContract(heartbeat_prefix=sc.heartbeat_prefix, heartbeat_ttl_s=ttl,
                                        service_name=sc.service_name, liveness=sc.liveness, beat_job=sc.beat_job,
                                        heartbeat_period_s=period),
            queue=QueueContract(
                table=qu.table, processed=qu.processed, created_at=qu.created_at, updated_at=qu.updated_at,
                max_age=timedelta(minutes=within("queue.max_age_minutes", positive, qu.max_age_minutes)),
                processing_window=timedelta(minutes=within("queue.processing_window_minutes", positive,
                                                           qu.processing_window_minutes)),
                pickup=timedelta(seconds=within("queue.pickup_seconds", positive, qu.pickup_seconds)),
                health_check_key=qu.health_check_key, id=qu.id, status=qu.status,
                pending=_words(qu.pending) if qu.status else (), sent=_words(qu.sent) if qu.status else (),
                due_at=qu.due_at, claimed_at=qu.claimed_at, worker_liveness=qu.worker_liveness,
                service_name=qu.service_name, stalled_cause=qu.stalled_cause,
                health_check_interval_s=float(interval),
            ),
            pause=PauseContract(
                table=pa.table, status=pa.status, reason=pa.reason, changed_via=pa.changed_via,
                created_at=pa.created_at,
                active=within("pause.active", _words, pa.active),
                paused=within("pause.paused", _words, pa.paused),
                error=within("pause.error", _words, pa.error),
                heartbeat_via=tuple(within("pause.heartbeat_via", lambda v: str_list(v, nonempty=False),
                                           pa.heartbeat_via)),
                current_view=pa.current_view, holds_queue=pa.holds_queue, id=pa.id,
            ),
            jobs=jobs,
            expiry_ratio_max=ratio,
            refused_evidence=self.refused_evidence,
        )

    def _liveness(self, jobs: tuple[Job, ...]) -> None:
        """The scheduler's and the worker's liveness modes, each with what it needs."""
        sc, qu = self.scheduler, self.queue
        within("scheduler.liveness", _mode((LIVENESS_KEY, LIVENESS_RUNS)), sc.liveness)
        if sc.liveness == LIVENESS_RUNS:
            if not any(j.name == sc.beat_job for j in jobs):
                raise fail(f"{sc.beat_job!r} is not a job of {SECTION}.jobs (liveness = {LIVENESS_RUNS!r} needs the "
                           "job whose runs are the beat)", at="scheduler.beat_job")
        elif not sc.heartbeat_prefix:
            raise fail(f"must not be empty (liveness = {LIVENESS_KEY!r})", at="scheduler.heartbeat_prefix")
        within("queue.worker_liveness", _mode((WORKER_KEY, WORKER_PROGRESS)), qu.worker_liveness)
        if qu.worker_liveness == WORKER_KEY and not qu.health_check_key:
            raise fail(f"must not be empty (worker_liveness = {WORKER_KEY!r})", at="queue.health_check_key")

    def _beat_can_go_stale(self, jobs: tuple[Job, ...], ratio: float) -> None:
        """A beat job's runs prove the scheduler alive for its grace: a grace far longer than the
        job's period would let a run prove it alive long after it died."""
        i, job = next((i, j) for i, j in enumerate(jobs) if j.name == self.scheduler.beat_job)
        period = timedelta(days=1) / job.runs_per_day()
        if job.grace > ratio * period:
            raise fail(
                f"the beat job {job.name!r} ('{job.cron}', every {period.total_seconds() / 60:g} min) may be at most "
                f"{SECTION}.heartbeat_expiry_ratio_max = {ratio:g} periods late, got "
                f"{job.grace.total_seconds() / 60:g} min: its runs could not go stale", at=f"jobs[{i}].grace_minutes")


def parse(path: Path, table: dict[str, Any]) -> RuntimeContract:
    """Validate and type the `[runtime]` section (a section of plugins.contract.runbook.RunbookFile)."""
    return validate(RuntimeSection, table, path, SECTION).contract()


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
