"""The certificate's options, checked before anything starts (exit 4, one line naming the
option or the profile key): ``--compare-with``, the signing key, the Slack webhook and its
deadline, ``--push-metrics``, and the report's identity endpoints and base URL.

A secret met here (the webhook, a password in the push URL) is registered with the run's
redactor and never quoted in a message. plugins.certificate calls these when it starts.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from plugins import signing
from plugins.contract.report import ReportContract
from plugins.contract.toml_schema import ConfigError
from plugins.target import redactor, run_context

MAX_SLACK_TIMEOUT_S = 120.0  # the Slack post's total deadline, at most (targets.toml slack_timeout_s)


def load_previous(config: pytest.Config) -> dict[str, Any] | None:
    value = config.getoption("jc_compare_with")
    if not value:
        return None
    path = Path(value).expanduser()
    if path.is_dir():
        path = path / "certificate.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise pytest.UsageError(f"{path}: --compare-with: no such certificate") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise pytest.UsageError(f"{path}: --compare-with: not a readable certificate ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("invariants"), list):
        raise pytest.UsageError(f"{path}: --compare-with: not a certificate (no invariants list)")
    target = run_context(config).target.name
    if data.get("target") != target:
        raise pytest.UsageError(
            f"{path}: --compare-with: certificate of target {data.get('target')!r}, this run judges {target!r}")
    return data


def signing_key(config: pytest.Config) -> tuple[signing.Ed25519PrivateKey | None, str | None]:
    target = run_context(config).target
    var = target.options.get("signing_key_env")
    if not var:
        return None, f"no signing key configured (targets.{target.name}.signing_key_env)"
    value = target.secret("signing_key_env")
    if not value:
        return None, f"environment variable {var} (targets.{target.name}.signing_key_env) is not set"
    try:
        return signing.load_private_key(value), None
    except signing.SigningKeyError as exc:
        raise pytest.UsageError(
            f"{target.path}: targets.{target.name}.signing_key_env: {var} does not hold an Ed25519 "
            f"private key ({exc})") from None


def slack_url(config: pytest.Config) -> tuple[str, float] | None:
    """The webhook URL (surrounding whitespace removed) and the post's total deadline, checked
    before anything starts: a value that cannot be posted to is a usage error naming the
    variable, never quoting it."""
    from plugins.notify import TOTAL_TIMEOUT_S, clean_webhook, webhook_problem

    if not config.getoption("jc_notify_slack"):
        return None
    target = run_context(config).target
    var = target.options.get("slack_webhook_env")
    key = f"targets.{target.name}.slack_webhook_env"
    if not var:
        raise pytest.UsageError(f"{target.path}: {key}: --notify-slack needs this key (the env var holding the webhook URL)")
    value = target.secret("slack_webhook_env")
    if not value:
        raise pytest.UsageError(f"{target.path}: {key}: environment variable {var} is not set")
    url = clean_webhook(value)
    problem = webhook_problem(url)
    if problem is not None:
        raise pytest.UsageError(f"{target.path}: {key}: {var} {problem} (value not shown: it is a secret)")
    redactor(config).register(url)
    timeout = target.options.get("slack_timeout_s", TOTAL_TIMEOUT_S)
    # TOML also spells inf and nan: a deadline must be finite (and short: it delays the exit).
    if (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout)
            or not 0 < timeout <= MAX_SLACK_TIMEOUT_S):
        raise pytest.UsageError(f"{target.path}: targets.{target.name}.slack_timeout_s: must be a number of "
                                f"seconds greater than 0 and at most {MAX_SLACK_TIMEOUT_S:g}, got {timeout!r}")
    return url, float(timeout)


def push_url(config: pytest.Config) -> str | None:
    """``--push-metrics``, checked before anything starts (exit 4, never quoting the value:
    it may carry credentials); a password in it is registered with the redactor."""
    from plugins.metrics import url_problem

    value = config.getoption("jc_push_metrics")
    if value is None:
        return None
    ctx = run_context(config)
    problem = url_problem(value, ctx.api_url)
    if problem is not None:
        raise pytest.UsageError(f"--push-metrics: the URL {problem} (value not shown)")
    from urllib.parse import urlsplit

    password = urlsplit(value.strip()).password
    if password:
        redactor(config).register(password)
    return value.strip()


def check_report_options(config: pytest.Config, contract: ReportContract) -> None:
    ctx = run_context(config)
    for name, source in contract.identity.items():
        if source.endpoint not in ctx.runbook.endpoints:
            raise pytest.UsageError(str(ConfigError(
                f"{ctx.runbook.path}: report.identity.{name}.endpoint: unknown endpoint "
                f"{source.endpoint!r} (known: {', '.join(sorted(ctx.runbook.endpoints))})")))
    base = ctx.target.options.get("report_base_url")
    if base is not None and not str(base).startswith(("https://", "http://")):
        raise pytest.UsageError(
            f"{ctx.target.path}: targets.{ctx.target.name}.report_base_url: must start with http:// or https://")
