"""Options of the schema and migration checks: the application's migrations and the baseline.

``--migrations-dir`` is what makes rule 1 checkable before a merge: the PR's ``migrations/``
folder against production's migration log (``pytest --target prod -m premerge
--migrations-dir ../app/migrations``). ``--schema-baseline`` / ``--write-schema-baseline``
compare or record the critical tables' columns. Every path is validated before anything
connects: a wrong one costs one line and exit code 4.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fixtures.schema_baseline import BaselineError, Fingerprint, load
from plugins.contract.toml_schema import ConfigError
from plugins.target import run_context


@dataclass(frozen=True)
class SchemaOptions:
    migrations_dir: Path | None
    baseline_path: Path | None
    baseline: Fingerprint | None
    write_baseline: Path | None


_OPTIONS = pytest.StashKey[SchemaOptions]()
_STARTED = pytest.StashKey[float]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("julia-conformance")
    group.addoption("--migrations-dir", default=None, metavar="PATH",
                    help="the application's migrations/ folder: every file must be applied (rule 1)")
    group.addoption("--schema-baseline", default=None, metavar="FILE",
                    help="compare the critical tables' columns with this baseline (schema drift)")
    group.addoption("--write-schema-baseline", default=None, metavar="FILE",
                    help="write the critical tables' columns to FILE as the new baseline")


# CLI option -> the targets.toml profile key that gives its default.
_PROFILE_KEYS = {"--migrations-dir": "migrations_dir", "--schema-baseline": "schema_baseline"}


def _path(config: pytest.Config, option: str) -> tuple[Path | None, str]:
    """The option's path (the CLI first, else the target profile's key, relative to
    targets.toml) and how to name its origin in an error."""
    value = config.getoption(option)
    base, origin = Path(config.invocation_params.dir), option
    if value is None and option in _PROFILE_KEYS:
        target = run_context(config).target
        value = target.options.get(_PROFILE_KEYS[option])
        base = target.path.parent
        origin = f"{target.path}: targets.{target.name}.{_PROFILE_KEYS[option]}"
    if value is None:
        return None, origin
    if not str(value).strip():
        raise pytest.UsageError(f"{origin}: empty path")
    path = Path(value).expanduser()
    return (path if path.is_absolute() else base / path).resolve(), origin


def validate(config: pytest.Config) -> SchemaOptions:
    """Each problem → pytest.UsageError naming the option or profile key (exit code 4)."""
    migrations, origin = _path(config, "--migrations-dir")
    if migrations is not None:
        if not migrations.is_dir():
            raise pytest.UsageError(f"{origin} {migrations}: not a directory")
        if not any(migrations.glob("*.sql")):
            raise pytest.UsageError(
                f"{origin} {migrations}: no *.sql file (is it the application's migrations/ folder?)"
            )
    baseline_path, origin = _path(config, "--schema-baseline")
    baseline = None
    if baseline_path is not None:
        try:
            baseline = load(baseline_path)
        except BaselineError as exc:
            raise pytest.UsageError(f"{origin} {baseline_path}: {exc}") from None
    write, _ = _path(config, "--write-schema-baseline")
    if write is not None:
        if write.is_dir():
            raise pytest.UsageError(f"--write-schema-baseline {write}: is a directory")
        if not write.parent.is_dir():
            raise pytest.UsageError(f"--write-schema-baseline {write}: folder {write.parent} does not exist")
    return SchemaOptions(migrations, baseline_path, baseline, write)


def pytest_configure(config: pytest.Config) -> None:
    if config.option.help or getattr(config.option, "version", False):
        return
    options = validate(config)
    # The [schema] section names endpoints of [endpoints]: check them together, up front.
    runbook = run_context(config).runbook
    try:
        contract = runbook.section("schema")
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    for i, src in enumerate(contract.expected_version_from):
        if src.endpoint not in runbook.endpoints:
            known = ", ".join(sorted(runbook.endpoints))
            raise pytest.UsageError(
                f"{runbook.path}: schema.expected_version_from[{i}].endpoint: unknown endpoint "
                f"{src.endpoint!r} (known: {known})"
            )
    config.stash[_OPTIONS] = options
    config.stash[_STARTED] = time.time()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Say so when a requested baseline was not written (its check was not selected):
    a CI step that believes it refreshed the baseline must not be silently wrong."""
    options = config.stash.get(_OPTIONS, None)
    if options is None or options.write_baseline is None:
        return
    path = options.write_baseline
    if path.exists() and path.stat().st_mtime >= config.stash[_STARTED] - 1:
        terminalreporter.write_line(f"julia-conformance: schema baseline written to {path}")
    else:
        terminalreporter.write_line(
            f"julia-conformance: --write-schema-baseline {path}: NOT written (the schema drift "
            "check JC-SCHEMA-03 did not run; it is in the nightly tier)", yellow=True)


@pytest.fixture(scope="session")
def schema_options(pytestconfig: pytest.Config) -> SchemaOptions:
    return pytestconfig.stash[_OPTIONS]
