"""Run by tests/test_report_redaction.py: failures that carry the run's secrets everywhere a
check's output can go (message, evidence, stdout, log, assertion rewriting, skip reason, a
crash, a Python warning), plus secret-shaped strings no env var declared (a DSN password, a
password-bearing Redis URL, a libpq ``password=`` string, a bearer token).

Not collected by `pytest tests` (no test_ prefix): it only makes sense inside that run.
"""

from __future__ import annotations

import logging
import warnings

import pytest

from plugins.contract.targets import RunContext
from plugins.contract.verdict import Undecidable, violated
from plugins.invariants import invariant

pytestmark = [pytest.mark.nightly]
UNDECLARED = ("postgresql://bob:hunter2-unregistered@db.internal:5432/julia and Authorization: Bearer abcdefghijklmnop0123"
              " and redis://:redis-pw-7f3a9c@cache.internal:6379/0"
              " and host=db.internal port=5432 user=bob password=kv-secret-91b2 dbname=julia")


def _secrets(ctx: RunContext) -> dict[str, str | None]:
    return {"dsn": ctx.target.database_url, "signing_key": ctx.target.secret("signing_key_env"),
            "webhook": ctx.target.secret("slack_webhook_env")}


@invariant("JC-LEAK-01", title="a violation quoting every secret", severity="blocker",
           section="Secrets Management › Production Secrets Location",
           remedy="Rotate the credential (Secret Rotation Procedure).")
def test_violation_quotes_secrets(ctx: RunContext) -> None:
    s = _secrets(ctx)
    print(f"connecting with {s['dsn']} signing with {s['signing_key']}")
    warnings.warn(f"deprecated: posting to {s['webhook']} with key {s['signing_key']}; {UNDECLARED}", UserWarning,
                  stacklevel=1)
    logging.getLogger("jc.leaky").warning("posting to %s; %s", s["webhook"], UNDECLARED)
    raise violated(f"login with {s['dsn']} failed; key {s['signing_key']}; hook {s['webhook']}; {UNDECLARED}",
                   evidence={"dsn": s["dsn"], "nested": [{"key": s["signing_key"]}], "hook": s["webhook"],
                             "undeclared": UNDECLARED})


@pytest.fixture
def leaky_setup(ctx: RunContext) -> None:
    s = _secrets(ctx)
    raise Undecidable(f"cannot reach {s['dsn']}", evidence={"webhook": s["webhook"], "undeclared": UNDECLARED})


@invariant("JC-LEAK-02", title="undecidable in setup, quoting secrets", severity="critical",
           section="Secrets Management › Production Secrets Location", remedy="Check the connection.")
def test_undecidable_in_setup(leaky_setup: None) -> None:
    pass


@invariant("JC-LEAK-03", title="a plain assert on a secret", severity="normal",
           section="Secrets Management › Production Secrets Location", remedy="Never assert on secrets.")
def test_plain_assert(ctx: RunContext) -> None:
    dsn = _secrets(ctx)["dsn"]
    assert dsn == "postgresql://someone-else@nowhere/db"


@invariant("JC-LEAK-04", title="a skip whose reason quotes a secret", severity="minor",
           section="Secrets Management › Production Secrets Location", remedy="Nothing.")
def test_skip_with_secret(ctx: RunContext) -> None:
    pytest.skip(f"webhook {_secrets(ctx)['webhook']} not reachable")


@invariant("JC-LEAK-05", title="a crash quoting undeclared secrets", severity="normal",
           section="Secrets Management › Production Secrets Location", remedy="Fix the check.")
def test_crash(ctx: RunContext) -> None:
    raise RuntimeError(f"driver said: {UNDECLARED}; key={_secrets(ctx)['signing_key']}")
