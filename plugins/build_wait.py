"""``--expect-build``: wait until the deployment serves the build under test, then judge it once.

A deploy pipeline starts the gate right after ``railway up --detach``: for a while the old
build still answers, and a gate that judges it certifies the wrong thing (the real team's CI
sleeps 120 s and hopes). With ``--expect-build SHA_OR_DEPLOYMENT_ID`` the run first asks the
app which build it serves — where the contract says it reports its build
(``runbook.toml [report.identity]`` ``git_sha`` / ``deployment_id``; the deployment dialect
reads ``version.git_sha`` / ``version.deployment_id`` of ``/health/deep``) — with GET only,
bounded by ``--wait-timeout`` and with a growing pause between polls, and only then runs the
checks, once. Still another build at the deadline: nothing is judged, every selected
invariant ends ``error`` with one line ("deployment still reports abc123 after 300 s;
expected def456"), the run exits with its own code (``EXIT_STALE_BUILD``), and the
certificate records the expected build, the one seen, and the wait in its timeline.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import pytest
import tenacity

from plugins.contract.verdict import Undecidable, one_line

# The deployment never reported the expected build within --wait-timeout: nothing was judged.
# (pytest keeps 5 for "no tests collected"; the suite's own codes are 0-4.)
EXIT_STALE_BUILD = 6
DEFAULT_WAIT_TIMEOUT_S = 300.0
MAX_WAIT_TIMEOUT_S = 7200.0
# The pause between polls: 1 s, then doubling, never more than 15 s (a build that goes live
# is seen within 15 s; a slow one costs about 25 requests over 300 s).
FIRST_DELAY_S = 1.0
BACKOFF_FACTOR = 2.0
MAX_DELAY_S = 15.0
BUILD_FIELDS = ("git_sha", "deployment_id")
# What the certificate keeps of the polls: the first answer and every change, at most this many.
MAX_SEEN = 20
_BUILD_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/+-]{0,199}$")
_HEX = re.compile(r"^[0-9a-f]{7,64}$")
# A git sha given short (7+ hex digits) matches the full sha the app reports, and back.
MIN_SHA_PREFIX = 7

_RECORD = pytest.StashKey["WaitRecord"]()
_WORKER_KEY = "jc_build_wait"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass(frozen=True)
class Observation:
    """One poll: the build the app reported (as [report.identity] reads it), or why none."""

    at: str
    git_sha: str | None = None
    deployment_id: str | None = None
    problem: str | None = None

    @property
    def build(self) -> str | None:
        return self.git_sha or self.deployment_id

    def same_answer(self, other: Observation | None) -> bool:
        return other is not None and (self.git_sha, self.deployment_id, self.problem) == (
            other.git_sha, other.deployment_id, other.problem)

    def describe(self) -> str:
        if self.build is None:
            return f"no build ({self.problem or 'the app reports neither git sha nor deployment id'})"
        if self.git_sha and self.deployment_id:
            return f"{self.git_sha} (deployment {self.deployment_id})"
        return self.build


def matches(expected: str, obs: Observation) -> bool:
    """The app serves ``expected``: its git sha or deployment id equals it (case aside), or
    one git sha is a prefix of the other (``github.sha`` is 40 digits; an app may report 12)."""
    want = expected.strip().lower()
    for value in (obs.git_sha, obs.deployment_id):
        if value is not None and value.strip().lower() == want:
            return True
    sha = (obs.git_sha or "").strip().lower()
    if _HEX.match(want) and _HEX.match(sha):
        return sha.startswith(want) or want.startswith(sha)
    return False


def delays(first: float = FIRST_DELAY_S, factor: float = BACKOFF_FACTOR, cap: float = MAX_DELAY_S) -> Iterator[float]:
    """The pauses between polls: growing, then steady at ``cap``."""
    delay = first
    while True:
        yield delay
        delay = min(delay * factor, cap)


def stale_message(expected: str, timeout_s: float, last: Observation | None) -> str:
    """The one line a timed-out wait leaves in the certificate, the terminal and every row."""
    if last is not None and last.build is not None:
        return f"deployment still reports {last.build} after {timeout_s:g} s; expected {expected}"
    why = last.problem if last is not None and last.problem else "no answer"
    return one_line(f"deployment did not report its build within {timeout_s:g} s (last: {why}); "
                    f"expected {expected}", 500)


@dataclass
class WaitRecord:
    """The wait, as the certificate's timeline records it."""

    expected: str
    timeout_s: float
    started_at: str
    finished_at: str | None = None
    # waiting | live | timed-out | interrupted
    outcome: str = "waiting"
    waited_s: float = 0.0
    polls: int = 0
    seen: list[Observation] = field(default_factory=list)
    message: str | None = None

    @property
    def last(self) -> Observation | None:
        return self.seen[-1] if self.seen else None

    def certificate(self) -> dict[str, Any]:
        last = self.last
        return {
            "expected": self.expected,
            "outcome": self.outcome,
            "observed": ({"git_sha": last.git_sha, "deployment_id": last.deployment_id, "problem": last.problem}
                         if last is not None else None),
            "message": self.message,
            "timeout_s": self.timeout_s,
            "waited_s": round(self.waited_s, 1),
            "polls": self.polls,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "seen": [asdict(o) for o in self.seen],
        }

    def to_json(self) -> str:
        return json.dumps(self.certificate())

    @classmethod
    def from_json(cls, text: str) -> WaitRecord:
        data = json.loads(text)
        return cls(expected=data["expected"], timeout_s=data["timeout_s"], started_at=data["started_at"],
                   finished_at=data["finished_at"], outcome=data["outcome"], waited_s=data["waited_s"],
                   polls=data["polls"], seen=[Observation(**o) for o in data["seen"]], message=data["message"])


def wait_for_build(expected: str, timeout_s: float, observe: Callable[[], Observation], *,
                   sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                   on_answer: Callable[[WaitRecord, Observation], None] | None = None,
                   record: WaitRecord | None = None) -> WaitRecord:
    """Poll until ``observe`` reports ``expected`` or ``timeout_s`` has passed.

    One poll at least, and one at the deadline: the verdict "still the old build" rests on an
    answer from the end of the wait, never on a guess. Each pause is cut to the time left, so
    the wait ends within ``timeout_s`` plus one request's timeouts. ``on_answer`` hears every
    answer that differs from the one before (the terminal shows progress). KeyboardInterrupt
    leaves the record ``interrupted`` and propagates.
    """
    rec = record or WaitRecord(expected=expected, timeout_s=timeout_s, started_at=_now())
    start = clock()
    deadline = start + timeout_s
    pauses = delays()

    def poll() -> Observation:
        obs = observe()
        rec.polls += 1
        if not obs.same_answer(rec.last):
            if len(rec.seen) < MAX_SEEN:
                rec.seen.append(obs)
            else:
                rec.seen[-1] = obs  # keep the latest answer, whatever came between
            if on_answer is not None:
                on_answer(rec, obs)
        return obs

    polling = tenacity.Retrying(
        retry=tenacity.retry_if_result(lambda obs: not matches(expected, obs)),
        # the next pause, cut to the time left; none left: the last answer is the verdict
        wait=lambda state: max(0.0, min(next(pauses), deadline - clock())),
        stop=lambda state: deadline - clock() <= 0,
        sleep=sleep,
        retry_error_callback=lambda state: state.outcome.result() if state.outcome is not None else None,
    )
    try:
        last = polling(poll)
        if matches(expected, last):
            rec.outcome = "live"
        else:
            rec.outcome = "timed-out"
            rec.message = stale_message(expected, timeout_s, last)
    except KeyboardInterrupt:
        rec.outcome = "interrupted"
        rec.message = f"interrupted while waiting for build {expected}"
        raise
    finally:
        rec.waited_s = clock() - start
        rec.finished_at = _now()
    return rec


def observe_build(api_url: str, runbook: Any, redactor: Any) -> Observation:
    """One GET of the endpoint(s) [report.identity] names for the build: a fresh client each
    time, so a refused connection during the restart is not remembered as a dead API."""
    from plugins.report_identity import app_identity

    facts = app_identity(api_url, runbook, redactor, fields=BUILD_FIELDS)
    git_sha, deployment_id = facts.get("git_sha"), facts.get("deployment_id")
    # An unhealthy answer (503) still says which build gives it: a problem only without a build.
    problems = facts.get("problems", []) if git_sha is None and deployment_id is None else []
    return Observation(at=_now(), git_sha=git_sha, deployment_id=deployment_id,
                       problem=one_line("; ".join(problems), 200) if problems else None)


def not_judged_markdown(cert: dict[str, Any]) -> list[str]:
    """certificate.md, right under the verdict: the one line of a wait that timed out."""
    wait = cert.get("build_wait") or {}
    if wait.get("outcome") != "timed-out":
        return []
    return ["", f"**Not judged**: {wait.get('message')} (exit {EXIT_STALE_BUILD}: the checks did not run)."]


def timeline_markdown(cert: dict[str, Any]) -> list[str]:
    """certificate.md's timeline of a run that waited for its build: start, each build the
    deployment reported while the run waited, the checks, the certificate."""
    wait = cert.get("build_wait")
    if not wait:
        return []
    out = ["## Timeline", "", f"- {cert.get('started_at')} run started; waiting up to {wait.get('timeout_s'):g} s "
                              f"for build {wait.get('expected')}"]
    for obs in wait.get("seen") or []:
        seen = Observation(**obs)
        mark = " (the expected build)" if matches(str(wait.get("expected")), seen) else ""
        out.append(f"- {seen.at} deployment reports {seen.describe()}{mark}")
    polls = wait.get("polls")
    if wait.get("outcome") == "live":
        out.append(f"- {wait.get('finished_at')} build {wait.get('expected')} live after {wait.get('waited_s')} s "
                   f"({polls} polls): checks run once")
    elif wait.get("outcome") == "timed-out":
        out.append(f"- {wait.get('finished_at')} deadline after {wait.get('waited_s')} s ({polls} polls): "
                   "nothing judged")
    else:
        out.append(f"- {wait.get('finished_at')} interrupted while waiting ({polls} polls)")
    out += [f"- {cert.get('finished_at')} certificate written", ""]
    return out


# --- the pytest plugin ----------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("julia-conformance", "Agente Júlia conformance")
    group.addoption("--expect-build", dest="jc_expect_build", default=None, metavar="SHA_OR_DEPLOYMENT_ID",
                    help="before judging, wait until the deployment reports this build (its git sha — a "
                         "prefix of 7+ digits is enough — or deployment id, where runbook.toml "
                         "[report.identity] reads them); still another build at --wait-timeout: exit 6, "
                         "nothing judged")
    group.addoption("--wait-timeout", dest="jc_wait_timeout", default=None, metavar="SECONDS",
                    help=f"how long --expect-build waits (default {DEFAULT_WAIT_TIMEOUT_S:g} s, at most "
                         f"{MAX_WAIT_TIMEOUT_S:g} s)")


def _options(config: pytest.Config) -> tuple[str, float] | None:
    """The expected build and the wait's deadline, checked before anything starts (exit 4)."""
    expected = config.getoption("jc_expect_build")
    raw_timeout = config.getoption("jc_wait_timeout")
    if expected is None:
        if raw_timeout is not None:
            raise pytest.UsageError("--wait-timeout: only with --expect-build (the build to wait for)")
        return None
    expected = expected.strip()
    if not _BUILD_OK.match(expected):
        raise pytest.UsageError(
            "--expect-build: must be a git sha or deployment id (1-200 letters, digits, '.', '_', ':', '/', "
            f"'+' or '-'), got {expected!r}")
    timeout = DEFAULT_WAIT_TIMEOUT_S
    if raw_timeout is not None:
        try:
            timeout = float(raw_timeout)
        except ValueError:
            timeout = math.nan
        if not math.isfinite(timeout) or not 0 < timeout <= MAX_WAIT_TIMEOUT_S:
            raise pytest.UsageError(f"--wait-timeout: must be a number of seconds greater than 0 and at most "
                                    f"{MAX_WAIT_TIMEOUT_S:g}, got {raw_timeout!r}")
    from plugins.target import run_context

    ctx = run_context(config)
    contract = ctx.runbook.section("report")
    if not any(name in contract.identity for name in BUILD_FIELDS):
        raise pytest.UsageError(f"{ctx.runbook.path}: report.identity: --expect-build needs git_sha or "
                                "deployment_id (where the app reports its build)")
    return expected, timeout


def wait_record(config: pytest.Config) -> WaitRecord | None:
    """The run's wait (None without --expect-build, or before the session started)."""
    return config.stash.get(_RECORD, None)


class BuildWaitPlugin:
    def __init__(self, config: pytest.Config, expected: str, timeout: float) -> None:
        self.config = config
        self.expected = expected
        self.timeout = timeout

    def _say(self, text: str, **markup: bool) -> None:
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None:
            tr.write_line(f"julia-conformance: {text}", **markup)
            tr.flush()

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # After the target plugin attached (or started) the stack, before pytest-xdist starts
        # its workers (trylast): they are told the outcome through workerinput.
        from plugins.target import redactor, run_context

        ctx = run_context(self.config)
        red = redactor(self.config)
        if not ctx.api_url:  # (a profile without api_url is refused at load; a stack has one)
            raise pytest.UsageError(f"--expect-build: target {ctx.target.name} has no API URL to ask")
        record = WaitRecord(expected=self.expected, timeout_s=self.timeout, started_at=_now())
        self.config.stash[_RECORD] = record
        self._say(f"waiting up to {self.timeout:g} s for build {self.expected} ({red.scrub(ctx.api_url)})")

        def heard(rec: WaitRecord, obs: Observation) -> None:
            if not matches(self.expected, obs):
                self._say(f"deployment reports {red.scrub(obs.describe())} (poll {rec.polls}); "
                          f"waiting for {self.expected}")

        try:
            wait_for_build(self.expected, self.timeout, lambda: observe_build(ctx.api_url, ctx.runbook, red),
                           on_answer=heard, record=record)
        except KeyboardInterrupt:
            # Re-raised once the session is running (pytest_runtestloop), so the interrupted
            # run still writes its certificate.
            return
        if record.outcome == "live":
            self._say(f"build {self.expected} is live after {record.waited_s:.0f} s ({record.polls} "
                      f"poll{'s' if record.polls != 1 else ''}); judging it", green=True)
        else:
            record.message = red.scrub(record.message or "")
            self._say(f"not judged: {record.message}", red=True, bold=True)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        record = wait_record(self.config)
        if record is not None and record.outcome == "interrupted":
            raise KeyboardInterrupt(record.message)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        _refuse_stale(self.config)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        # After the certificate plugin (tryfirst) set "not certified" → 1: the stale build has
        # its own code, so a pipeline tells "the new build is broken" from "it never came".
        record = wait_record(self.config)
        if record is not None and record.outcome == "timed-out" and session.exitstatus in (0, 1):
            session.exitstatus = EXIT_STALE_BUILD

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        record = wait_record(self.config)
        if record is not None and record.outcome == "timed-out":
            terminalreporter.write_line(f"julia-conformance: not judged (exit {EXIT_STALE_BUILD}): {record.message}",
                                        red=True, bold=True)


def _refuse_stale(config: pytest.Config) -> None:
    """Every check of a run whose build never came ends ``error`` with the wait's one line,
    before its fixtures touch anything: judging the old build would certify the wrong one."""
    record = wait_record(config)
    if record is not None and record.outcome == "timed-out":
        raise Undecidable(f"not judged: {record.message}")


class _WorkerSide:
    """On a pytest-xdist worker: the controller's wait outcome, from workerinput."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        _refuse_stale(self.config)


class _XdistHooks:
    """Registered only when pytest-xdist is active (its hooks are unknown otherwise)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_configure_node(self, node: Any) -> None:
        record = wait_record(self.config)
        node.workerinput[_WORKER_KEY] = record.to_json() if record is not None else None


def pytest_configure(config: pytest.Config) -> None:
    if config.option.help or getattr(config.option, "version", False):
        return
    if hasattr(config, "workerinput"):
        text = config.workerinput.get(_WORKER_KEY)  # type: ignore[attr-defined]
        if text:
            config.stash[_RECORD] = WaitRecord.from_json(text)
            config.pluginmanager.register(_WorkerSide(config), "julia-conformance-build-wait-worker")
        return
    options = _options(config)
    if options is None:
        return
    config.pluginmanager.register(BuildWaitPlugin(config, *options), "julia-conformance-build-wait")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(config), "julia-conformance-build-wait-xdist")
