"""`--app-repo PATH`: the application's repository, scanned for committed secrets (JC-SEC-05).

The runbook keeps every secret in Railway variables, "NOT in code or .env files"; the suite
can only check that where it can see the code, so the operator points it at a checkout:
with the option, or with a profile's `app_repo` key in targets.toml (relative to that
file). The option wins. A local target without either runs the reference app, whose code
(fixtures/stack/refapp) is then the application's code.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from plugins.target import run_context

_OPTION = "--app-repo"
PROFILE_KEY = "app_repo"
REFERENCE_APP = Path(__file__).resolve().parents[1] / "fixtures" / "stack" / "refapp"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("julia-conformance", "Agente Júlia conformance")
    group.addoption(
        _OPTION, default=None, metavar="PATH",
        help="checkout of the application's repository, scanned for committed secrets "
        "(code and .env files); default: the profile's `app_repo`; locally the reference app; "
        "else JC-SEC-05 is skipped",
    )
    group.addoption(
        "--judge-secret-rotation", action="store_true", default=False,
        help="judge the rotation schedule (JC-SEC-04) even on a profile with "
        "judge_secret_rotation = false (the local one)",
    )


def app_repo_path(config: pytest.Config) -> tuple[Path | None, str]:
    """The checkout to scan and where it was named (for messages)."""
    value = config.getoption(_OPTION, None)
    if value:
        return Path(value).expanduser().resolve(), f"{_OPTION} {value}"
    target = run_context(config).target
    profile_value = target.options.get(PROFILE_KEY)
    if profile_value:
        where = f"{target.path}: targets.{target.name}.{PROFILE_KEY}"
        return (target.path.parent / Path(profile_value).expanduser()).resolve(), where
    if target.local:
        return REFERENCE_APP, "the local target's reference app"
    return None, ""


def pytest_configure(config: pytest.Config) -> None:
    """After the target plugin (tryfirst) has validated the contract files."""
    if config.option.help or getattr(config.option, "version", False):
        return
    path, where = app_repo_path(config)
    if path is not None and not path.is_dir():
        raise pytest.UsageError(f"{where}: not a directory")


@pytest.fixture(scope="session")
def app_repo(pytestconfig: pytest.Config) -> Path | None:
    """The application's checkout to scan (None when neither option nor profile names one)."""
    return app_repo_path(pytestconfig)[0]
