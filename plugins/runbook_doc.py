"""The runbook lint's plugin: ``--runbook-doc PATH``, its contract section, and its reports.

The runbook says it must be "reviewed and updated … after each incident"; the lint makes
that review mechanical. Given the runbook's markdown, every copy-pasteable command in it is
tried read-only against the target (checks/test_runbook_lint.py, marker ``runbook``). The
lint belongs to the nightly run only when a document is given: without one there is
nothing to lint, and its checks skip saying so.

runbook.toml ``[runbook_lint]`` (plugins.contract.runbook_lint) says how the document names
production (its URL), which table columns list variable names, and how a placeholder literal
looks; the target profile may list the app's real variable names (``app_env_vars`` in
targets.toml).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fixtures.runbook_doc import ENV_NAME, RunbookDoc, parse_runbook
from plugins.contract.runbook_lint import SECTION, LintContract
from plugins.contract.toml_schema import ConfigError
from plugins.needs_option import skip_unless_given
from plugins.target import redactor, run_context

OPTION = "--runbook-doc"
APP_ENV_VARS = "app_env_vars"
REPORT_DIR = "runbook-lint"


_DOC = pytest.StashKey[RunbookDoc]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("julia-conformance")
    group.addoption(
        OPTION, default=None, metavar="PATH",
        help="the runbook markdown whose commands `-m runbook` checks against the target",
    )


def pytest_configure(config: pytest.Config) -> None:
    """A bad document or ``app_env_vars`` costs one line and exit code 4, before any test."""
    if config.option.help or getattr(config.option, "version", False):
        return
    ctx = run_context(config)
    names = ctx.target.options.get(APP_ENV_VARS)
    if names is not None:
        where = f"{ctx.target.path}: targets.{ctx.target.name}.{APP_ENV_VARS}"
        for i, name in enumerate(names):
            if not isinstance(name, str) or not ENV_NAME.match(name):
                raise pytest.UsageError(f"{where}[{i}]: must be an environment variable name, got {name!r}")
    value = config.getoption(OPTION)
    if not value:
        return
    path = Path(value).expanduser()
    path = (Path(config.invocation_params.dir) / path).resolve() if not path.is_absolute() else path
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise pytest.UsageError(f"{path}: {OPTION}: file not found") from None
    except IsADirectoryError:
        raise pytest.UsageError(f"{path}: {OPTION}: is a directory, not a markdown file") from None
    except UnicodeDecodeError:
        raise pytest.UsageError(f"{path}: {OPTION}: not UTF-8 text") from None
    except OSError as exc:
        raise pytest.UsageError(f"{path}: {OPTION}: cannot read: {exc.strerror}") from None
    try:
        contract: LintContract = ctx.runbook.section(SECTION)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[_DOC] = parse_runbook(
        text, path, production_urls=contract.production_urls,
        env_table_columns=contract.env_table_columns,
    )


def _named_files(config: pytest.Config) -> set[Path]:
    base = Path(config.invocation_params.dir)
    paths = {(base / arg.split("::")[0]).resolve() for arg in config.args}
    return {p for p in paths if p.is_file()}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With a document the lint is part of the nightly run (marked before ``-m`` selects).

    Without one, a run that did not ask for the lint (no ``-m runbook``, its module not
    named) does not contain it: a skipped invariant would make every plain run
    not-certified. Asked for without a document, its checks skip, saying why."""
    lint = [item for item in items if item.get_closest_marker("runbook") is not None]
    if not lint:
        return
    if _DOC in config.stash:
        for item in lint:
            if item.get_closest_marker("nightly") is None:
                item.add_marker(pytest.mark.nightly)
        return
    if "runbook" in (config.option.markexpr or ""):
        return
    named = _named_files(config)
    dropped = [item for item in lint if item.path.resolve() not in named]
    if dropped:
        keep = set(map(id, dropped))
        items[:] = [item for item in items if id(item) not in keep]
        config.hook.pytest_deselected(items=dropped)


@pytest.fixture(scope="session")
def runbook_doc(pytestconfig: pytest.Config) -> RunbookDoc:
    """The runbook's commands, parsed once; skips the lint when no document was given."""
    doc = pytestconfig.stash.get(_DOC, None)
    if doc is None:
        skip_unless_given(f"{OPTION} PATH", f"runbook lint needs {OPTION} PATH (the runbook markdown): nothing to lint")
    return doc


@pytest.fixture(scope="session")
def lint_contract(pytestconfig: pytest.Config) -> LintContract:
    contract: LintContract = run_context(pytestconfig).runbook.section(SECTION)
    return contract


def write_lint_report(config: pytest.Config, inv_id: str, doc: RunbookDoc, rows: list[dict[str, Any]]) -> Path:
    """Every command's verdict, line by line, beside the certificate
    (``reports/<run>/runbook-lint/<id>.json``): the certificate's one line says what broke,
    this file says where, so the runbook can be fixed line by line."""
    ctx = run_context(config)
    folder = ctx.run_dir / REPORT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{inv_id}.json"
    body = {"invariant": inv_id, "document": str(doc.path), "target": ctx.target.name, "rows": rows}
    out.write_text(redactor(config).scrub(json.dumps(body, indent=2, ensure_ascii=False, default=str)) + "\n")
    return out
