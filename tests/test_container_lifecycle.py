"""The container stack lives exactly as long as its run, like the native one: started once
(also under -n 2), on one network of its own where the app reaches its services by container
name, and gone afterwards — passed, interrupted with Ctrl-C or SIGTERM, or (killed outright)
at the next start on this machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from fixtures.stack import containers as cs
from fixtures.stack.launcher import StackError
from tests.conftest import ROOT, run_suite, skip_without_containers


# The checks the container backend serves today: it runs the API, PostgreSQL and Redis, not
# yet julia-worker / julia-scheduler (the runtime checks need them: the remaining seam).
CONTAINER_CHECKS = ("checks/test_health.py", "checks/test_guards.py", "checks/test_health_extras.py",
                    "checks/test_schema.py")


@pytest.fixture(scope="module")
def engine() -> Iterator[docker.DockerClient]:
    skip_without_containers()
    client = docker.from_env()
    yield client
    client.close()


def _left(engine: docker.DockerClient, run_id: str) -> tuple[list[str], list[str]]:
    containers, networks = cs.run_resources(engine, run_id)
    return [c.name for c in containers], [n.name for n in networks]


def _stack_dirs(run_id: str) -> list[Path]:
    return [p for p in Path(tempfile.gettempdir()).glob("jc-stack-*") if run_id in p.name]


def test_parallel_run_shares_one_stack_and_leaves_nothing(engine: docker.DockerClient, tmp_path: Path) -> None:
    # '.' and '_' are fine in a run id but not in a host name: the services' names are slugs.
    run_id = f"lifecycle.containers_xdist-{os.getpid()}"
    run = run_suite("--target", "local", "--stack", "containers", "-n", "2",
                    reports=tmp_path / "reports", env={"JC_RUN_ID": run_id}, paths=CONTAINER_CHECKS)
    assert run.exitcode == 0, run.output[-3000:]
    assert run.certificate is not None and run.certificate["verdict"] == "certified"
    assert run.output.count("stack: containers") == 1  # one stack, started by the controller
    assert _left(engine, run_id) == ([], [])
    assert _stack_dirs(run_id) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_run_leaves_nothing(engine: docker.DockerClient, tmp_path: Path, sig: int) -> None:
    run_id = f"lifecycle-containers-{sig}-{os.getpid()}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", *CONTAINER_CHECKS, "tests/probes/probe_slow.py", "-q",
         "-p", "no:cacheprovider", "--stack", "containers", "--reports-dir", str(tmp_path / "reports")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "JC_RUN_ID": run_id},
    )
    results = tmp_path / "reports" / run_id / "allure-results"
    deadline = time.monotonic() + 180
    # interrupt mid-tests, not mid-start: once the checks write results
    while time.monotonic() < deadline and proc.poll() is None and not any(results.glob("*-result.json")):
        time.sleep(0.2)
    names, _ = _left(engine, run_id)
    assert any(n.endswith("-api") for n in names), "the run never started its stack"
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2, out[-3000:]
    assert _left(engine, run_id) == ([], []), out[-2000:]
    assert _stack_dirs(run_id) == []


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_killed_runs_leftovers_are_reaped(engine: docker.DockerClient) -> None:
    """What a SIGKILLed run leaves (nobody could clean up) goes at the next start; what a
    live run owns stays."""
    image = cs.Images().redis
    made: dict[str, tuple[Any, Any]] = {}
    for who, pid in (("dead", _dead_pid()), ("alive", os.getpid())):
        run_id = f"reap-{who}-{os.getpid()}"
        labels = {cs.LABEL_RUN: run_id, cs.LABEL_SERVICE: "redis", cs.LABEL_OWNER: cs.owner_label(pid)}
        net = engine.networks.create(f"jc-{run_id}", labels=labels)
        ctr = engine.containers.create(image, name=f"jc-{run_id}-redis", labels=labels, network=net.name)
        made[who] = (run_id, ctr)
    try:
        reaped = cs.reap_orphans(engine)
        assert made["dead"][0] in reaped
        assert made["alive"][0] not in reaped
        assert _left(engine, made["dead"][0]) == ([], [])
        assert _left(engine, made["alive"][0]) == ([f"jc-{made['alive'][0]}-redis"], [f"jc-{made['alive'][0]}"])
    finally:
        for run_id, _ in made.values():
            cs.remove_run(engine, run_id)
    assert _left(engine, made["alive"][0]) == ([], [])


# --- on the session's container stack -------------------------------------------------------


@pytest.mark.backends("containers")
def test_services_reach_each_other_by_container_name(stack: Any, engine: docker.DockerClient) -> None:
    """One network per run; the app's DATABASE_URL / REDIS_URL name the containers, as
    Railway's services name each other."""
    containers, networks = cs.run_resources(engine, stack.run_id)
    assert [n.name for n in networks] == [f"jc-{cs._slug(stack.run_id)}"]
    by_service = {c.labels[cs.LABEL_SERVICE]: c for c in containers}
    assert {"postgres", "redis", "api"} <= set(by_service)
    for c in containers:
        assert list(c.attrs["NetworkSettings"]["Networks"]) == [networks[0].name]
    env = dict(e.split("=", 1) for e in by_service["api"].attrs["Config"]["Env"])
    assert f"@{by_service['postgres'].name}:5432/" in env["DATABASE_URL"]
    assert env["REDIS_URL"].startswith(f"redis://{by_service['redis'].name}:6379/")
    # published on loopback only
    for c in containers:
        for bindings in (c.attrs["HostConfig"]["PortBindings"] or {}).values():
            assert {b["HostIp"] for b in bindings} == {"127.0.0.1"}


@pytest.mark.backends("containers")
def test_a_second_app_container_joins_and_goes(healthy: Any) -> None:
    """The mechanism of rule 4's fault (a second scheduler): one more container of the app
    image on the run's network, removed with the run or on demand."""
    port = healthy.add_app_service("api-2", "api")
    assert port is not None and healthy.running("api-2")
    healthy.remove_service("api-2")
    assert "api-2" not in healthy.containers


@pytest.mark.backends("containers")
def test_an_app_container_that_cannot_start_says_why(healthy: Any) -> None:
    with pytest.raises(StackError, match=r"api-bad container exited.*PORT=none is not a TCP port number"):
        healthy.add_app_service("api-bad", "api", extra_env={"PORT": "none"})
    healthy.remove_service("api-bad")
