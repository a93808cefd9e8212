"""targets.toml: where a run looks — one profile per target, secrets read from the environment.

``load_targets`` validates every profile (``Profile``, plugins.contract.toml_schema's one
validator); ``resolve_target`` picks one and reads its secrets from the environment; a run's
``RunContext`` is the profile, the runbook, and where the target is reached.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import model_validator

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
    shape,
    validate,
    within,
)
from plugins.contract.toml_schema import load_toml as _load_toml

if TYPE_CHECKING:  # RunContext names it; reading targets.toml needs no runbook
    from plugins.contract.runbook import Runbook

STACK_BACKENDS = ("native", "containers", "existing")
# PostgreSQL majors the local stack can run (`pg` / `--pg`) and every probe is proven on
# (tests/test_catalog_versions.py); production (Supabase) runs 17.
PG_MAJORS = tuple(range(13, 19))



# --- targets.toml -------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One profile of targets.toml, with its secrets resolved from the environment."""

    name: str
    path: Path
    description: str
    local: bool
    environment: str
    project_ref: str
    api_url: str | None
    stack: str | None
    database_url_env: str
    redis_url_env: str | None
    dialect: str = "runbook"
    # The local stack's PostgreSQL major (`pg` / `--pg`); None: the default (Debian's newest 15+).
    pg: int | None = None
    # Resolved secret values; never printed (see plugins.contract.redaction).
    database_url: str | None = field(default=None, repr=False)
    redis_url: str | None = field(default=None, repr=False)
    # Optional keys areas add to a profile (Profile, OPTION_KEYS), raw as written in the file.
    options: dict[str, Any] = field(default_factory=dict)
    # Values of the environment variables named by `*_env` options (secrets), by option key.
    option_secrets: dict[str, str] = field(default_factory=dict, repr=False)

    def secret_values(self) -> list[str]:
        values = [self.database_url, self.redis_url, *self.option_secrets.values()]
        return [v for v in values if v]

    def secret(self, option: str) -> str | None:
        """The value of the env var an `*_env` option names (None when unset or absent)."""
        return self.option_secrets.get(option)


# --- how targets.toml is written --------------------------------------------------------------


class _Profile(Table):
    """The keys every profile has (or may have) whatever the areas add."""

    NOT_A_TABLE = "must be a table"

    description: Str = ""
    local: Bool
    stack: Str | None = None
    api_url: Str | None = None
    environment: Str
    project_ref: Str
    database_url_env: Str
    redis_url_env: Str | None = None
    dialect: Str = "runbook"
    pg: Int | None = None


class Profile(_Profile):
    """One profile of targets.toml. Below the core keys, the optional keys an area adds (their
    values are in Target.options, as written). A key that names an environment variable must
    end in `_env` (it is checked to be a valid name; its value is a secret, Target.secret)."""

    migrations_dir: Str | None = None  # plugins.schema_options (relative to targets.toml)
    schema_baseline: Str | None = None
    app_env_vars: AnyList | None = None  # the app's environment variable names (runbook lint, JC-RUNBOOK-04)
    judge_secret_rotation: Bool | None = None  # JC-SEC-04 judges the schedule (false: throwaway local secrets)
    app_repo: Str | None = None  # the application's checkout, scanned for secrets (plugins.app_repo)
    signing_key_env: Str | None = None
    slack_webhook_env: Str | None = None
    slack_timeout_s: Number | None = None  # the post's total deadline (plugins.notify)
    report_base_url: Str | None = None
    history_runs: Int | None = None  # runs of history kept beside the reports (plugins.run_history)
    postgres_image: Str | None = None  # stack containers (issue 8)
    redis_image: Str | None = None
    app_image: Str | None = None
    app_command: AnyList | None = None  # native/existing stacks: the operator's own app instead of the reference one
    # Railway's public API, for the services' replica counts (checks/test_scheduler.py, test_queue.py): the
    # scheduler (JC-SCHED-04), the api (JC-SCHED-04) and the worker (JC-QUEUE-02), each by its id.
    railway_token_env: Str | None = None
    railway_token_kind: Str | None = None
    railway_api_url: Str | None = None
    railway_environment_id: Str | None = None
    railway_scheduler_service_id: Str | None = None
    railway_api_service_id: Str | None = None
    railway_worker_service_id: Str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Profile:
        if self.stack is not None:
            within("stack", lambda v: one_of(STACK_BACKENDS, v), self.stack)
        if not self.local and not self.api_url:
            raise fail("required when local = false", at="api_url")
        if self.api_url and not self.api_url.startswith(("http://", "https://")):
            raise fail(f"must start with http:// or https://, got {self.api_url!r}", at="api_url")
        if not self.local and self.stack:
            raise fail("only a local target starts a stack", at="stack")
        if self.pg is not None:
            if (problem := pg_problem(self.pg)) is not None:
                raise fail(problem, at="pg")
            if not self.local:
                raise fail("only a local target starts a PostgreSQL server (the version of a remote one is read, "
                           "and recorded in the certificate)", at="pg")
        if self.app_command is not None:
            argv = self.app_command
            if not argv or not all(isinstance(a, str) and a for a in argv):
                raise fail(f"must be a non-empty list of non-empty strings (the app's argv), got {argv!r}",
                           at="app_command")
            if not self.local:
                raise fail("only a local target starts an app", at="app_command")
        for key in (k for k in self.written if k.endswith("_env")):
            if not _is_env_name(getattr(self, key)):
                raise fail(f"must name an environment variable, got {getattr(self, key)!r}", at=key)
        return self


# The optional keys, in Profile's order (Target.options keeps them as written).
OPTION_KEYS = tuple(k for k in Profile.model_fields if k not in _Profile.model_fields)


def _some_profile(profiles: dict[str, Profile]) -> dict[str, Profile]:
    if not profiles:
        raise fail("no profile defined")
    return profiles


class TargetsFile(Table):
    targets: Annotated[dict[str, Profile], shape(dict), check(_some_profile)]


def load_targets(path: Path) -> dict[str, dict[str, Any]]:
    """Parse and validate every profile (so a typo in `prod` is caught on a local run too);
    the profiles as written (resolve_target reads them)."""
    path = Path(path)
    raw = _load_toml(path)
    validate(TargetsFile, raw, path)
    return dict(raw["targets"])


def pg_problem(value: Any) -> str | None:
    """Why ``value`` is no PostgreSQL major the local stack can run (None: it is one)."""
    majors = ", ".join(str(m) for m in PG_MAJORS)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value not in PG_MAJORS:
        return f"must be a PostgreSQL major of {majors}, got {value!r}"
    return None


def _check_pg(where: str, value: Any) -> int:
    """A PostgreSQL major the local stack can run: an integer of PG_MAJORS."""
    problem = pg_problem(value)
    if problem is not None:
        raise ConfigError(f"{where}: {problem}")
    return int(value)


def _is_env_name(name: str) -> bool:
    return bool(name) and (name[0].isalpha() or name[0] == "_") and all(
        c.isalnum() or c == "_" for c in name
    )


def resolve_target(
    path: Path,
    profiles: dict[str, dict[str, Any]],
    name: str,
    *,
    stack_override: str | None = None,
    pg_override: str | int | None = None,
    environ: dict[str, str] | None = None,
) -> Target:
    """Select a profile and read its secrets from the environment.

    A local target whose stack the suite starts needs no env var; every other target (and
    `--stack existing`) needs the database URL, and the Redis URL when one is named.
    """
    env = os.environ if environ is None else environ
    path = Path(path)
    if name not in profiles:
        known = ", ".join(sorted(profiles))
        raise ConfigError(f"{path}: targets.{name}: unknown target (known: {known})")
    prof = profiles[name]
    prefix = f"targets.{name}"
    stack: str | None = None
    if prof["local"]:
        stack = stack_override or prof.get("stack") or "native"
    elif stack_override:
        raise ConfigError(f"{path}: {prefix}: --stack applies only to a local target")
    pg: int | None = prof.get("pg")
    if pg_override is not None:
        pg = _check_pg("--pg", pg_override)
        if not prof["local"]:
            raise ConfigError(f"{path}: {prefix}: --pg applies only to a local target (a remote server's "
                              "version is read, and recorded in the certificate)")
    if stack == "containers" and prof.get("app_command"):
        raise ConfigError(f"{path}: {prefix}.app_command: the containers stack runs app_image; "
                          "app_command is for the native and existing stacks")

    needs_env = not prof["local"] or stack == "existing"
    db_url = redis_url = None
    if needs_env:
        db_var = prof["database_url_env"]
        db_url = env.get(db_var)
        if not db_url:
            raise ConfigError(
                f"{path}: {prefix}.database_url_env: environment variable {db_var} is not set"
            )
        redis_var = prof.get("redis_url_env")
        if not redis_var and stack == "existing":
            raise ConfigError(
                f"{path}: {prefix}.redis_url_env: required for stack = existing "
                "(the environment variable holding the Redis URL)"
            )
        if redis_var:
            redis_url = env.get(redis_var)
            if not redis_url and stack == "existing":
                raise ConfigError(
                    f"{path}: {prefix}.redis_url_env: environment variable {redis_var} "
                    "is not set"
                )
    return Target(
        name=name,
        path=path,
        description=prof.get("description", ""),
        local=prof["local"],
        environment=prof["environment"],
        project_ref=prof["project_ref"],
        api_url=prof.get("api_url"),
        stack=stack,
        database_url_env=prof["database_url_env"],
        redis_url_env=prof.get("redis_url_env"),
        dialect=prof.get("dialect", "runbook"),
        pg=pg,
        database_url=db_url,
        redis_url=redis_url,
        options={k: prof[k] for k in OPTION_KEYS if k in prof},
        option_secrets={
            k: env[prof[k]] for k in OPTION_KEYS
            if k.endswith("_env") and k in prof and env.get(prof[k])
        },
    )


@dataclass(frozen=True)
class RunContext:
    """What one run judges: the profile, the contract, and where to reach the target."""

    target: Target
    runbook: Runbook
    run_id: str
    run_dir: Path
    api_url: str | None
    database_url: str | None
    redis_url: str | None
    stack: Any  # StackInfo | None (local only)

    @property
    def read_only(self) -> bool:
        """Off the local target the suite only reads."""
        return not self.target.local
