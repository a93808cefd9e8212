"""A hostile target, whole runs (issue 17): the suite ends, writes its certificate, and says
in one line on each check that read the bad answer what it was.

The API is a real loopback server (tests/hostile_servers.py) in front of the real reference
app; the database and Redis are the healthy stack's, read-only through a non-local profile
(the ``remote`` runner of tests/test_health_faults.py). Each test asserts outcomes and
messages, never a duration: the bounds are measured in bench/hostile.py.
"""

from __future__ import annotations

import json

import httpx
import pytest

from fixtures.stack.backends.native import NativeStack
from tests.conftest import expect
from tests.hostile_servers import HostileApi, Streamed, gzip_bomb, large_json, trickle
from tests.loopback import Canned, LoopbackApi
from tests.test_health_faults import DEEP_READERS, ENDPOINT_CONTRACTS, RemoteRun, remote  # noqa: F401 - fixture

# Every check that reads /health/deep, beyond its contract JC-DEEP-01, cannot decide without it.
DEEP_UNDECIDED = DEEP_READERS | {"JC-DEEP-08"}
PAD_MB = 24


def _upstream(stack: NativeStack) -> str:
    assert stack.info is not None
    return stack.info.api_url


def test_a_large_healthy_deep_report_is_read_and_certified(healthy: NativeStack, remote: RemoteRun) -> None:
    """The deployment's own healthy /health/deep, padded with a 24 MB string of letters —
    the shape on which scrubbing was quadratic (an 80 KB body took 7.6 s, a 50 MB one never
    ended). With the body cap raised above it, the whole body is read and scrubbed, every
    check passes, and the run is certified like any other."""
    report = httpx.get(_upstream(healthy) + "/health/deep", timeout=15).json()
    head = json.dumps({**report, "pad": ""}).encode().removesuffix(b'""}')
    padded = Streamed(large_json(PAD_MB, head=head + b'"', tail=b'"}'))
    with HostileApi(streamed={"/health/deep": padded}, upstream=_upstream(healthy)) as api:
        run = remote(api.url, http={"max_body_mb": PAD_MB + 8})
        served = list(api.requests)
    expect(run)
    assert "/health/deep" in served


def test_a_large_html_page_is_one_line_with_its_secret_masked(healthy: NativeStack, remote: RemoteRun) -> None:
    """A 24 MB error page quoting a DSN with its password: scrubbed whole, the deep readers say
    what came instead of JSON, and the password is masked in the line they quote."""
    head = b"<html><body>db down: postgresql://julia:hunter2-jc-leak@db.internal:5432/julia "
    page = Streamed(large_json(PAD_MB, head=head, tail=b"</body></html>"), content_type="text/html")
    with HostileApi(streamed={"/health/deep": page}, upstream=_upstream(healthy)) as api:
        run = remote(api.url, http={"max_body_mb": PAD_MB + 8})
    expect(run, failed={"JC-DEEP-01"}, error=DEEP_UNDECIDED)
    gate = run.message("JC-DEEP-01")
    assert "GET /health/deep answered HTTP 200 with an HTML page (text/html)" in gate, gate
    assert "postgresql://julia:***@db.internal" in gate, gate
    assert "hunter2-jc-leak" not in run.output and "hunter2-jc-leak" not in str(run.certificate)


def test_a_trickling_deep_report_meets_the_total_deadline(healthy: NativeStack, remote: RemoteRun) -> None:
    """/health/deep sends its headers, then one byte a second: never a read timeout (2 s), so
    only the total deadline (3 s) ends the GET. The gate fails naming the endpoint and the
    deadline, each reader of the report says why it cannot decide, and the rest
    of the run goes on and writes the certificate."""
    slow = Streamed(trickle(), every_s=1.0)
    with HostileApi(streamed={"/health/deep": slow}, upstream=_upstream(healthy)) as api:
        run = remote(api.url, http={"read_timeout_s": 2.0, "total_timeout_s": 3.0})
    expect(run, failed={"JC-DEEP-01"}, error=DEEP_UNDECIDED | {"JC-HEALTH-03"})
    deadline = "/health/deep: no complete answer within the total deadline (3 s, runbook.toml http.total_timeout_s)"
    gate = run.message("JC-DEEP-01")
    assert gate.startswith(f"GET {api.url}{deadline} — the deploy gate needs HTTP 200"), gate
    for inv in DEEP_UNDECIDED | {"JC-HEALTH-03"}:
        assert deadline in run.message(inv), (inv, run.message(inv))


def test_a_gzip_bomb_stops_at_the_body_cap(healthy: NativeStack, remote: RemoteRun) -> None:
    """/health/deep answers 1 GB of JSON-looking text gzipped to about 1 MB: decoded only up
    to the 4 MB cap (runbook.toml's default), then dropped; the gate fails saying so, the
    readers cannot decide, the certificate is written."""
    bomb = Streamed(gzip_bomb(1024), headers=(("Content-Encoding", "gzip"),))
    with HostileApi(streamed={"/health/deep": bomb}, upstream=_upstream(healthy)) as api:
        run = remote(api.url)
    expect(run, failed={"JC-DEEP-01"}, error=DEEP_UNDECIDED)
    said = "GET /health/deep answered HTTP 200 with a body larger than 4 MB (runbook.toml http.max_body_mb)"
    for inv in {"JC-DEEP-01"} | DEEP_UNDECIDED:
        assert said in run.message(inv), (inv, run.message(inv))


@pytest.mark.parametrize("where", ["every-endpoint", "deep-only"])
def test_deeply_nested_json_is_a_cause_not_a_crash(healthy: NativeStack, remote: RemoteRun, where: str) -> None:
    """100,000 nested brackets (RecursionError in any recursive parser) on every endpoint —
    /health included, which the certificate's app identity reads once more at the end — or on
    /health/deep alone: each check that read it fails or errs in one line, the certificate is
    written, the exit code is a failing check's (1)."""
    nested = Canned(200, "[" * 100_000, content_type="application/json")
    if where == "every-endpoint":
        with LoopbackApi(default=nested) as api:
            run = remote(api.url)
        expect(run, failed=ENDPOINT_CONTRACTS, error=DEEP_UNDECIDED)
        readers = ENDPOINT_CONTRACTS | DEEP_UNDECIDED
    else:
        with LoopbackApi(routes={"/health/deep": nested}, upstream=_upstream(healthy)) as api:
            run = remote(api.url)
        expect(run, failed={"JC-DEEP-01"}, error=DEEP_UNDECIDED)
        readers = {"JC-DEEP-01"} | DEEP_UNDECIDED
    assert run.exitcode == 1 and run.certificate is not None
    for inv in readers:
        assert "with JSON nested deeper than 64 levels" in run.message(inv), (inv, run.message(inv))
    assert "RecursionError" not in run.output and "INTERNALERROR" not in run.output
