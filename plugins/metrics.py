"""``metrics.prom``: the run's verdict as metrics, for the alerting the team already has.

Every run that writes a certificate writes ``metrics.prom`` beside it, in the OpenMetrics text
format (``prometheus_client``'s own exposition), from the certificate alone — so the numbers
can never disagree with it. Only gauges: node_exporter's textfile collector reads the file
as it is (its ``# EOF`` is a comment in the Prometheus text format; copy it into the
collector's directory as ``julia_conformance.prom``). With ``--push-metrics URL`` the same
metrics are pushed to a Pushgateway: a POST (Pushgateway's "replace the metrics of these
names"), grouped by job, target and tier, with one total deadline, never to the target
(that URL is refused before the run), never following a redirect. A failed push is one line
on the terminal; it never changes the verdict or the exit code. The URL is never printed
(it may carry credentials).
"""

from __future__ import annotations

import calendar
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.exposition import pushadd_to_gateway
from prometheus_client.openmetrics.exposition import generate_latest

JOB = "julia-conformance"
OUTCOMES = ("passed", "waived", "skipped", "failed", "error")
PUSH_TIMEOUT_S = 10.0
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def _stamp(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return float(calendar.timegm(time.strptime(text, TIME_FORMAT)))
    except ValueError:
        return None


def registry_of(cert: dict[str, Any]) -> CollectorRegistry:
    """The run's metrics, every value read from the certificate."""
    reg = CollectorRegistry(auto_describe=True)
    run = {"target": str(cert.get("target")), "tier": str(cert.get("tier"))}
    run_labels = list(run)
    inv_labels = ["id", "severity", *run_labels]

    def gauge(name: str, doc: str, labels: list[str]) -> Gauge:
        return Gauge(name, doc, labels, registry=reg)

    gauge("jc_certified", "1 when the run's verdict is certified, else 0", run_labels).labels(**run).set(
        1 if cert.get("verdict") == "certified" else 0)
    counts = gauge("jc_invariants", "invariants of the run by outcome", [*run_labels, "outcome"])
    per_ok = gauge("jc_invariant_ok", "1 when the invariant passed or is waived, else 0", inv_labels)
    per_outcome = gauge("jc_invariant_outcome", "1 for the invariant's outcome, 0 for the others",
                        [*inv_labels, "outcome"])
    failing_runs = gauge("jc_invariant_failing_runs",
                         "consecutive runs of this target the invariant has not passed (0: it passes)", inv_labels)
    flaky = gauge("jc_invariant_flaky", "1 when the invariant flips between runs (certificate: flaky)", inv_labels)
    rows = cert.get("invariants", [])
    for outcome in OUTCOMES:
        counts.labels(**run, outcome=outcome).set(sum(1 for r in rows if r.get("outcome") == outcome))
    for row in rows:
        inv = {"id": str(row["id"]), "severity": str(row.get("severity")), **run}
        per_ok.labels(**inv).set(1 if row.get("outcome") in ("passed", "waived") else 0)
        for outcome in OUTCOMES:
            per_outcome.labels(**inv, outcome=outcome).set(1 if row.get("outcome") == outcome else 0)
        failing_runs.labels(**inv).set((row.get("failing_since") or {}).get("runs", 0))
        flaky.labels(**inv).set(1 if row.get("flaky") else 0)

    started, finished = _stamp(cert.get("started_at")), _stamp(cert.get("finished_at"))
    gauge("jc_run_duration_seconds", "from the run's start to its certificate (the build wait included)",
          run_labels).labels(**run).set(finished - started if started is not None and finished is not None else 0)
    gauge("jc_run_retries", "idempotent reads retried during the run", run_labels).labels(**run).set(
        cert.get("retries") or 0)
    wait = cert.get("build_wait") or {}
    gauge("jc_build_wait_seconds", "time spent waiting for --expect-build (0 without it)", run_labels).labels(
        **run).set(wait.get("waited_s") or 0)
    gauge("jc_build_wait_timed_out", "1 when the expected build never came (nothing judged, exit 6)",
          run_labels).labels(**run).set(1 if wait.get("outcome") == "timed-out" else 0)
    if finished is not None:
        gauge("jc_run_finished_timestamp_seconds", "when the run's certificate was written (alert when too old)",
              run_labels).labels(**run).set(finished)
    valid = _stamp(cert.get("valid_until"))
    if valid is not None:
        gauge("jc_certificate_valid_until_timestamp_seconds", "until when the certificate may be trusted",
              run_labels).labels(**run).set(valid)
    return reg


def openmetrics_text(cert: dict[str, Any]) -> str:
    return generate_latest(registry_of(cert)).decode("utf-8")


def write(path: Path, cert: dict[str, Any]) -> None:
    """metrics.prom, atomically (a textfile collector never reads half a file)."""
    import os

    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(openmetrics_text(cert), encoding="utf-8")
    os.replace(tmp, path)


def url_problem(value: str, target_api_url: str | None) -> str | None:
    """Why ``value`` cannot be the Pushgateway (in words that never quote it), or None."""
    if not value.strip():
        return "is empty"
    try:
        url = httpx.URL(value.strip())
    except Exception as exc:  # noqa: BLE001 - httpx.InvalidURL and whatever else parsing raises
        return f"is not a URL httpx can parse ({type(exc).__name__})"
    if url.scheme not in ("http", "https") or not url.host:
        return "is not an http:// or https:// URL with a host"
    if target_api_url:
        api = httpx.URL(target_api_url)
        if (url.scheme, url.host, url.port) == (api.scheme, api.host, api.port):
            return "is the target's own API: the suite never sends anything but GET to the target"
    return None


def _handler(total_s: float):  # type: ignore[no-untyped-def]
    """prometheus_client's handler contract, over httpx: no redirect is followed (a POST
    must not land anywhere else), one timeout per phase."""

    def handle(url: str, method: str, timeout: float | None, headers: list[tuple[str, str]], data: bytes):  # type: ignore[no-untyped-def]
        def send() -> None:
            resp = httpx.request(method, url, content=data, headers=dict(headers), follow_redirects=False,
                                 timeout=httpx.Timeout(min(timeout or total_s, total_s)))
            if resp.status_code >= 300:
                text = " ".join(resp.text.split())[:160]
                raise OSError(f"HTTP {resp.status_code}" + (f": {text}" if text else ""))

        return send

    return handle


def push(url: str, cert: dict[str, Any], total_timeout_s: float = PUSH_TIMEOUT_S) -> str | None:
    """POST the metrics to the Pushgateway at ``url``; the problem as one line, or None.
    Never raises, never names the URL."""
    outcome: list[str | None] = []
    grouping = {"target": str(cert.get("target")), "tier": str(cert.get("tier"))}

    def run() -> None:
        try:
            pushadd_to_gateway(url.strip(), job=JOB, registry=registry_of(cert), grouping_key=grouping,
                               timeout=total_timeout_s, handler=_handler(total_timeout_s))
        except httpx.TimeoutException as exc:
            outcome.append(f"{type(exc).__name__} (timeout after {total_timeout_s:g} s)")
        except Exception as exc:  # noqa: BLE001 - a failed push must never end the run
            detail = " ".join(str(exc).split())
            outcome.append(f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__)
        else:
            outcome.append(None)

    worker = threading.Thread(target=run, name="jc-metrics-push", daemon=True)
    worker.start()
    worker.join(total_timeout_s)
    if worker.is_alive() or not outcome:
        return f"timeout: no complete answer within {total_timeout_s:g} s"
    problem = outcome[0]
    if problem is None:
        return None
    return problem.replace(url.strip(), "<push URL>")[:300]
