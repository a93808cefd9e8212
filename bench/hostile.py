"""Benchmarks of the suite against a hostile target (issue 17): prints its figures and writes
them into bench/results.md, section "Hostile target" (the rest of the file is left alone).

Not a timed test: the bounds are judged here, by a person reading the figures.

1. Scrub speed — ``Redactor.scrub`` (with a run's secrets registered) on bodies of 40 KB,
   80 KB, 5 MB and 50 MB of three shapes: one long run of letters (the shape the old regex
   rescanned from every start position: quadratic), a JSON report full of URLs and words
   (what a large real body looks like), and the worst case for the new code — nothing but
   DSNs with passwords, every one of them masked. The old code is timed on the small sizes.
2. Memory — peak RSS (VmHWM) of a child process doing one GET, through the suite's client, of a
   gzip bomb (1 GB decoded, about 1 MB on the wire) served on loopback; and, for comparison,
   of a plain ``httpx.get`` (what the client did before) of a 256 MB one.
3. Time — one GET of an answer trickled a byte a second, against ``http.total_timeout_s``;
   and a whole run (the target's checks, as tests/test_dead_target.py runs them) against an
   API that trickles every endpoint, the database and Redis refused: process start to exit,
   with runbook.toml's shipped values.

Usage: .venv/bin/python bench/hostile.py [--reps 3] [--no-run] [--out bench/results.md]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run import Figures, machine  # noqa: E402
from plugins.contract.redaction import MASK, _BEARER, _DSN_PASSWORD, _KV_PASSWORD, Redactor
from plugins.contract.runbook import load_runbook
from tests.hostile_servers import HostileApi, Streamed, gzip_bomb, trickle

SECTION = "## Hostile target (bench/hostile.py)"
SIZES = (("40 KB", 40_000), ("80 KB", 80_000), ("5 MB", 5_000_000), ("50 MB", 50_000_000))
SECRETS = ("postgresql://jc_reader:s3cr%40t-pw-91@db.example.com:5432/julia",
           "redis://:redis-pw-7f3a9c@127.0.0.1:6379/0", "xoxb-hooktoken-9f8e7d6c")


def _shape(kind: str, size: int) -> str:
    if kind == "letters":
        return "a" * size
    if kind == "json":
        item = ('{"id": 123456, "status": "connected", "url": "https://api.example.com/v1/x?y=1", '
                '"message": "Júlia respondeu em 35 ms", "ok": true}, ')
        return ('{"items": [' + item * (size // len(item) + 1))[:size]
    dsn = "postgresql://u:pw@h/d "  # every one masked
    return (dsn * (size // len(dsn) + 1))[:size]


def _old_scrub(red: Redactor, text: str) -> str:
    """Redactor.scrub before issue 17 (the three regexes over the whole text)."""
    for secret in sorted(red._secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern in (_DSN_PASSWORD, _KV_PASSWORD, _BEARER):
        text = pattern.sub(lambda m: m.group("pre") + MASK, text)
    return text


def _timed(fn, reps: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Median wall time and median CPU time of ``reps`` calls (on a shared machine the CPU
    time is the steadier figure: the wall time also counts the other processes' turns)."""
    wall, cpu = [], []
    for _ in range(reps):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def _fmt(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def bench_scrub(fig: Figures, reps: int) -> None:
    red = Redactor()
    for secret in SECRETS:
        red.register(secret)
    fig.say(f"1. scrub ({red.count} registered secrets), median of {reps}, wall (CPU):")
    for kind, label in (("letters", "one run of letters"), ("json", "JSON with URLs and words"),
                        ("dsns", "nothing but DSNs with passwords (worst case)")):
        cells = []
        for name, size in SIZES:
            text = _shape(kind, size)
            wall, cpu = _timed(lambda: red.scrub(text), reps)
            cells.append(f"{name} {_fmt(wall)} ({_fmt(cpu)})")
        fig.say(f"   {label}: " + " · ".join(cells))
    cells = []
    for name, size in SIZES[:2]:
        text = _shape("letters", size)
        wall, cpu = _timed(lambda: _old_scrub(red, text), 1)
        cells.append(f"{name} {_fmt(wall)} ({_fmt(cpu)})")
    days = cpu * (SIZES[-1][1] / SIZES[1][1]) ** 2 / 86400  # quadratic, from the 80 KB figure
    fig.say("   the old scrub, one run of letters: " + " · ".join(cells) + f" (quadratic: 50 MB would take about "
            f"{days:.0f} days)")


# Peak RSS as /proc/self/status VmHWM: getrusage's ru_maxrss survives exec on Linux (a child
# of a large parent starts at the parent's peak); VmHWM is the new process's own.
_CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import httpx
from fixtures.clients import Api
from plugins.contract.runbook import load_runbook
from plugins.contract.redaction import Redactor
url, mode = sys.argv[2], sys.argv[3]


def peak_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024


rb = load_runbook(sys.argv[1] + "/runbook.toml")
api = Api(url, rb.http, {}, Redactor())
before = peak_mb()
start = time.perf_counter()
if mode == "suite":
    resp = api.get("/bomb")
    size, cut = len(resp.text), resp.too_large_mb
else:
    resp = httpx.get(url + "/bomb", timeout=120)
    size, cut = len(resp.content), None
took = time.perf_counter() - start
after = peak_mb()
print(json.dumps({"before_mb": before, "after_mb": after, "s": took, "size": size, "cut": cut}))
"""


def _child(url: str, mode: str) -> dict[str, float]:
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(ROOT), url, mode], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"bench: the child failed: {proc.stderr[-800:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_memory(fig: Figures) -> None:
    cap = load_runbook(ROOT / "runbook.toml").http.max_body_mb
    fig.say(f"2. memory, one GET of a gzip bomb (peak RSS, VmHWM, of a child process; http.max_body_mb = {cap:g}):")
    with HostileApi(streamed={"/bomb": Streamed(gzip_bomb(1024), headers=(("Content-Encoding", "gzip"),))}) as api:
        got = _child(api.url, "suite")
    fig.say(f"   the suite's client, 1 GB decoded: peak {got['after_mb']:.0f} MB (before the GET {got['before_mb']:.0f} MB, "
            f"+{got['after_mb'] - got['before_mb']:.0f} MB), {_fmt(got['s'])}; body cut at {got['cut']:g} MB")
    with HostileApi(streamed={"/bomb": Streamed(gzip_bomb(256), headers=(("Content-Encoding", "gzip"),))}) as api:
        got = _child(api.url, "plain")
    fig.say(f"   for comparison, httpx.get (read whole, as before), 256 MB decoded: peak {got['after_mb']:.0f} MB "
            f"(+{got['after_mb'] - got['before_mb']:.0f} MB), {_fmt(got['s'])}")


_TARGET_CHECKS = ("checks/test_health.py", "checks/test_guards.py", "checks/test_health_schema_rate_circuit.py",
                  "checks/test_schema.py", "checks/test_scheduler.py", "checks/test_jobs.py", "checks/test_queue.py",
                  "checks/test_pause.py")


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_time(fig: Figures, with_run: bool) -> None:
    from fixtures.clients import Api
    from plugins.contract.verdict import Undecidable

    http = load_runbook(ROOT / "runbook.toml").http
    fig.say(f"3. time (http.read_timeout_s = {http.read_timeout_s:g}, http.total_timeout_s = {http.total_timeout_s:g}):")
    slow = Streamed(trickle(), every_s=1.0)
    with HostileApi(every_path=slow) as api:
        client = Api(api.url, http, {}, Redactor())
        start = time.perf_counter()
        try:
            client.get("/health/deep")
        except Undecidable as exc:
            said = exc.message
        took = time.perf_counter() - start
        client.close()
    fig.say(f"   one GET trickled a byte a second: ended after {_fmt(took)}: {re.sub(r'127.0.0.1:[0-9]+', 'HOST', said)}")
    if not with_run:
        return
    port = _closed_port()
    with HostileApi(every_path=slow) as api, tempfile.TemporaryDirectory(prefix="jc-bench-") as tmp:
        targets = Path(tmp) / "targets.toml"
        targets.write_text(
            "[targets.trickle]\nlocal = false\n"
            f'api_url = "{api.url}"\nenvironment = "local"\nproject_ref = "localjuliaref0000000"\n'
            'database_url_env = "JC_TRICKLE_DB"\nredis_url_env = "JC_TRICKLE_REDIS"\n')
        env = {**os.environ, "JC_TRICKLE_DB": f"postgresql://jc:pw@127.0.0.1:{port}/julia",
               "JC_TRICKLE_REDIS": f"redis://127.0.0.1:{port}/0"}
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", *_TARGET_CHECKS, "-q", "-p", "no:cacheprovider", "--no-html",
             "--target-file", str(targets), "--target", "trickle", "--reports-dir", str(Path(tmp) / "reports")],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        took = time.perf_counter() - start
        cert = Path(tmp) / "reports" / "latest" / "certificate.json"
        verdict = json.loads(cert.read_text())["verdict"] if cert.exists() else "no certificate"
        served = len(api.requests)
    fig.say(f"   a whole run, every endpoint trickled, database refused: {_fmt(took)} process start to exit "
            f"(exit {proc.returncode}, {verdict}; {served} GETs sent, then the API was given up)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--no-run", action="store_true", help="skip the whole trickled run (about 40 s)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results.md"))
    args = ap.parse_args()
    fig = Figures()
    fig.say(f"julia-conformance hostile-target benchmark — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    fig.say(f"machine: {machine()}")
    fig.say(f"command: .venv/bin/python bench/hostile.py --reps {args.reps}" + (" --no-run" if args.no_run else ""))
    fig.say(f"load average at the start: {os.getloadavg()[0]:.2f}")
    bench_scrub(fig, args.reps)
    bench_memory(fig)
    bench_time(fig, not args.no_run)
    out = Path(args.out)
    text = out.read_text() if out.exists() else "# Benchmark results\n"
    block = f"{SECTION}\n\n```\n" + "\n".join(fig.lines) + "\n```\n"
    if SECTION in text:  # replace the section's figures, keep what a person wrote after them
        head, rest = text.split(SECTION, 1)
        rest = rest.split("```", 2)[2] if rest.count("```") >= 2 else ""
        text = head + block + rest.removeprefix("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    out.write_text(text)
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
