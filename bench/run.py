"""Benchmarks of the suite itself: prints its figures and writes bench/results.md.

Not a timed test: budgets are judged here, by a person reading the figures.

1. Gate time — `pytest -m postdeploy` from process start to certificate written, the stack
   already up, against one plain GET of /health/deep (budget: gate ≤ 3 s median).
2. Nightly at scale — the full suite with the seed at 1× and 10× of the runbook's volumes
   over 90 days (budget: 10× ≤ 1.5 × the 1× time).
3. Load on the database — pg_stat_statements deltas of the suite's own statements (it runs
   as its own role, so the app's queries are not counted): statements, slowest, rows
   (budget: no statement over 500 ms at 10×).
4. Parallelism — the nightly run with -n 2 against -n 0.

``--gate-against DIR`` also times the gate of another checkout (a git worktree at the commit
before a change), its runs interleaved with this one's against the same stack, and prints
both medians and the median of the paired differences: a shared machine's drift moves both
halves of a pair, so a change of tens of milliseconds is seen through noise of tenths.

Each on every PostgreSQL major asked for (``--pg``; default: the stack's default major —
Debian's 15 — and 17, production's), one after the other, the figures of each under its
version.

Usage: .venv/bin/python bench/run.py [--reps 5] [--days 90] [--scales 1,10] [--pg default,17]
       [--gate-against DIR] [--gate-only] [--out bench/results.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fixtures.stack.backends.native import NativeStack  # noqa: E402
from fixtures.stack.info import StackInfo  # noqa: E402
from fixtures.stack.launcher import new_run_id  # noqa: E402

BENCH_ROLE = "jc_bench"
GATE_BUDGET_S = 3.0
SCALE_BUDGET = 1.5
STATEMENT_BUDGET_MS = 500.0


@dataclass
class Figures:
    lines: list[str] = field(default_factory=list)

    def say(self, text: str) -> None:
        print(text, flush=True)
        self.lines.append(text)


def _suite(stack_json: Path, *args: str, reports: Path, root: Path = ROOT) -> tuple[float, int]:
    """Wall time of one suite run (of the checkout at ``root``), process start to exit (the
    HTML report is built after the certificate; _LAST_CERT_S is the certificate's moment)."""
    global _LAST_CERT_S
    wall = time.time()
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "checks", "-q", "-p", "no:cacheprovider",
         "--attach-stack", str(stack_json), "--reports-dir", str(reports), *args],
        cwd=root, capture_output=True, text=True,
    )
    elapsed = time.perf_counter() - start
    cert = reports / "latest" / "certificate.json"
    if not cert.exists():
        raise SystemExit(f"bench: the suite wrote no certificate (exit {proc.returncode}): {proc.stdout[-800:]}")
    _LAST_CERT_S = cert.resolve().stat().st_mtime - wall
    return elapsed, proc.returncode


# Seconds from process start to certificate.json written, of the last _suite run.
_LAST_CERT_S = 0.0


def _gate_once(stack_json: Path, reports: Path, root: Path = ROOT) -> tuple[float, float]:
    """(to certificate written, to process exit) of one post-deploy gate run."""
    elapsed, _ = _suite(stack_json, "-m", "postdeploy", reports=reports, root=root)
    return _LAST_CERT_S, elapsed


def _checkout(root: Path) -> str:
    """``DIR (commit)`` of a checkout, for the figures; ``+ changes`` if its tracked files
    differ from that commit."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True).stdout.strip()

    sha = git("rev-parse", "--short", "HEAD")
    if not sha:
        return f"{root} (not a git checkout)"
    dirty = " + changes" if git("status", "--porcelain", "--untracked-files=no") else ""
    return f"{root} ({sha}{dirty})"


def _bench_stack_json(stack: NativeStack, workdir: Path) -> Path:
    """A copy of stack.json whose database user is the bench role (read-only, own pgss rows)."""
    assert stack.info is not None
    with psycopg.connect(stack.info.database_url, autocommit=True) as conn:
        conn.execute(f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{BENCH_ROLE}') "
                     f"THEN CREATE ROLE {BENCH_ROLE} LOGIN; END IF; END $$")
        conn.execute(f"GRANT pg_read_all_data, pg_read_all_stats, pg_monitor TO {BENCH_ROLE}")
    info = StackInfo.from_json(stack.info.to_json())
    info.database_url = info.database_url.replace("postgres@", f"{BENCH_ROLE}@", 1)
    path = workdir / "stack-bench.json"
    path.write_text(info.to_json())
    return path


def _median(values: list[float]) -> float:
    return statistics.median(values)


def bench_gate(fig: Figures, reps: int, workdir: Path, pg_major: int | None = None,
               against: Path | None = None) -> None:
    stack = NativeStack(run_id=new_run_id("bench"), environment="local", project_ref="localjuliaref0000000",
                        pg_major=pg_major)
    stack.start()
    try:
        assert stack.tmpdir is not None and stack.info is not None
        version = stack.info.services["postgres"].version
        fig.say(f"== PostgreSQL {version} ({'the stack default' if pg_major is None else f'--pg {pg_major}'})")
        stack_json = stack.tmpdir / "stack.json"
        _suite(stack_json, "-m", "postdeploy", reports=workdir / "warmup")  # imports warm
        if against is not None:
            _suite(stack_json, "-m", "postdeploy", reports=workdir / "warmup-b", root=against)
        runs, other = [], []
        for i in range(reps):
            # interleaved, the first of each pair alternating: neither side always runs first
            for theirs in ((False, True) if i % 2 == 0 else (True, False)):
                if not theirs:
                    runs.append(_gate_once(stack_json, workdir / f"gate{i}"))
                elif against is not None:
                    other.append(_gate_once(stack_json, workdir / f"gate-b{i}", root=against))
        gates = [r[0] for r in runs]
        exits = [r[1] for r in runs]
        gets = []
        with httpx.Client() as client:
            for _ in range(reps):
                t = time.perf_counter()
                client.get(stack.info.api_url + "/health/deep")
                gets.append(time.perf_counter() - t)
        g, h = _median(gates), _median(gets)
        verdict = "within" if g <= GATE_BUDGET_S else "OVER"
        fig.say(f"1. gate (-m postdeploy), process start to certificate written: median {g:.2f} s over "
                f"{reps} runs (min {min(gates):.2f}, max {max(gates):.2f}) — {verdict} the {GATE_BUDGET_S:.0f} s budget")
        fig.say(f"   to process exit, incl. the HTML report built after the certificate: median "
                f"{_median(exits):.2f} s")
        fig.say(f"   one GET /health/deep: median {h * 1000:.1f} ms; ratio gate/GET = {g / h:.0f}×")
        if against is not None:
            b = [r[0] for r in other]
            diffs = [x - y for x, y in zip(gates, b)]
            fig.say(f"1b. the gate of {_checkout(against)}, interleaved with this checkout's "
                    f"({_checkout(ROOT)}): median {_median(b):.2f} s (min {min(b):.2f}, max {max(b):.2f})")
            fig.say(f"    this − that, paired: median {_median(diffs) * 1000:+.0f} ms (min {min(diffs) * 1000:+.0f}, "
                    f"max {max(diffs) * 1000:+.0f}); this checkout faster in {sum(d < 0 for d in diffs)} of {reps} pairs")
    finally:
        stack.stop()


def _pgss_reset(stack: NativeStack) -> None:
    assert stack.info is not None
    with psycopg.connect(stack.info.database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")


def _pgss_suite(stack: NativeStack) -> dict[str, object]:
    assert stack.info is not None
    with psycopg.connect(stack.info.database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT s.calls, s.rows, s.max_exec_time, s.mean_exec_time, s.shared_blks_hit + s.shared_blks_read AS blks,"
            " s.query FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid"
            " WHERE r.rolname = %s ORDER BY s.max_exec_time DESC", (BENCH_ROLE,)
        ).fetchall()
    slowest = rows[0] if rows else None
    return {
        "statements": sum(r[0] for r in rows),
        "distinct": len(rows),
        "rows": sum(r[1] for r in rows),
        "blocks": sum(r[4] for r in rows),
        "slowest_ms": float(slowest[2]) if slowest else 0.0,
        "slowest_query": " ".join(str(slowest[5]).split())[:160] if slowest else "",
    }


def _say_if_dead(fig: Figures, stack: NativeStack) -> None:
    """A server that died under the bench is a finding, with its last log lines."""
    if stack.tmpdir is not None and "postgres" in stack.executors and not stack.running("postgres"):
        log = stack.tmpdir / "pg" / "postgres.log"
        lines = log.read_text(errors="replace").splitlines()[-15:] if log.exists() else []
        fig.say("   postgres is no longer running; its log ends:\n     " + "\n     ".join(lines))


def bench_scale(fig: Figures, reps: int, days: int, scales: list[float], workdir: Path,
                pg_major: int | None = None) -> None:
    times: dict[float, float] = {}
    for scale in scales:
        stack = NativeStack(run_id=new_run_id("bench"), environment="local",
                            project_ref="localjuliaref0000000", scale=scale, days=days, pg_major=pg_major)
        t = time.perf_counter()
        stack.start()
        seeded = time.perf_counter() - t
        try:
            assert stack.info is not None
            with psycopg.connect(stack.info.database_url) as conn:
                volume = conn.execute(
                    "SELECT (SELECT count(*) FROM job_executions), (SELECT count(*) FROM business_events),"
                    " (SELECT count(*) FROM mensagens_grupo), (SELECT count(*) FROM interacoes),"
                    " pg_size_pretty(pg_database_size(current_database()))").fetchone()
            stack_json = _bench_stack_json(stack, workdir)
            _suite(stack_json, reports=workdir / f"warm{scale}")
            runs = []
            for i in range(reps):
                _pgss_reset(stack)
                runs.append(_suite(stack_json, reports=workdir / f"n{scale}-{i}")[0])
            load = _pgss_suite(stack)
            times[scale] = _median(runs)
            fig.say(f"2. nightly at {scale:g}× × {days} days: median {times[scale]:.2f} s over {reps} runs "
                    f"(stack start incl. seed {seeded:.0f} s; job_executions {volume[0]:,}, business_events "
                    f"{volume[1]:,}, mensagens_grupo {volume[2]:,}, interacoes {volume[3]:,}; db {volume[4]})")
            over = "OVER" if load["slowest_ms"] > STATEMENT_BUDGET_MS else "within"
            fig.say(f"3. load at {scale:g}×: {load['statements']} statements ({load['distinct']} distinct), "
                    f"{load['rows']:,} rows returned, {load['blocks']:,} buffer blocks touched; slowest "
                    f"{load['slowest_ms']:.1f} ms ({over} {STATEMENT_BUDGET_MS:.0f} ms): {load['slowest_query']}")
            if scale == scales[0]:
                par = [_suite(stack_json, "-n", "2", reports=workdir / f"p{i}")[0] for i in range(reps)]
                p = _median(par)
                fig.say(f"4. nightly -n 2: median {p:.2f} s vs -n 0 {times[scale]:.2f} s; ratio {p / times[scale]:.2f}")
        finally:
            _say_if_dead(fig, stack)
            stack.stop()
    if len(scales) >= 2:
        lo, hi = scales[0], scales[-1]
        ratio = times[hi] / times[lo]
        verdict = "within" if ratio <= SCALE_BUDGET else "OVER"
        fig.say(f"2. ratio {hi:g}×/{lo:g}× = {ratio:.2f} — {verdict} the {SCALE_BUDGET} budget")


def machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu or platform.machine()}), {mem:.0f} GiB, {platform.platform()}, Python {platform.python_version()}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--scales", default="1,10")
    ap.add_argument("--pg", default="default,17",
                    help="PostgreSQL majors, comma-separated ('default': the stack's own choice)")
    ap.add_argument("--gate-against", metavar="DIR", type=Path, default=None,
                    help="also time the gate of the checkout DIR, interleaved with this one's (see above)")
    ap.add_argument("--gate-only", action="store_true", help="the gate's figures only (no nightly runs)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results.md"))
    args = ap.parse_args()
    if args.gate_against is not None and not (args.gate_against / "checks").is_dir():
        ap.error(f"--gate-against {args.gate_against}: not a checkout of this suite (no checks/ there)")
    scales = [float(x) for x in args.scales.split(",")]
    majors = [None if m.strip() == "default" else int(m) for m in args.pg.split(",") if m.strip()]
    fig = Figures()
    fig.say(f"julia-conformance benchmark — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    fig.say(f"machine: {machine()}")
    extra = (f" --gate-against {args.gate_against}" if args.gate_against else "") + (
        " --gate-only" if args.gate_only else "")
    fig.say(f"command: .venv/bin/python bench/run.py --reps {args.reps} --days {args.days} --scales {args.scales} "
            f"--pg {args.pg}{extra}")
    fig.say(f"load average at the start: {os.getloadavg()[0]:.2f}")
    for major in majors:
        with tempfile.TemporaryDirectory(prefix="jc-bench-") as tmp:
            work = Path(tmp)
            bench_gate(fig, args.reps, work, major, args.gate_against)
            if not args.gate_only:
                bench_scale(fig, args.reps, args.days, scales, work, major)
    out = Path(args.out)
    # The figures are rewritten; a "## Notes" part written by a person is kept.
    notes = ""
    if out.exists() and "\n## Notes" in out.read_text():
        notes = "\n## Notes" + out.read_text().split("\n## Notes", 1)[1]
    out.write_text("# Benchmark results\n\n```\n" + "\n".join(fig.lines) + "\n```\n" + notes)
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
