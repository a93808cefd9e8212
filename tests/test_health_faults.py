"""The health and guard checks, each proven to fail on its fault — and only they.

Two kinds of fault: the stack broken the way an incident breaks it (a process stopped, a row
changed, a table dropped, a circuit opened in Redis as the app records it), and an API that
misbehaves (500, HTML, a login redirect, an answer after the timeout, a deep report that
lies), served by a real loopback HTTP server that forwards every other path to the real
reference app. Each test asserts exactly which invariants fail, how (failed = the target
breaks the invariant, error = the check could not decide), and that the message names the
cause.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from fixtures.stack.backends.native import NativeStack
from fixtures.stack.services import free_port
from tests.conftest import LOCAL_REF, ROOT, SuiteRun, expect, run_suite
from tests.loopback import NOT_FOUND, Canned, LoopbackApi, StalledListener, recording

AREA = ("checks/test_health.py", "checks/test_guards.py", "checks/test_health_schema_rate_circuit.py")
DEEP_PARTS = {f"JC-DEEP-0{n}" for n in range(2, 8)}
DEEP_READERS = DEEP_PARTS | {"JC-GUARD-03", "JC-GUARD-05"}
# Checks whose contract an endpoint's answer is: a bad answer fails them.
ENDPOINT_CONTRACTS = {"JC-HEALTH-01", "JC-HEALTH-02", "JC-DEEP-01", "JC-HEALTH-04", "JC-RATE-01", "JC-CIRCUIT-01"}


def rows(run: SuiteRun) -> dict[str, dict]:
    assert run.certificate is not None
    return {row["id"]: row for row in run.certificate["invariants"]}


# --- the stack, broken the way an incident breaks it -----------------------------------------


@pytest.mark.smoke
def test_postgres_stopped(healthy: NativeStack, suite) -> None:  # type: ignore[no-untyped-def]
    healthy.stop_service("postgres")
    run = suite(paths=AREA)
    expect(run, failed={"JC-DEEP-01", "JC-DEEP-03"},
           error={"JC-DEEP-04", "JC-DEEP-05", "JC-DEEP-06", "JC-DEEP-07", "JC-GUARD-01", "JC-GUARD-02",
                  "JC-GUARD-04", "JC-GUARD-05", "JC-HEALTH-04"})
    assert "Case 2" in run.message("JC-DEEP-03") and "'error'" in run.message("JC-DEEP-03")
    for part in ("JC-DEEP-04", "JC-DEEP-05", "JC-DEEP-06", "JC-DEEP-07"):
        assert "could not check" in run.message(part) and "supabase 'error'" in run.message(part)
    assert "database unreachable" in run.message("JC-GUARD-01")


@pytest.mark.parametrize(
    ("key", "value", "description", "guard"),
    [("environment", "local", "Environment marker", "JC-GUARD-01"),
     ("supabase_project_ref", LOCAL_REF, "Project reference", "JC-GUARD-02")],
    ids=["environment", "project-ref"],
)
def test_app_settings_key_deleted(healthy: NativeStack, suite, sql, key: str, value: str,  # type: ignore[no-untyped-def]
                                  description: str, guard: str) -> None:
    """A missing app_settings key is its own failure (JC-GUARD-04) with the runbook's INSERT;
    the guard that needed the key says why it could not decide."""
    sql("DELETE FROM app_settings WHERE key = %s", (key,))
    run = suite(paths=AREA)
    expect(run, failed={"JC-GUARD-04", "JC-DEEP-01", "JC-DEEP-07"}, error={guard})
    msg = run.message("JC-GUARD-04")
    assert f"no '{key}' row" in msg
    assert (f"INSERT INTO app_settings (key, value, description) VALUES ('{key}', '{value}', "
            f"'{description}') ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value") in msg
    assert "JC-GUARD-04" in run.message(guard)
    assert "hard guard" in run.message("JC-DEEP-07")


def test_critical_view_dropped(healthy: NativeStack, suite, sql) -> None:  # type: ignore[no-untyped-def]
    sql("DROP VIEW avaliacoes_qualidade")
    run = suite(paths=AREA)
    expect(run, failed={"JC-DEEP-01", "JC-DEEP-05"})
    assert "avaliacoes_qualidade" in run.message("JC-DEEP-05") and "Case 5" in run.message("JC-DEEP-05")
    assert "views 'missing'" in run.message("JC-DEEP-01")


def test_migration_row_removed(healthy: NativeStack, suite, sql) -> None:  # type: ignore[no-untyped-def]
    from fixtures.migrations import list_migrations
    from fixtures.stack.refapp.config import MIGRATIONS_DIR

    versions = [m.version for m in list_migrations(MIGRATIONS_DIR)]  # oldest first
    newest, previous = versions[-1], versions[-2]
    sql("DELETE FROM _migrations WHERE version = %s", (newest,))
    run = suite(paths=AREA)
    expect(run, failed={"JC-DEEP-01", "JC-DEEP-06", "JC-HEALTH-04"})
    assert "Case 4" in run.message("JC-DEEP-06") and "'outdated'" in run.message("JC-DEEP-06")
    msg = run.message("JC-HEALTH-04")
    assert f"reports version '{previous}'" in msg and f"app_settings.schema_version is '{newest}'" in msg
    assert "app_settings.schema_version is ahead" in msg


def _redis(stack: NativeStack) -> redis.Redis:
    assert stack.info is not None
    return redis.Redis.from_url(stack.info.redis_url, decode_responses=True)


def test_circuit_opened(healthy: NativeStack, suite) -> None:  # type: ignore[no-untyped-def]
    _redis(healthy).set("julia:circuit:evolution", "open")
    run = suite(paths=AREA)
    expect(run, failed={"JC-CIRCUIT-01"})
    assert "evolution is 'open'" in run.message("JC-CIRCUIT-01")


def test_circuit_half_open_is_a_visible_warning(healthy: NativeStack, suite) -> None:  # type: ignore[no-untyped-def]
    _redis(healthy).set("julia:circuit:slack", "half_open")
    run = suite(paths=AREA)
    expect(run)
    row = rows(run)["JC-CIRCUIT-01"]
    assert row["outcome"] == "passed"
    assert len(row["warnings"]) == 1 and "slack is 'half_open' (recovering)" in row["warnings"][0]
    assert "julia-conformance: warning JC-CIRCUIT-01: " in run.output
    # the Allure result of that check is tagged and carries the warning
    assert run.run_dir is not None
    results = [json.loads(p.read_text()) for p in (run.run_dir / "allure-results").glob("*-result.json")]
    [circuit] = [r for r in results if any(lb == {"name": "invariant", "value": "JC-CIRCUIT-01"} for lb in r["labels"])]
    assert circuit["status"] == "passed"
    assert {"name": "tag", "value": "warning"} in circuit["labels"]
    assert any(a["name"] == "warnings" for a in circuit.get("attachments", []))


def test_namespace_at_95_percent(healthy: NativeStack, suite) -> None:  # type: ignore[no-untyped-def]
    _redis(healthy).hset("julia:rate:mensagens_hora", mapping={"used": 19, "limit": 20})
    run = suite(paths=AREA)
    expect(run, failed={"JC-RATE-01"})
    msg = run.message("JC-RATE-01")
    assert "mensagens_hora 19/20 (95%)" in msg and "80%" in msg and "mensagens_dia" not in msg


# --- an API that misbehaves, served over a real loopback socket -----------------------------


RemoteRun = Callable[..., SuiteRun]


@pytest.fixture
def remote(healthy: NativeStack, tmp_path: Path) -> RemoteRun:
    """Run the suite against ``api_url`` through a non-local profile whose database and Redis
    are the healthy stack's (read-only, as against production)."""
    info = healthy.info
    assert info is not None

    def run(api_url: str, *, read_timeout_s: float | None = None, paths: tuple[str, ...] = AREA,
            environment: str = "local", http: dict[str, float] | None = None) -> SuiteRun:
        """``http``: runbook.toml [http] values to change (e.g. liveness_budget_ms)."""
        targets = tmp_path / "targets.toml"
        targets.write_text(
            "[targets.remote]\nlocal = false\n"
            f'api_url = "{api_url}"\nenvironment = "{environment}"\nproject_ref = "{LOCAL_REF}"\n'
            'database_url_env = "JC_REMOTE_DB"\nredis_url_env = "JC_REMOTE_REDIS"\n'
        )
        args = ["--target-file", str(targets), "--target", "remote"]
        edits = {**(http or {}), **({"read_timeout_s": read_timeout_s} if read_timeout_s is not None else {})}
        if edits:
            text = (ROOT / "runbook.toml").read_text(encoding="utf-8")
            start = text.index("\n[http]\n")
            end = text.index("\n[", start + 1)
            section = text[start:end]
            for key, value in edits.items():
                section, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", section)
                assert n == 1, key
            text = text[:start] + section + text[end:]
            runbook = tmp_path / "runbook.toml"
            runbook.write_text(text, encoding="utf-8")
            args += ["--runbook", str(runbook)]
        return run_suite(*args, paths=paths, reports=tmp_path / "reports",
                         env={"JC_REMOTE_DB": info.database_url, "JC_REMOTE_REDIS": info.redis_url})

    return run


def _upstream(stack: NativeStack) -> str:
    assert stack.info is not None
    return stack.info.api_url


DEEP_RECORDINGS = {
    "healthy-hides-error": (
        "deep_healthy_hides_error", True, "JC-DEEP-03",
        ["the app's deep check hides a failing part", "top-level status 'healthy' while supabase 'error'"],
    ),
    "critical-with-200": (
        "deep_critical_with_200", False, "JC-DEEP-07",
        ["contradicts itself", "status 'CRITICAL' (not healthy) with HTTP 200, expected 503"],
    ),
    "deploy-safe-disagrees": (
        "deep_deploy_safe_disagrees", False, "JC-DEEP-04",
        ["contradicts itself", "deploy_safe is true while top-level status 'unhealthy'"],
    ),
    "healthy-hides-outdated": (
        "deep_healthy_hides_outdated", True, "JC-DEEP-06",
        ["the app's deep check hides a failing part", "top-level status 'healthy' while migrations 'outdated'"],
    ),
}


@pytest.mark.parametrize("case", list(DEEP_RECORDINGS))
def test_recorded_inconsistent_deep_report(healthy: NativeStack, remote: RemoteRun, case: str) -> None:
    """A deep report that contradicts itself: the consistency check fails on it, and so does
    the gate — a report saying healthy over its own failing part is no reason to deploy (issue
    16 point 5: it fails, it does not err). The part that reports its own failure is believed:
    the contradiction can only make things worse than that part says, so its check fails
    (naming the contradiction). Every other reader of the report says why it could not decide."""
    name, says_healthy, believed, phrases = DEEP_RECORDINGS[case]
    with LoopbackApi(routes={"/health/deep": recording(name)}, upstream=_upstream(healthy)) as api:
        run = remote(api.url)
    undecided = DEEP_READERS - {believed}
    expect(run, failed={"JC-DEEP-01", "JC-DEEP-08", believed}, error=undecided)
    for phrase in phrases:
        assert phrase in run.message("JC-DEEP-08"), run.message("JC-DEEP-08")
    for inv in undecided:
        assert "contradicts itself" in run.message(inv) and "JC-DEEP-08" in run.message(inv), run.message(inv)
    part = run.message(believed)
    assert ("the app still reports healthy (HTTP 200): its check failed without failing its report" in part
            if says_healthy else "the report contradicts itself (JC-DEEP-08), but this part's own failure is "
            "believed" in part), part
    if says_healthy:  # the gate names the part by the app's own path and quotes the app's message for it
        gate = run.message("JC-DEEP-01")
        assert gate.startswith("GET /health/deep says 'healthy' (HTTP 200) over its own parts: "), gate
        assert gate.endswith("— the deploy is not safe: the app's gate did not count it (JC-DEEP-08)"), gate
        data = json.loads((ROOT / "tests" / "recordings" / f"{name}.json").read_text())
        if case == "healthy-hides-error":
            assert (f"supabase 'error' (Case 2): {data['body']['supabase']['error']!r}") in gate, gate
        else:
            assert "migrations 'outdated' (Case 4)" in gate, gate


def test_guard_mismatch_is_one_cause(healthy: NativeStack, remote: RemoteRun) -> None:
    """The app checks its guards first and stops at a mismatch, leaving the other parts
    unchecked (whats-agents app/services/health/deep.py, told in the runbook's words): the
    parts it did not check are not failures of their own — each says so and points at the
    guard (error, not failed); the gate's one line names the guard and both values."""
    with LoopbackApi(routes={"/health/deep": recording("deep_guard_stops_the_rest")},
                     upstream=_upstream(healthy)) as api:
        run = remote(api.url)
    dependent = {"JC-DEEP-02": "redis", "JC-DEEP-03": "supabase", "JC-DEEP-04": "tables", "JC-DEEP-05": "views",
                 "JC-DEEP-06": "migrations"}
    expect(run, failed={"JC-GUARD-03", "JC-DEEP-01", "JC-DEEP-07"}, error=set(dependent))
    summary = "environment: APP_ENV 'production' vs app_settings 'local'"
    gate = run.message("JC-DEEP-01")
    assert gate.startswith(f"hard guard broken, {summary} — GET /health/deep answered HTTP 503 status 'CRITICAL'"), gate
    assert ("not checked (not_checked), because of hard_guards: redis, supabase, tables, views, migrations"
            in gate), gate
    for inv, part in dependent.items():
        assert run.message(inv) == (
            f"the app could not check {part}: GET /health/deep reports {part} 'not_checked', because of hard_guards "
            f"'mismatch' ({summary}) — the cause, failed by JC-DEEP-01, JC-DEEP-07; {part} itself was not judged"
        ), run.message(inv)
    assert summary in run.message("JC-DEEP-07")


# --- the guards, triangulated: which side is the odd one out ---------------------------------


def test_container_variable_is_the_odd_one_out(healthy: NativeStack, remote: RemoteRun) -> None:
    """The app runs with APP_ENV=production against this target's database (app_settings and
    the profile say local): its own guard catches it (503, hard_guards mismatch), and the
    suite names the container's variable as the side to fix."""
    with LoopbackApi(routes={"/health/deep": recording("deep_guard_container_env_wrong")},
                     upstream=_upstream(healthy)) as api:
        run = remote(api.url)
    expect(run, failed={"JC-GUARD-03", "JC-DEEP-01", "JC-DEEP-07"})
    msg = run.message("JC-GUARD-03")
    assert "environment 'production' (expected 'local'; app_settings 'local'" in msg, msg
    assert "the container's variable is the odd one out" in msg, msg
    assert "hard_guards 'mismatch' (Case 3)" in run.message("JC-DEEP-01")
    assert "Case 3" in run.message("JC-DEEP-07") and "production" in run.message("JC-DEEP-07")


def test_app_reads_another_app_settings(healthy: NativeStack, remote: RemoteRun) -> None:
    """A healthy, self-consistent deep report whose guard read environment 'staging' while this
    target's app_settings holds 'local': only the suite's own read of the table shows it."""
    with LoopbackApi(routes={"/health/deep": recording("deep_healthy_reads_other_settings")},
                     upstream=_upstream(healthy)) as api:
        run = remote(api.url)
    expect(run, failed={"JC-GUARD-05"})
    msg = run.message("JC-GUARD-05")
    assert "the app reads another app_settings than this target's database" in msg, msg
    assert "environment: the app read 'staging', app_settings holds 'local'" in msg, msg


def test_target_profile_is_the_odd_one_out(healthy: NativeStack, remote: RemoteRun) -> None:
    """The profile expects 'staging' while app_settings and the app agree on 'local': the
    operator is pointed at another environment than they believe."""
    run = remote(_upstream(healthy), environment="staging")
    expect(run, failed={"JC-GUARD-01", "JC-GUARD-03"})
    for inv in ("JC-GUARD-01", "JC-GUARD-03"):
        msg = run.message(inv)
        assert "expected 'staging'" in msg and "the target profile is the odd one out" in msg, (inv, msg)


# --- the API's answers --------------------------------------------------------------------


def test_liveness_over_its_budget(healthy: NativeStack, remote: RemoteRun) -> None:
    """/health answers, but later than runbook.toml's liveness budget (and well inside the read
    timeout): only the liveness contract fails, and it names the budget's key."""
    slow = Canned(200, {"status": "healthy"}, delay_s=0.6)
    with LoopbackApi(routes={"/health": slow}, upstream=_upstream(healthy)) as api:
        run = remote(api.url, http={"liveness_budget_ms": 200})
    expect(run, failed={"JC-HEALTH-01"})
    msg = run.message("JC-HEALTH-01")
    assert "GET /health took" in msg, msg
    assert "over the liveness budget of 200 ms (runbook.toml http.liveness_budget_ms)" in msg, msg


def test_api_answering_500(healthy: NativeStack, remote: RemoteRun) -> None:
    with LoopbackApi(default=Canned(500, "Internal Server Error")) as api:
        run = remote(api.url)
    expect(run, failed=ENDPOINT_CONTRACTS, error=DEEP_READERS | {"JC-DEEP-08"})
    assert "GET /health answered HTTP 500, expected 200" in run.message("JC-HEALTH-01")
    assert "HTTP 500 with a non-JSON body" in run.message("JC-DEEP-01")
    assert "HTTP 500" in run.message("JC-DEEP-02")


def test_api_answering_after_the_timeout(healthy: NativeStack, remote: RemoteRun) -> None:
    """Each endpoint costs one read timeout for the whole run (one request each), and the
    run still writes its certificate."""
    with LoopbackApi(default=Canned(200, {"status": "ok"}, delay_s=30)) as api:
        run = remote(api.url, read_timeout_s=0.5)
        served = list(api.requests)
    expect(run, failed={"JC-HEALTH-01", "JC-DEEP-01"},
           error=DEEP_READERS | {"JC-DEEP-08", "JC-HEALTH-02", "JC-HEALTH-03", "JC-HEALTH-04", "JC-RATE-01",
                                 "JC-CIRCUIT-01"})
    assert "no answer within the read timeout (0.5 s, runbook.toml http.read_timeout_s)" in run.message("JC-HEALTH-01")
    assert "Scenario 1" in run.message("JC-HEALTH-01")
    assert "read timeout" in run.message("JC-RATE-01")
    # Each endpoint at most once (memoised), and after two read timeouts in a row the client
    # stops asking (the run's bound): never a request per check.
    # (/health may be asked once more at the end, for the certificate's app identity)
    assert "/health" in served and len(served) <= 7, served
    assert set(served) <= {"/health", "/health/ready", "/health/deep", "/health/schema",
                           "/health/rate", "/health/circuit"}, served
    assert run.certificate is not None and run.certificate["verdict"] == "not-certified"


def test_dead_api_still_certifies_the_run(healthy: NativeStack, remote: RemoteRun) -> None:
    run = remote(f"http://127.0.0.1:{free_port()}")
    expect(run, failed={"JC-HEALTH-01", "JC-DEEP-01"},
           error=DEEP_READERS | {"JC-DEEP-08", "JC-HEALTH-02", "JC-HEALTH-03", "JC-HEALTH-04", "JC-RATE-01",
                                 "JC-CIRCUIT-01"})
    assert "connection refused" in run.message("JC-HEALTH-01")


def test_api_never_completing_the_connect(healthy: NativeStack, remote: RemoteRun) -> None:
    """A target whose TCP handshake never completes (a full accept queue: SYNs dropped, as
    behind a silent firewall) costs the connect timeout of runbook.toml, is named as such, and
    the run still writes its certificate."""
    with StalledListener() as target:
        run = remote(target.url, http={"connect_timeout_s": 0.5})
    expect(run, failed={"JC-HEALTH-01", "JC-DEEP-01"},
           error=DEEP_READERS | {"JC-DEEP-08", "JC-HEALTH-02", "JC-HEALTH-03", "JC-HEALTH-04", "JC-RATE-01",
                                 "JC-CIRCUIT-01"})
    msg = run.message("JC-HEALTH-01")
    assert "no answer within the connect timeout (0.5 s, runbook.toml http.connect_timeout_s)" in msg, msg
    assert "Scenario 1" in msg and "read timeout" not in msg, msg
    assert "connect timeout" in run.message("JC-DEEP-01"), run.message("JC-DEEP-01")


NON_JSON = {
    "html-error-page": (
        Canned(200, "<!DOCTYPE html><html><head><title>Application failed to respond</title></head>"
                    "<body>Railway</body></html>", content_type="text/html"),
        "answered HTTP 200 with an HTML page (text/html)",
    ),
    "redirect-to-login": (
        Canned(302, "", headers=(("Location", "https://sso.example.com/login?next=/health"),)),
        "answered HTTP 302 redirect to 'https://sso.example.com/login?next=/health'",
    ),
    "plain-text": (Canned(200, "OK"), "answered HTTP 200 with a non-JSON body (text/plain; charset=utf-8): 'OK'"),
}


@pytest.mark.parametrize("case", list(NON_JSON))
def test_api_answering_non_json(healthy: NativeStack, remote: RemoteRun, case: str) -> None:
    canned, phrase = NON_JSON[case]
    with LoopbackApi(default=canned) as api:
        run = remote(api.url)
    expect(run, failed=ENDPOINT_CONTRACTS, error=DEEP_READERS | {"JC-DEEP-08"})
    # every check that read an endpoint names what came instead of JSON
    readers = ["JC-HEALTH-02", "JC-DEEP-01", "JC-DEEP-02", "JC-DEEP-08", "JC-GUARD-03", "JC-GUARD-05",
               "JC-HEALTH-01", "JC-RATE-01", "JC-CIRCUIT-01", "JC-HEALTH-04"]
    for inv in readers:
        assert phrase in run.message(inv), (inv, run.message(inv))
    if canned.status == 302:  # where the redirect leads, never a bare "HTTP 302, expected 200: ''"
        for inv in ENDPOINT_CONTRACTS:
            assert "expected 200" not in run.message(inv) and "login page" in run.message(inv), (inv, run.message(inv))


def test_missing_fields_and_wrong_types(healthy: NativeStack, remote: RemoteRun) -> None:
    routes = {
        "/health/deep": Canned(200, {"status": "healthy", "environment": "local", "project_ref": LOCAL_REF,
                                     "redis": 42}),
        "/health/rate": Canned(200, {"namespaces": {"mensagens_hora": {"used": "17", "limit": 20}}}),
        "/health/circuit": Canned(200, {"status": "ok"}),
        "/health/schema": Canned(200, {"history": []}),
    }
    with LoopbackApi(routes=routes, upstream=_upstream(healthy)) as api:
        run = remote(api.url)
    expect(run, failed={"JC-DEEP-01", "JC-RATE-01", "JC-CIRCUIT-01", "JC-HEALTH-04"},
           error=DEEP_READERS | {"JC-DEEP-08"})
    assert "part 'redis' is a number (42), expected an object" in run.message("JC-DEEP-01")
    assert "part 'redis' is a number" in run.message("JC-DEEP-03")
    assert "'namespaces.mensagens_hora.used' is a string ('17'), expected a non-negative number" in run.message("JC-RATE-01")
    assert "the answer has no 'integrations' field" in run.message("JC-CIRCUIT-01")
    assert "the answer has no 'current_version' field" in run.message("JC-HEALTH-04")


def test_alias_answers_and_the_report_says_which(healthy: NativeStack, remote: RemoteRun) -> None:
    routes = {"/health/rate": NOT_FOUND, "/health/rate-limit": Canned(200, {"namespaces": {
        "mensagens_hora": {"used": 3, "limit": 20}}})}
    with LoopbackApi(routes=routes, upstream=_upstream(healthy)) as api:
        run = remote(api.url)
        served = list(api.requests)
    expect(run)
    assert served.count("/health/rate") == 1 and served.count("/health/rate-limit") == 1
    warnings = rows(run)["JC-HEALTH-03"]["warnings"]
    assert warnings == ["rate: answered by alias /health/rate-limit (runbook path /health/rate → 404)"]


def test_endpoint_missing_on_every_alias(healthy: NativeStack, remote: RemoteRun) -> None:
    routes = {"/health/circuit": NOT_FOUND, "/health/circuits": NOT_FOUND}
    with LoopbackApi(routes=routes, upstream=_upstream(healthy)) as api:
        run = remote(api.url)
    expect(run, failed={"JC-HEALTH-03"}, error={"JC-CIRCUIT-01"})
    missing = "endpoint circuit missing: every path answered 404 (/health/circuit, /health/circuits)"
    assert missing in run.message("JC-HEALTH-03") and missing in run.message("JC-CIRCUIT-01")


def test_deep_missing_on_every_alias(healthy: NativeStack, remote: RemoteRun) -> None:
    """No /health/deep at all: the gate fails ("endpoint missing"), it does not end in error;
    the checks that only read the report say why they cannot decide."""
    with LoopbackApi(routes={"/health/deep": NOT_FOUND}, upstream=_upstream(healthy)) as api:
        run = remote(api.url)
    expect(run, failed={"JC-DEEP-01", "JC-HEALTH-03"}, error=DEEP_READERS | {"JC-DEEP-08"})
    missing = "endpoint deep missing: every path answered 404 (/health/deep)"
    assert missing in run.message("JC-DEEP-01") and "deploy gate" in run.message("JC-DEEP-01")
    assert missing in run.message("JC-HEALTH-03")
    for inv in DEEP_READERS | {"JC-DEEP-08"}:
        assert missing in run.message(inv), (inv, run.message(inv))


def test_liveness_missing_on_every_alias(healthy: NativeStack, remote: RemoteRun) -> None:
    with LoopbackApi(routes={"/health": NOT_FOUND}, upstream=_upstream(healthy)) as api:
        run = remote(api.url)
    expect(run, failed={"JC-HEALTH-01", "JC-HEALTH-03"})
    missing = "endpoint health missing: every path answered 404 (/health)"
    assert missing in run.message("JC-HEALTH-01") and missing in run.message("JC-HEALTH-03")


# --- every answer's content is judged, not only its status code ----------------------------


RUNBOOK_SAMPLE_DEEP = {  # the runbook's "expected successful response structure", for this target
    "timestamp": "2026-02-09T12:34:56Z", "environment": "local", "project_ref": LOCAL_REF,
    "redis": {"status": "connected"}, "supabase": {"status": "connected"},
    "tables": {"status": "all_exist", "missing": []}, "views": {"status": "all_exist", "missing": []},
    "migrations": {"current_version": "20260209120000", "status": "up_to_date"},
    "hard_guards": {"status": "ok", "app_env": "local", "db_environment": "local", "project_ref": LOCAL_REF,
                    "db_project_ref": LOCAL_REF, "mismatches": []},
}
SAYS_NOT_WELL = {
    "liveness": ("/health", Canned(200, {"status": "unhealthy", "timestamp": "t", "service": "julia-api"}),
                 {"JC-HEALTH-01"}, set(), "JC-HEALTH-01", "GET /health is 200 but says 'unhealthy' in its 'status', "
                 "expected healthy (health.liveness_ok)"),
    "readiness": ("/health/ready", Canned(200, {"status": "not_ready", "redis": {"status": "connected"}}),
                  {"JC-HEALTH-02"}, set(), "JC-HEALTH-02", "GET /health/ready is 200 but its status is 'not_ready', "
                  "not ready"),
    "deep": ("/health/deep", Canned(200, {"status": "degraded", **RUNBOOK_SAMPLE_DEEP}),
             {"JC-DEEP-01", "JC-DEEP-08"}, DEEP_READERS, "JC-DEEP-01",
             "GET /health/deep answered HTTP 200 status 'degraded', expected 200 healthy"),
    "schema-error": ("/health/schema", Canned(200, {"status": "error",
                                                    "error": "OperationalError: the database is down"}),
                     {"JC-HEALTH-04"}, set(), "JC-HEALTH-04", "GET /health/schema answered HTTP 200 with status "
                     "'error' and no 'current_version': 'OperationalError: the database is down'"),
}


@pytest.mark.parametrize("case", list(SAYS_NOT_WELL))
def test_a_200_saying_it_is_not_well_fails(healthy: NativeStack, remote: RemoteRun, case: str) -> None:
    """Runbook dialect: an endpoint answering 200 with a body whose status word is outside the
    contract's healthy set (runbook.toml health.liveness_ok, ready_status_ok, deep.healthy,
    health.schema.status_ok) fails the check that is its contract, quoting the word."""
    path, canned, failed, undecided, inv, phrase = SAYS_NOT_WELL[case]
    with LoopbackApi(routes={path: canned}, upstream=_upstream(healthy)) as api:
        run = remote(api.url)
    expect(run, failed=failed, error=undecided)
    assert run.message(inv).startswith(phrase), run.message(inv)


def test_schema_endpoint_saying_outdated_fails(healthy: NativeStack, suite, sql) -> None:  # type: ignore[no-untyped-def]
    """The newest migration undone on both sides (its _migrations row gone, app_settings put
    back to the previous version): /health/schema agrees with the database — and says, in its
    own word, that the schema is 'outdated'. JC-HEALTH-04 fails quoting the word; the deep
    gate fails for its migrations part."""
    from fixtures.migrations import list_migrations
    from fixtures.stack.refapp.config import MIGRATIONS_DIR

    versions = [m.version for m in list_migrations(MIGRATIONS_DIR)]
    newest, previous = versions[-1], versions[-2]
    sql("DELETE FROM _migrations WHERE version = %s", (newest,))
    sql("UPDATE app_settings SET value = %s WHERE key = 'schema_version'", (previous,))
    run = suite(paths=AREA)
    expect(run, failed={"JC-DEEP-01", "JC-DEEP-06", "JC-HEALTH-04"})
    assert run.message("JC-HEALTH-04") == (
        "GET /health/schema is 200 but says the schema is not up to date: its 'status' is 'outdated', not "
        f"up_to_date (current '{previous}'); app_settings.schema_version is '{previous}': the database is behind "
        "what the code needs (Case 4)")


def test_guard_mismatch_leads_the_summary(healthy: NativeStack, suite, sql) -> None:  # type: ignore[no-untyped-def]
    """A wrong app_settings row (the reference app checks every part, so nothing is left
    unchecked): the run's one-line summary — the gate's message, first of the blockers in
    certificate.md — names the broken guard and both of its values, app vs database."""
    sql("UPDATE app_settings SET value = 'staging' WHERE key = 'environment'")
    run = suite(paths=AREA)
    expect(run, failed={"JC-GUARD-01", "JC-DEEP-01", "JC-DEEP-07"})
    summary = "hard guard broken, environment: APP_ENV 'local' vs app_settings 'staging' — GET /health/deep"
    assert run.message("JC-DEEP-01").startswith(summary), run.message("JC-DEEP-01")
    assert run.run_dir is not None
    page = (run.run_dir / "certificate.md").read_text()
    first = next(line for line in page.splitlines() if line.startswith("  - found: "))
    assert first.startswith(f"  - found: {summary}"), first


# The post-deploy gate (runbook rule 3: any failure means ROLLBACK NOW), pinned by name. By
# design (README, "Markers") it holds the health endpoints, /health/deep part by part, the
# hard guards, /health/schema, the critical relations and the expected migration, and the
# runtime's liveness (one scheduler, jobs on time, no stuck job, the queue, the pause
# switch). Nothing of maintenance, security, drift or the runbook lint: those are nightly.
# Adding a check to the gate is a decision: change this set with it.
POSTDEPLOY_GATE = {
    "checks/test_guards.py": {
        "test_environment_matches_app_settings", "test_project_ref_matches_app_settings",
        "test_app_reports_target_identity", "test_guard_keys_present", "test_app_reads_same_app_settings",
    },
    "checks/test_health.py": {
        "test_liveness", "test_readiness", "test_endpoints_served", "test_deep_healthy", "test_deep_consistent",
        "test_deep_part_redis", "test_deep_part_supabase", "test_deep_part_tables", "test_deep_part_views",
        "test_deep_part_migrations", "test_deep_part_hard_guards",
    },
    "checks/test_health_schema_rate_circuit.py": {"test_schema_endpoint_matches_database"},
    "checks/test_scheduler.py": {"test_one_live_scheduler", "test_jobs_run_on_schedule", "test_scheduler_scale"},
    "checks/test_jobs.py": {"test_no_stuck_jobs"},
    "checks/test_queue.py": {"test_queue_drained", "test_worker_alive"},
    "checks/test_pause.py": {"test_julia_active", "test_nothing_sent_while_paused"},
    "checks/test_schema.py": {
        "test_critical_tables_exist", "test_critical_views_answer", "test_expected_version_applied",
    },
}


def test_postdeploy_selects_only_the_gate(tmp_path: Path) -> None:
    """`-m postdeploy` over every check selects exactly the gate: no more, no fewer."""
    run = run_suite("-m", "postdeploy", "--collect-only", paths=("checks",), reports=tmp_path / "reports")
    assert run.exitcode == 0, run.output[-2000:]
    selected: dict[str, set[str]] = {}
    for line in run.output.splitlines():
        if "::" in line:
            module, _, name = line.strip().partition("::")
            selected.setdefault(module, set()).add(name)
    assert selected == POSTDEPLOY_GATE, run.output[-3000:]
