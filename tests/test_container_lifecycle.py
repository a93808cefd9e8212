"""The container stack: one network of its own per run where the app's services (API, worker,
scheduler: one image) reach PostgreSQL and Redis by container name; the native backend's
fault controls, done with containers; and what a run killed outright left, gone at the next
start on this machine. (Its healthy run and its interruptions: tests/test_lifecycle.py,
parametrized over both backends.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from typing import Any

import docker
import pytest
import redis

from fixtures.stack import container_runs as cs
from fixtures.stack.info import RUN_MARKER_ENV, StackError
from plugins.contract import runtime as contract_runtime
from tests.conftest import skip_without_containers


@pytest.fixture(scope="module")
def engine() -> Iterator[docker.DockerClient]:
    skip_without_containers()
    client = docker.from_env()
    yield client
    client.close()


def _left(engine: docker.DockerClient, run_id: str) -> tuple[list[str], list[str]]:
    containers, networks = cs.run_resources(engine, run_id)
    return [c.name for c in containers], [n.name for n in networks]


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


def _env(container: Any) -> dict[str, str]:
    return dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])


@pytest.mark.backends("containers")
def test_services_reach_each_other_by_container_name(stack: Any, engine: docker.DockerClient) -> None:
    """One network per run; the app's DATABASE_URL / REDIS_URL name the containers, as
    Railway's services name each other; worker and scheduler get what the native launcher
    gives their processes."""
    containers, networks = cs.run_resources(engine, stack.run_id)
    assert [n.name for n in networks] == [f"jc-{cs.slug(stack.run_id)}"]
    by_service = {c.labels[cs.LABEL_SERVICE]: c for c in containers}
    assert {"postgres", "redis", "api", "worker", "scheduler"} <= set(by_service)
    for c in containers:
        assert list(c.attrs["NetworkSettings"]["Networks"]) == [networks[0].name]
    for service in ("api", "worker", "scheduler"):
        env = _env(by_service[service])
        assert env["RUN_MODE"] == service
        assert f"@{by_service['postgres'].name}:5432/" in env["DATABASE_URL"]
        assert env["REDIS_URL"].startswith(f"redis://{by_service['redis'].name}:6379/")
        assert env[RUN_MARKER_ENV] == stack.run_id
    assert _env(by_service["worker"])["WORKER_INSTANCE"] == "julia-worker-1"
    assert _env(by_service["scheduler"])["SCHEDULER_INSTANCE"] == "julia-scheduler-1"
    assert _env(by_service["worker"])["TZ"] == _env(by_service["scheduler"])["TZ"] == "UTC"
    # published on loopback only; worker and scheduler publish nothing
    for c in containers:
        for bindings in (c.attrs["HostConfig"]["PortBindings"] or {}).values():
            assert {b["HostIp"] for b in bindings} == {"127.0.0.1"}
    assert not by_service["worker"].attrs["HostConfig"]["PortBindings"]
    assert not by_service["scheduler"].attrs["HostConfig"]["PortBindings"]


def _replicas(stack: Any) -> int:
    body = json.dumps({"query": "{ serviceInstance(serviceId: \"s\", environmentId: \"e\") { numReplicas } }"})
    req = urllib.request.Request(stack.info.railway_api_url, body.encode(), {"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback
        return int(json.load(resp)["data"]["serviceInstance"]["numReplicas"])


def _redis_keys(stack: Any, pattern: str) -> set[str]:
    client = redis.Redis.from_url(stack.info.redis_url, decode_responses=True)
    try:
        return set(client.keys(pattern))
    finally:
        client.close()


@pytest.mark.backends("containers")
def test_a_second_scheduler_container_joins_and_goes(healthy: Any, engine: docker.DockerClient) -> None:
    """Rule 4's fault, the container way: one more scheduler container of the app image on
    the run's network, ready by its heartbeat, counted by the platform stand-in while it
    runs, and gone with stop_extra_schedulers."""
    heartbeats = contract_runtime.load().scheduler.heartbeat_prefix + "*"
    assert _replicas(healthy) == 1
    extra = healthy.start_extra_scheduler()
    assert extra.running()
    assert _redis_keys(healthy, heartbeats) == {heartbeats[:-1] + "julia-scheduler-1",
                                                heartbeats[:-1] + "julia-scheduler-2"}
    assert _replicas(healthy) == 2
    extra.stop()  # SIGTERM through the image's init: the scheduler clears its heartbeat
    assert not extra.running() and _replicas(healthy) == 1
    assert _redis_keys(healthy, heartbeats) == {heartbeats[:-1] + "julia-scheduler-1"}
    healthy.stop_extra_schedulers()
    names = [c.name for c in cs.run_resources(engine, healthy.run_id)[0]]
    assert not [n for n in names if "scheduler-extra" in n]


@pytest.mark.backends("containers")
def test_runtime_containers_stop_and_come_back(healthy: Any) -> None:
    """stop_service / spawn_runtime / await_runtime on containers: a stopped worker takes its
    health-check key with it; started again, it is ready when the key is back."""
    key = contract_runtime.load().queue.health_check_key
    healthy.stop_service("worker")
    assert not healthy.running("worker") and _redis_keys(healthy, key) == set()
    booting = healthy.spawn_runtime("worker", "scheduler")
    assert booting == ["worker"]  # the scheduler kept running
    healthy.await_runtime(booting)
    assert healthy.running("worker") and _redis_keys(healthy, key) == {key}


@pytest.mark.backends("containers")
def test_an_app_container_that_cannot_start_says_why(healthy: Any) -> None:
    with pytest.raises(StackError, match=r"api-bad container exited.*PORT=none is not a TCP port number"):
        healthy.add_app_service("api-bad", "api", extra_env={"PORT": "none"})
    healthy.remove_service("api-bad")
