"""Where a run writes (``--reports-dir``): all or nothing, and a disk that cannot take it as
one line and exit 3.

A run's files are what a pipeline and a person read after it, so a run that cannot write them
must leave none of them half-written. The certificate, its page and metrics.prom are written
beside their final names first and published together — the JSON last, so a reader that
finds it finds the rest — and `latest` is pointed at the run only then. A disk that fills up
(or any other write that fails) anywhere under the reports directory — already at the start
(a probe write, before anything runs or starts), under an Allure result mid-run (the run
stops after that test), or under the certificate at the end — ends the run with exit 3 and
one line naming the directory::

    julia-conformance: no space left on device under --reports-dir /srv/reports (writing
    certificate.json): not certified, no certificate written

Nothing of the run is published then: its folder is removed when this run created it (else
only the run's own temporary files), and `latest` keeps naming the previous run.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import allure_commons
import pytest

EXIT_INTERNAL = 3
PROBE_BYTES = 64 * 1024  # the start-of-run probe: a disk without this much room cannot take a run's report
_NO_ROOM = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}
_WORKER_KEY = "jc_reports_dir_problem"


@dataclass
class _State:
    base: Path
    run_dir: Path
    run_dir_existed: bool
    session: pytest.Session | None = None
    problem: str | None = None
    abandoned: bool = False
    announced: bool = False


_STATE = pytest.StashKey[_State]()


def cause(exc: OSError) -> str:
    """``no space left on device``, ``disk quota exceeded``, else the system's words."""
    if exc.errno in _NO_ROOM:
        return _NO_ROOM[exc.errno]
    return (exc.strerror or type(exc).__name__).lower()


def problem_line(base: Path, exc: OSError, writing: str) -> str:
    return (f"julia-conformance: {cause(exc)} under --reports-dir {base} (writing {writing}): "
            "not certified, no certificate written")


# --- the run's files, all or nothing ---------------------------------------------------------


class RunFiles:
    """Files of a run folder staged beside their final names, then published in order."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.staged: list[tuple[Path, Path]] = []
        self.published: list[Path] = []
        self.writing = "the run folder"  # what was being written when a write failed

    def stage(self, name: str, text: str) -> None:
        self.writing = name
        self.run_dir.mkdir(parents=True, exist_ok=True)
        final = self.run_dir / name
        tmp = final.with_name(f".{name}.{os.getpid()}.tmp")
        self.staged.append((tmp, final))
        with open(tmp, "wb") as fh:
            fh.write(text.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())  # ENOSPC shows here at the latest, before anything is published

    def publish(self) -> None:
        for tmp, final in self.staged:
            self.writing = final.name
            os.replace(tmp, final)
            self.published.append(final)
        self.staged = []

    def discard(self) -> None:
        for path in [tmp for tmp, _ in self.staged] + self.published:
            try:
                path.unlink()
            except OSError:
                pass
        self.staged, self.published = [], []


def write_all(session: pytest.Session, run_dir: Path, files: list[tuple[str, str]],
              before: Callable[[], None], after: Callable[[Path], None]) -> bool:
    """Stage ``files`` (name, text) in ``run_dir``, run ``before`` (other writes of the run),
    publish them in order, then ``after(run_dir)`` (pointing `latest`). Any OSError undoes
    what was staged or published and abandons the run (exit 3); False then."""
    staged = RunFiles(run_dir)
    try:
        for name, text in files:
            staged.stage(name, text)
        staged.writing = "allure-results"
        before()
        staged.publish()
        staged.writing = "the latest link"
        after(run_dir)
    except OSError as exc:
        staged.discard()
        abandon(session, exc, staged.writing)
        return False
    return True


# --- the run's state ----------------------------------------------------------------------------


def _state(config: pytest.Config) -> _State | None:
    return config.stash.get(_STATE, None)


def record(config: pytest.Config, exc: OSError, writing: str) -> str:
    """Remember the first failed write; the run stops after the current test."""
    state = _state(config)
    if state is None:  # (not a conformance run: nothing to stop)
        return problem_line(Path("."), exc, writing)
    if state.problem is None:
        state.problem = problem_line(state.base, exc, writing)
        if hasattr(config, "workeroutput"):
            config.workeroutput[_WORKER_KEY] = state.problem  # type: ignore[attr-defined]
    if state.session is not None and not state.session.shouldfail:
        state.session.shouldfail = state.problem
    return state.problem


def abandon(session: pytest.Session, exc: OSError | None = None, writing: str = "") -> bool:
    """If a write under the reports directory failed (now: ``exc``, or earlier in the run),
    remove what the run left, say it in one line and make the exit code 3. True if abandoned."""
    config = session.config
    state = _state(config)
    if state is None:
        return False
    if exc is not None:
        record(config, exc, writing)
    if state.problem is None:
        return False
    if not state.abandoned:
        state.abandoned = True
        if not state.run_dir_existed:
            shutil.rmtree(state.run_dir, ignore_errors=True)
        else:
            for tmp in state.run_dir.glob(f".*.{os.getpid()}.tmp"):
                tmp.unlink(missing_ok=True)
        if not state.announced:
            session.shouldfail = state.problem  # the terminal's last "!!! … !!!" line says it once
    session.exitstatus = EXIT_INTERNAL
    return True


# --- hooks --------------------------------------------------------------------------------------


def _probe(base: Path) -> None:
    """Create the reports directory and write (and sync) PROBE_BYTES there, then remove it."""
    base.mkdir(parents=True, exist_ok=True)
    probe = base / f".jc-space-probe.{os.getpid()}"
    try:
        with open(probe, "wb") as fh:
            fh.write(b"\0" * PROBE_BYTES)
            fh.flush()
            os.fsync(fh.fileno())
    finally:
        probe.unlink(missing_ok=True)


def pytest_configure(config: pytest.Config) -> None:
    """Before anything runs or starts (and before allure-pytest creates its results folder):
    can the reports directory take a run? No room → exit 3; not writable at all → exit 4."""
    from plugins.target import _self_test_args, run_context

    if config.option.help or config.option.collectonly:
        return
    try:
        ctx = run_context(config)
    except pytest.UsageError:
        return
    base = ctx.run_dir.parent
    state = _State(base=base, run_dir=ctx.run_dir, run_dir_existed=ctx.run_dir.exists())
    config.stash[_STATE] = state
    # (a worker of pytest-xdist: the controller probed; the project's own tests write no report)
    if not hasattr(config, "workerinput") and not _self_test_args(config):
        try:
            _probe(base)
        except OSError as exc:
            if exc.errno in _NO_ROOM:
                pytest.exit(f"julia-conformance: {cause(exc)} under --reports-dir {base}: nothing was run "
                            "(a run needs room for its certificate and report)", returncode=EXIT_INTERNAL)
            raise pytest.UsageError(f"--reports-dir {base}: cannot write there ({cause(exc)})") from None
    if _allure_on(config):
        guard = _AllureWriteGuard(config)
        allure_commons.plugin_manager.register(guard)
        config.add_cleanup(lambda: allure_commons.plugin_manager.unregister(guard))


def _allure_on(config: pytest.Config) -> bool:
    return bool(getattr(config.option, "allure_report_dir", None))


def pytest_sessionstart(session: pytest.Session) -> None:
    state = _state(session.config)
    if state is not None:
        state.session = session


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    abandon(session)  # a run whose certificate was not even attempted (no invariants selected)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """Controller (pytest-xdist): a worker that could not write reports it here."""
    problem = (getattr(node, "workeroutput", None) or {}).get(_WORKER_KEY)
    state = _state(node.config)
    if problem and state is not None and state.problem is None:
        state.problem = problem
        state.announced = True  # xdist stops the run with the worker's shouldfail: it prints the line


class _AllureWriteGuard:
    """An allure_commons plugin around the result writer (allure-pytest's file logger): a
    result or attachment that cannot be written stops the run after the current test instead
    of crashing pytest (an INTERNALERROR traceback, exit 1)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def _guard(self, what: str) -> Iterator[None]:
        try:
            return (yield)
        except OSError as exc:
            record(self.config, exc, what)
            return None

    @allure_commons.hookimpl(wrapper=True)
    def report_result(self, result: Any) -> Any:
        return (yield from self._guard("an Allure result"))

    @allure_commons.hookimpl(wrapper=True)
    def report_container(self, container: Any) -> Any:
        return (yield from self._guard("an Allure result"))

    @allure_commons.hookimpl(wrapper=True)
    def report_globals(self, globals_item: Any) -> Any:
        return (yield from self._guard("an Allure result"))

    @allure_commons.hookimpl(wrapper=True)
    def report_attached_file(self, source: Any, file_name: str) -> Any:
        return (yield from self._guard(f"the attachment {file_name}"))

    @allure_commons.hookimpl(wrapper=True)
    def report_attached_data(self, body: Any, file_name: str) -> Any:
        return (yield from self._guard(f"the attachment {file_name}"))
