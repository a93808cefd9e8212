"""The target plugin: which system a run judges, and (for `local`) starting it.

It reads targets.toml (where) and runbook.toml (what must hold), validates both before any
test runs, and resolves secrets from environment variables. For the local target it starts
the throwaway stack once per run — in the controlling process, also under pytest-xdist, and
hands its address to the workers — and stops it at the end, passed, failed or interrupted.
"""

from __future__ import annotations

import os
import re
import signal
import types
from pathlib import Path
from typing import Any

import pytest

from plugins.contract.redaction import Redactor
from plugins.contract.runbook import load_runbook
from plugins.contract.targets import STACK_BACKENDS, RunContext, Target, load_targets, resolve_target
from plugins.contract.toml_schema import ConfigError

ROOT = Path(__file__).resolve().parents[1]

EXIT_USAGE = 4
EXIT_INTERNAL = 3


_CTX = pytest.StashKey[RunContext]()
_REDACTOR = pytest.StashKey[Redactor]()
_STACK_OBJ = pytest.StashKey[Any]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("julia-conformance", "Agente Júlia conformance")
    group.addoption("--target", default="local", help="profile of targets.toml to judge (default: local)")
    group.addoption("--target-file", default=None, help="path of targets.toml (default: <rootdir>/targets.toml)")
    group.addoption("--runbook", default=None, help="path of runbook.toml (default: <rootdir>/runbook.toml)")
    group.addoption("--stack", default=None, choices=STACK_BACKENDS,
                    help="local stack backend (default: the local profile's `stack` key)")
    group.addoption("--pg", default=None, metavar="MAJOR",
                    help="local stack: the PostgreSQL major to run, 13-18 (default: the local profile's `pg` "
                         "key, else Debian's newest 15+)")
    group.addoption("--attach-stack", default=None, metavar="STACK_JSON",
                    help="use an already running local stack described by this file (self-tests)")
    group.addoption("--reports-dir", default=None, help="where run folders go (default: <rootdir>/reports)")
    group.addoption("--pooler", action="store_true",
                    help="local stack: reach the database through PgBouncer in transaction mode")
    group.addoption("--seed-scale", type=float, default=1.0, help="local seed volume, × the runbook's rates")
    group.addoption("--seed-days", type=int, default=3, help="local seed history, in days before the start")


def _resolve_path(config: pytest.Config, option: str, default: str) -> Path:
    value = config.getoption(option)
    if value:
        return Path(value).expanduser().resolve()
    return Path(config.rootpath, default)


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


RUN_ID_ENV = "JC_RUN_ID"
_RUN_ID_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def _controller_run_info(config: pytest.Config, target: Target) -> tuple[str, Path]:
    """The run's id (also its folder name): JC_RUN_ID when a pipeline names it, else new."""
    from fixtures.stack.launcher import new_run_id

    run_id = os.environ.get(RUN_ID_ENV) or new_run_id(target.name)
    if not _RUN_ID_OK.match(run_id):
        raise pytest.UsageError(
            f"{RUN_ID_ENV}: must be 1-100 characters of letters, digits, '.', '_' or '-', got {run_id!r}"
        )
    base = _resolve_path(config, "--reports-dir", "reports")
    return run_id, base / run_id


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Validate both contract files; any problem → one line and exit code 4, nothing started."""
    if config.option.help or getattr(config.option, "version", False):
        return
    targets_path = _resolve_path(config, "--target-file", "targets.toml")
    runbook_path = _resolve_path(config, "--runbook", "runbook.toml")
    try:
        profiles = load_targets(targets_path)
        target = resolve_target(
            targets_path, profiles, config.getoption("--target"),
            stack_override=config.getoption("--stack"), pg_override=config.getoption("--pg"),
        )
        runbook = load_runbook(runbook_path, target.dialect)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None

    if not _self_test_args(config):
        # The checks never use hypothesis, but its pytest plugin imports all of it in the
        # terminal summary (~0.5 s of a 2-3 s post-deploy gate): off for conformance runs.
        config.pluginmanager.set_blocked("hypothesispytest")

    redactor = Redactor()
    for value in target.secret_values():
        redactor.register(value)
    config.stash[_REDACTOR] = redactor

    if _is_worker(config):
        wi = config.workerinput  # type: ignore[attr-defined]
        run_id, run_dir = wi["jc_run_id"], Path(wi["jc_run_dir"])
    else:
        run_id, run_dir = _controller_run_info(config, target)
        if not config.option.collectonly:
            # SIGTERM (CI cancelling, `timeout`) ends the run like Ctrl-C does, on every target:
            # the local stack is torn down and an `interrupted` certificate is written (exit 2).
            signal.signal(signal.SIGTERM, _terminate_gracefully)

    # allure-pytest writes its results under the run's folder unless told otherwise (not
    # for a run of the project's own tests: they are no conformance run).
    if (hasattr(config.option, "allure_report_dir") and not config.option.allure_report_dir
            and not _self_test_args(config)):
        config.option.allure_report_dir = str(run_dir / "allure-results")

    config.stash[_CTX] = RunContext(
        target=target, runbook=runbook, run_id=run_id, run_dir=run_dir,
        api_url=target.api_url, database_url=target.database_url, redis_url=target.redis_url,
        stack=None,
    )
    if config.pluginmanager.hasplugin("xdist") and not _is_worker(config):
        config.pluginmanager.register(_XdistHooks(), "julia-conformance-xdist")


def run_context(config: pytest.Config) -> RunContext:
    try:
        return config.stash[_CTX]
    except KeyError:
        raise pytest.UsageError("julia-conformance: the target plugin is not configured") from None


def redactor(config: pytest.Config) -> Redactor:
    return config.stash[_REDACTOR]


@pytest.fixture(scope="session")
def ctx(pytestconfig: pytest.Config) -> RunContext:
    """What this run judges (fixtures.connections builds the clients from it)."""
    return run_context(pytestconfig)


@pytest.fixture(scope="session")
def secrets_redactor(pytestconfig: pytest.Config) -> Redactor:
    """The run's redactor: every secret of the target, for the clients' error messages."""
    return redactor(pytestconfig)


def _wants_stack(session: pytest.Session) -> bool:
    """A conformance run against `local` starts the stack; a run of only the project's own
    self-tests (tests/) does not — they manage their own stacks."""
    config = session.config
    ctx = config.stash.get(_CTX, None)
    if ctx is None or not ctx.target.local or config.option.collectonly:
        return False
    if config.getoption("--attach-stack"):
        return False
    return _runs_checks(config)


def _arg_paths(config: pytest.Config) -> list[Path]:
    paths = []
    for arg in config.args:
        path = Path(arg.split("::")[0])
        paths.append((Path(config.invocation_params.dir) / path).resolve() if not path.is_absolute() else path)
    return paths


def _runs_checks(config: pytest.Config) -> bool:
    """True when any argument lies outside tests/ (the checks of a conformance run)."""
    tests_dir = (config.rootpath / "tests").resolve()
    return any(not p.is_relative_to(tests_dir) for p in _arg_paths(config))


def _self_test_args(config: pytest.Config) -> bool:
    """True when the run includes the project's own tests (tests/, its synthetic checks aside)."""
    tests_dir = (config.rootpath / "tests").resolve()
    return any(p.is_relative_to(tests_dir) and not p.is_relative_to(tests_dir / "synthetic_checks")
               for p in _arg_paths(config))


def _attach(config: pytest.Config, stack_info: Any) -> None:
    ctx = config.stash[_CTX]
    config.stash[_CTX] = RunContext(
        target=ctx.target, runbook=ctx.runbook, run_id=ctx.run_id, run_dir=ctx.run_dir,
        api_url=stack_info.api_url,
        # The suite reads through the pooler when there is one (as on Supabase).
        database_url=getattr(stack_info, "pooler_url", None) or stack_info.database_url,
        redis_url=stack_info.redis_url, stack=stack_info,
    )
    red = config.stash[_REDACTOR]
    for value in (stack_info.database_url, stack_info.admin_url, stack_info.redis_url):
        red.register(_password_of(value))


def _password_of(url: str) -> str | None:
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).password
    except ValueError:
        return None


def _terminate_gracefully(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _repair_traceback(tb: Any) -> Any:
    """A signal can land on a bytecode instruction that has no line number (CPython 3.11),
    leaving a traceback entry whose ``tb_lineno`` is None; pytest's interrupt report then
    crashes with a TypeError and the run exits 1 instead of 2 (interrupted). Rebuild such a
    chain with the frame's current line so the report, and the teardown after it, go on."""
    entries = []
    while tb is not None:
        entries.append(tb)
        tb = tb.tb_next
    if all(e.tb_lineno is not None for e in entries):
        return entries[0] if entries else None
    rebuilt = None
    for e in reversed(entries):
        lineno, lasti = e.tb_lineno, e.tb_lasti
        if lineno is None:
            # no position either: -1 tells the traceback module not to look one up
            lineno, lasti = e.tb_frame.f_lineno or e.tb_frame.f_code.co_firstlineno, -1
        rebuilt = types.TracebackType(rebuilt, e.tb_frame, lasti, lineno)
    return rebuilt


@pytest.hookimpl(tryfirst=True)
def pytest_keyboard_interrupt(excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    seen: set[int] = set()
    exc: BaseException | None = excinfo.value
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc.__traceback__ = _repair_traceback(exc.__traceback__)
        exc = exc.__cause__ or exc.__context__
    value = excinfo.value
    excinfo._excinfo = (type(value), value, value.__traceback__)  # noqa: SLF001 — see above
    excinfo._traceback = None  # noqa: SLF001


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if _is_worker(config):
        info_json = config.workerinput.get("jc_stack")  # type: ignore[attr-defined]
        if info_json:
            from fixtures.stack.info import StackInfo

            _attach(config, StackInfo.from_json(info_json))
        return
    attach = config.getoption("--attach-stack")
    if attach:
        from fixtures.stack.info import StackInfo

        try:
            info = StackInfo.from_json(Path(attach).read_text())
        except (OSError, ValueError, TypeError) as exc:
            raise pytest.UsageError(f"{attach}: --attach-stack: unreadable stack file ({exc})") from None
        _attach(config, info)
        return
    if not _wants_stack(session):
        return
    from fixtures.stack.info import StackError
    from fixtures.stack.launcher import make_stack

    ctx = config.stash[_CTX]
    try:
        stack = make_stack(
            ctx.target.stack or "native", run_id=ctx.run_id,
            environment=ctx.target.environment, project_ref=ctx.target.project_ref,
            database_url=ctx.target.database_url, redis_url=ctx.target.redis_url,
            scale=config.getoption("--seed-scale"), pooler=config.getoption("--pooler"),
            days=config.getoption("--seed-days"), options=ctx.target.options, pg_major=ctx.target.pg,
        )
    except StackError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[_STACK_OBJ] = stack
    try:
        info = stack.start()
    except StackError as exc:
        config.stash[_STACK_OBJ] = None
        pytest.exit(f"local stack: {config.stash[_REDACTOR].scrub(str(exc))}", returncode=EXIT_INTERNAL)
    _attach(config, info)
    tr = config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None:
        tr.write_line(info.describe() + f"; api {info.api_url}")


class _XdistHooks:
    """Registered only when pytest-xdist is active (its hooks are unknown otherwise)."""

    @staticmethod
    def pytest_configure_node(node: Any) -> None:
        """Controller side: hand the run id, folder and running stack to each worker."""
        ctx = node.config.stash[_CTX]
        node.workerinput["jc_run_id"] = ctx.run_id
        node.workerinput["jc_run_dir"] = str(ctx.run_dir)
        node.workerinput["jc_stack"] = ctx.stack.to_json() if ctx.stack is not None else None


def stop_stack(config: pytest.Config) -> None:
    stack = config.stash.get(_STACK_OBJ, None)
    if stack is not None:
        config.stash[_STACK_OBJ] = None
        stack.stop()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    stop_stack(session.config)


def pytest_unconfigure(config: pytest.Config) -> None:
    # Second chance (e.g. an exception between sessionstart and sessionfinish).
    stop_stack(config)


def pytest_report_header(config: pytest.Config) -> list[str]:
    ctx = config.stash.get(_CTX, None)
    if ctx is None:
        return []
    where = ctx.target.api_url or f"local stack ({ctx.target.stack})"
    mode = "read-only" if ctx.read_only else "read-write (local)"
    return [
        f"julia-conformance: target {ctx.target.name} ({where}), {mode}; "
        f"runbook {ctx.runbook.path.name} sha256 {ctx.runbook.sha256[:12]}; run {ctx.run_id}",
    ]


__all__ = ["RunContext", "run_context", "redactor", "EXIT_USAGE", "EXIT_INTERNAL"]
