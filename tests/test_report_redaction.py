"""Redaction, proven: known secrets set for a run, failures that carry them everywhere, and
not one of them in any file under the run's folder, in the captured output, or in the
Slack post.

The target is a non-local profile pointed at the local stack, with a password-bearing DSN
(a role created for the test), a signing key and a Slack webhook URL — every kind of secret
a production profile holds. The run builds the real HTML report; its single file embeds the
report's data base64-encoded, so the payloads are decoded before searching.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterator
from http.server import HTTPServer
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql as pgsql

from fixtures.stack.backends.native import NativeStack
from plugins import signing
from tests.conftest import LOCAL_REF, SuiteRun, run_suite
from tests.test_report_run import Recorder

ROLE = "jc_redaction_reader"
PASSWORD = "Sécr3t/p@ss%w0rd!jc-7"
WEBHOOK_TOKEN = "hooktoken-9f8e7d6c"
UNDECLARED = ("hunter2-unregistered", "abcdefghijklmnop0123", "redis-pw-7f3a9c", "kv-secret-91b2")
_PAYLOAD = re.compile(r'd\("([^"]+)","([A-Za-z0-9+/=]*)"\)')


@pytest.fixture
def reader_role(healthy: NativeStack) -> Iterator[str]:
    """A login role with a password, able to read everything (pg_read_all_data)."""
    assert healthy.info is not None
    with psycopg.connect(healthy.info.admin_url, autocommit=True) as conn:
        conn.execute(pgsql.SQL("DROP ROLE IF EXISTS {}").format(pgsql.Identifier(ROLE)))
        conn.execute(pgsql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(pgsql.Identifier(ROLE), pgsql.Literal(PASSWORD)))
        conn.execute(pgsql.SQL("GRANT pg_read_all_data TO {}").format(pgsql.Identifier(ROLE)))
    url = urlsplit(healthy.info.database_url)
    yield urlunsplit(url._replace(netloc=f"{ROLE}:{quote(PASSWORD, safe='')}@{url.hostname}:{url.port}"))
    with psycopg.connect(healthy.info.admin_url, autocommit=True) as conn:
        conn.execute(pgsql.SQL("DROP ROLE IF EXISTS {}").format(pgsql.Identifier(ROLE)))


@pytest.fixture
def slack() -> Iterator[HTTPServer]:
    server = HTTPServer(("127.0.0.1", 0), Recorder)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def _texts(path: Path) -> list[str]:
    """The file as text, plus every base64 payload an Allure single-file report embeds."""
    raw = path.read_bytes()
    text = raw.decode("utf-8", errors="replace")
    out = [text]
    if path.suffix == ".html":
        for _, payload in _PAYLOAD.findall(text):
            out.append(base64.b64decode(payload).decode("utf-8", errors="replace"))
    return out


def _needles(values: list[str]) -> set[str]:
    found = set()
    for v in values:
        for form in (v, quote(v, safe=""), quote(v), json.dumps(v)[1:-1], json.dumps(v, ensure_ascii=False)[1:-1]):
            found.add(form)
    return found


def test_no_secret_leaves_the_run(healthy: NativeStack, reader_role: str, slack: HTTPServer, tmp_path: Path) -> None:
    info = healthy.info
    assert info is not None
    key = base64.b64encode(signing.Ed25519PrivateKey.generate().private_bytes_raw()).decode()
    hook = f"http://127.0.0.1:{slack.server_address[1]}/services/T0/B0/{WEBHOOK_TOKEN}"
    targets = tmp_path / "targets.toml"
    targets.write_text(
        "[targets.remote]\nlocal = false\n"
        f'api_url = "{info.api_url}"\nenvironment = "local"\nproject_ref = "{LOCAL_REF}"\n'
        'database_url_env = "JC_REMOTE_DB"\nredis_url_env = "JC_REMOTE_REDIS"\n'
        'signing_key_env = "JC_REMOTE_SIGNING_KEY"\nslack_webhook_env = "JC_REMOTE_SLACK"\n'
    )
    run = run_suite(
        "--target-file", str(targets), "--target", "remote", "--notify-slack", "--build-html", "-rA",
        paths=("checks/test_health.py", "checks/test_guards.py", "tests/synthetic_checks/check_leaky.py"),
        reports=tmp_path / "reports",
        env={"JC_REMOTE_DB": reader_role, "JC_REMOTE_REDIS": info.redis_url,
             "JC_REMOTE_SIGNING_KEY": key, "JC_REMOTE_SLACK": hook},
    )
    # the run really carried the secrets through every path, and masked them
    assert run.exitcode == 1, run.output[-3000:]
    assert run.certificate is not None and run.run_dir is not None
    outcomes = run.outcomes()
    assert {i: outcomes[i] for i in outcomes if i.startswith("JC-LEAK")} == {
        "JC-LEAK-01": "failed", "JC-LEAK-02": "error", "JC-LEAK-03": "failed", "JC-LEAK-04": "skipped",
        "JC-LEAK-05": "failed"}
    assert run.certificate["signature"]["status"] == "signed"
    assert "***" in run.message("JC-LEAK-01") and "***" in run.output
    html = run.run_dir / "html" / "index.html"
    assert html.is_file(), run.output[-2000:]
    assert len(slack.requests) == 1  # type: ignore[attr-defined]

    assert "warnings summary" in run.output and "deprecated: posting to ***" in run.output

    secrets = [PASSWORD, reader_role, key, hook, WEBHOOK_TOKEN, *UNDECLARED]
    files = [p for p in run.run_dir.rglob("*") if p.is_file()]
    assert len(files) > 20  # certificate, markdown, results, attachments, HTML, config
    # the search reaches inside the HTML's embedded data (else it would prove nothing there)
    assert any("a violation quoting every secret" in t and "***" in t for t in _texts(html)[1:])
    assert _hits(run, secrets, slack.requests) == []  # type: ignore[attr-defined]

    # the same under xdist: workers report to the controller (the leaky synthetic check alone, no HTML)
    slack.requests.clear()  # type: ignore[attr-defined]
    parallel = run_suite(
        "--target-file", str(targets), "--target", "remote", "--notify-slack", "-rA", "-n", "2",
        paths=("tests/synthetic_checks/check_leaky.py",), reports=tmp_path / "reports-n2",
        env={"JC_REMOTE_DB": reader_role, "JC_REMOTE_REDIS": info.redis_url,
             "JC_REMOTE_SIGNING_KEY": key, "JC_REMOTE_SLACK": hook},
    )
    assert parallel.exitcode == 1 and parallel.run_dir is not None, parallel.output[-3000:]
    assert parallel.outcomes() == {"JC-LEAK-01": "failed", "JC-LEAK-02": "error", "JC-LEAK-03": "failed",
                                   "JC-LEAK-04": "skipped", "JC-LEAK-05": "failed"}
    assert "deprecated: posting to ***" in parallel.output and len(slack.requests) == 1  # type: ignore[attr-defined]
    assert _hits(parallel, secrets, slack.requests) == []  # type: ignore[attr-defined]


def _hits(run: SuiteRun, secrets: list[str], requests: list[dict[str, str]]) -> list[tuple[str, str]]:
    """Every (place, secret form) found: each file under the run's folder, the captured
    output, the Slack post's body."""
    assert run.run_dir is not None
    needles = _needles(secrets)
    files = [p for p in run.run_dir.rglob("*") if p.is_file()]
    hits = [(str(p.relative_to(run.run_dir)), n) for p in files for t in _texts(p) for n in needles if n in t]
    hits += [("captured output", n) for n in needles if n in run.output]
    # (the request's path is the webhook itself: only what was posted counts)
    hits += [("slack post", n) for req in requests for n in needles if n in req["body"]]
    return hits
