"""Connections against real servers: the password from a Secret wins over the URL's, and a
client through Sentinel follows the primary across a failover (Debian's redis-sentinel 7.0)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from pids.client import Client
from pids.connection import connect
from pids.embedded import EmbeddedRedis
from pids.task import TaskState
from tests.harness import WorkerFactory
from tests.integration.sentinel_set import PASSWORD, SentinelSet


@pytest.fixture(scope="module")
def protected_redis() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(password="the-secret") as server:
        yield server


@pytest.fixture
def sentinel_set() -> Iterator[SentinelSet]:
    s = SentinelSet(replicas=2, sentinels=3)
    try:
        yield s.start()
    finally:
        s.close()


def url_with_password(server: EmbeddedRedis, password: str) -> str:
    return f"redis://:{password}@127.0.0.1:{server.port}/0"


def test_password_given_wins_over_the_one_in_the_url(protected_redis: EmbeddedRedis) -> None:
    client = connect(url_with_password(protected_redis, "stale"), "the-secret")
    assert client.ping()


def test_url_password_is_used_when_none_is_given(protected_redis: EmbeddedRedis) -> None:
    assert connect(url_with_password(protected_redis, "the-secret")).ping()


def test_client_takes_the_password_from_the_environment(
    protected_redis: EmbeddedRedis, cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIDS_REDIS_PASSWORD", "the-secret")
    client = Client(url_with_password(protected_redis, "stale"), cluster)
    handle = client.submit("pids.tasks:square", 3)
    assert client.task_info(handle.id).state is TaskState.PENDING


def test_explicit_client_password_wins_over_the_environment(
    protected_redis: EmbeddedRedis, cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIDS_REDIS_PASSWORD", "wrong")
    Client(f"redis://127.0.0.1:{protected_redis.port}/0", cluster, password="the-secret").submit("pids.tasks:square", 1)
    with pytest.raises(redis.AuthenticationError):
        Client(f"redis://127.0.0.1:{protected_redis.port}/0", cluster).submit("pids.tasks:square", 1)


def test_client_through_sentinel_writes_to_the_primary(sentinel_set: SentinelSet, cluster: str) -> None:
    client = Client(sentinel_set.url, cluster, password=PASSWORD)
    handle = client.submit("pids.tasks:square", 4)
    primary = sentinel_set.redis(sentinel_set.primary_port())
    assert primary.hget(client.keys.task(handle.id), "state") == "pending"


def test_client_reaches_the_new_primary_after_the_old_one_is_killed(sentinel_set: SentinelSet, cluster: str) -> None:
    client = Client(sentinel_set.url, cluster, password=PASSWORD)
    before = client.submit("pids.tasks:square", 2)
    old = sentinel_set.primary_port()
    sentinel_set.wait_synced(old, 2)
    sentinel_set.kill(old)
    sentinel_set.wait_until(lambda: sentinel_set.primary_port() != old, "a Sentinel promoted a replica")
    after = None
    deadline = time.monotonic() + 30
    while after is None:
        try:
            after = client.submit("pids.tasks:square", 5)
        except (redis.ConnectionError, redis.TimeoutError):
            assert time.monotonic() < deadline, "the client never reached the new primary"
            time.sleep(0.2)
    new = sentinel_set.redis(sentinel_set.primary_port())
    assert new.info("replication")["role"] == "master"
    assert new.hget(client.keys.task(before.id), "state") == "pending", "a synced write was lost in the failover"
    assert new.hget(client.keys.task(after.id), "state") == "pending"


def test_worker_through_sentinel_finishes_every_task_across_a_failover(
    sentinel_set: SentinelSet, cluster: str, start_workers: WorkerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIDS_REDIS_PASSWORD", PASSWORD)  # the workers' environment
    client = Client(sentinel_set.url, cluster, password=PASSWORD, ack_replicas=1)  # as HA asks of clients
    start_workers(2, redis_url=sentinel_set.url, wait=False, concurrency=2, heartbeat_seconds=1.0, lease_seconds=10.0)
    handles = client.map("pids.tasks:sleep", [0.05] * 200)
    sentinel_set.wait_synced(sentinel_set.primary_port(), 2)
    sentinel_set.kill(sentinel_set.primary_port())
    states = _wait_through_failover(client, [h.id for h in handles], timeout=120)
    assert set(states.values()) == {TaskState.SUCCEEDED}


def _wait_through_failover(client: Client, ids: list[str], timeout: float) -> dict[str, TaskState]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return client.wait(ids, timeout=max(1.0, deadline - time.monotonic()))
        except (redis.ConnectionError, redis.TimeoutError):
            assert time.monotonic() < deadline, "tasks not finished"
            time.sleep(0.2)
