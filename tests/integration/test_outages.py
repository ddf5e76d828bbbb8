"""Redis going away, coming back (with its data or empty), filling up, refusing the password:
workers stay up (not ready while Redis is away), keep their results, run nothing twice when the
data survived, and refuse work from a lost data set; clients ride out blips and never hang."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from pids.client import Client
from pids.embedded import EmbeddedRedis, free_port
from pids.errors import RedisUnavailable, TaskLost
from pids.task import TaskState
from tests.harness import TEST_TASKS, WorkerFactory, get, worker_command, worker_env


def wait_until(predicate, timeout: float = 30.0, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def registered(client: Client, count: int) -> None:
    wait_until(lambda: sum(w.alive for w in client.cluster_stats().workers) >= count, what=f"{count} workers")


@pytest.fixture
def durable() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(appendonly=True) as server:
        yield server


def test_an_outage_longer_than_the_heartbeat_ttl_runs_nothing_twice(
    cluster: str, durable: EmbeddedRedis, start_workers: WorkerFactory
) -> None:
    """Redis away for 2 s, three times the heartbeat TTL: when it is back, the first worker to
    reconnect must not declare its peers dead before they could heartbeat."""
    client = Client(durable.url, cluster)
    start_workers(3, redis_url=durable.url, wait=False, concurrency=2, pool="thread")
    registered(client, 3)
    handles = client.map("pids.tasks:sleep", [3.0] * 6)
    wait_until(lambda: client.cluster_stats().running == 6, what="all six running")
    durable.stop()
    time.sleep(2.0)
    durable.start()
    assert set(client.wait(handles, timeout=60).values()) == {TaskState.SUCCEEDED}
    assert {h.info().attempt for h in handles} == {1}
    assert int(client.redis.hget(client.keys.stats, "released") or 0) == 0


def test_a_worker_survives_redis_restarting_empty_and_its_old_results_are_refused(
    cluster: str, start_workers: WorkerFactory
) -> None:
    """An empty restart is a new epoch: the tasks of the old data set are gone (TaskLost for a
    client waiting on them), the results still running come back refused, and new work runs."""
    with EmbeddedRedis() as server:
        client = Client(server.url, cluster)
        port = free_port()
        (worker,) = start_workers(1, redis_url=server.url, wait=False, concurrency=2, pool="thread", health_port=port)
        registered(client, 1)
        old = client.map("pids.tasks:sleep", [1.5] * 2)
        epoch = client.epoch()
        wait_until(lambda: client.cluster_stats().running == 2, what="both running")
        server.stop()
        server.wipe()
        server.start()
        with pytest.raises(TaskLost, match="Redis lost its data"):
            client.wait(old, timeout=10)
        new = client.map("pids.tasks:square", range(5))
        assert set(client.wait(new, timeout=30).values()) == {TaskState.SUCCEEDED}
        assert client.epoch() != epoch and worker.poll() is None
        wait_until(lambda: "pids_completions_stale_total 2.0" in get(port, "/metrics")[1], what="two stale results")
        assert "pids_redis_epoch_changes 1.0" in get(port, "/metrics")[1]
        assert client.cluster_stats().succeeded == 5


def test_workers_wait_out_a_full_redis_and_deliver_every_result_once_it_has_room(
    cluster: str, start_workers: WorkerFactory
) -> None:
    with EmbeddedRedis() as server:
        client = Client(server.url, cluster)
        health = free_port()
        (worker,) = start_workers(
            1,
            redis_url=server.url,
            wait=False,
            allowed_modules=TEST_TASKS,
            concurrency=2,
            pool="thread",
            health_port=health,
        )
        registered(client, 1)
        used = int(client.redis.info("memory")["used_memory"])
        client.redis.config_set("maxmemory", str(used + 400_000))  # room for a result or so, not ten
        handles = client.map("pids_test_tasks:big_result", [200_000] * 10)
        wait_until(
            lambda: 'pids_redis_faults_total{kind="oom"}' in get(health, "/metrics")[1],
            what="Redis refusing writes when full",
        )
        assert client.cluster_stats().succeeded < 10 and worker.poll() is None
        assert "not connected to Redis (oom)" in get(health, "/readyz")[1]
        client.redis.config_set("maxmemory", "0")
        assert set(client.wait(handles, timeout=60).values()) == {TaskState.SUCCEEDED}
        assert client.cluster_stats().succeeded == 10 and client.results([handles[0].id]) == ["x" * 200_000]


def test_sigterm_during_an_outage_ends_the_worker_within_its_drain_time(
    cluster: str, durable: EmbeddedRedis, start_workers: WorkerFactory
) -> None:
    client = Client(durable.url, cluster)
    (worker,) = start_workers(1, redis_url=durable.url, wait=False, drain_seconds=1, pool="thread")
    registered(client, 1)
    durable.stop()
    time.sleep(0.5)
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=15)  # drain time 1 s, then leaving gives up after three tries


def test_an_unreachable_redis_is_reported_in_logs_readiness_and_metrics(cluster: str) -> None:
    """No Redis at the address: the worker does not exit, says so at once and keeps saying it;
    /readyz fails with the reason, /metrics counts the faults."""
    port, health = free_port(), free_port()
    command = worker_command(f"redis://127.0.0.1:{port}/0", cluster, "lonely", health_port=health, drain_seconds=1)
    command[command.index("--log-level") + 1] = "INFO"
    worker = subprocess.Popen(command, env=worker_env(), stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_until(
            lambda: get(health, "/readyz")[0] == 503 and "unreachable" in get(health, "/readyz")[1],
            what="not ready, naming the fault",
        )
        wait_until(
            lambda: 'pids_redis_faults_total{kind="unreachable"}' in get(health, "/metrics")[1], what="faults counted"
        )
        assert "pids_redis_connected 0.0" in get(health, "/metrics")[1] and worker.poll() is None
    finally:
        worker.terminate()
        _, stderr = worker.communicate(timeout=30)
    assert "Redis unreachable (claim loop) failing" in stderr


def test_a_refused_password_is_reported_as_such(cluster: str) -> None:
    with EmbeddedRedis(password="right") as server:
        health = free_port()
        url = f"redis://:wrong@127.0.0.1:{server.port}/0"
        worker = subprocess.Popen(
            worker_command(url, cluster, "w", health_port=health, drain_seconds=1),  # SIGTERM: gone in 1 s
            env=worker_env(),
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            wait_until(
                lambda: 'pids_redis_faults_total{kind="auth"}' in get(health, "/metrics")[1], what="an auth fault"
            )
            assert "auth" in get(health, "/readyz")[1] and worker.poll() is None
        finally:
            worker.terminate()
            worker.communicate(timeout=30)


def test_an_evicting_redis_is_refused_at_start_unless_allowed(cluster: str) -> None:
    with EmbeddedRedis(options=("--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru")) as server:
        refused = subprocess.run(
            worker_command(server.url, cluster, "w"), env=worker_env(), capture_output=True, text=True, timeout=60
        )
        assert refused.returncode == 2 and "maxmemory-policy is 'allkeys-lru'" in refused.stderr
        allowed = subprocess.Popen(
            worker_command(server.url, cluster, "w", allow_evicting_redis="true"),
            env=worker_env(),
            start_new_session=True,
        )
        try:
            client = Client(server.url, cluster)
            assert client.submit("pids.tasks:square", 3).result(timeout=30) == 9
        finally:
            allowed.terminate()
            allowed.wait(timeout=30)


def test_a_client_wait_rides_out_a_short_redis_restart(
    cluster: str, durable: EmbeddedRedis, start_workers: WorkerFactory
) -> None:
    client = Client(durable.url, cluster)
    handle = client.submit("pids.tasks:sleep", 1.5)
    results: list[object] = []
    waiter = threading.Thread(target=lambda: results.append(handle.result(timeout=60)))
    waiter.start()
    time.sleep(0.3)
    durable.stop()
    time.sleep(0.7)
    durable.start()
    start_workers(1, redis_url=durable.url, wait=False, pool="thread")
    waiter.join(timeout=60)
    assert results == [1.5]


def test_a_client_wait_gives_up_with_redis_unavailable_after_its_reconnect_time(
    cluster: str, durable: EmbeddedRedis
) -> None:
    client = Client(durable.url, cluster, reconnect_seconds=1.0)
    handle = client.submit("pids.tasks:sleep", 1.0)
    durable.stop()
    started = time.monotonic()
    with pytest.raises(RedisUnavailable, match="unreachable"):
        handle.result(timeout=60)
    assert time.monotonic() - started < 30


class DropOneReply:
    """A TCP proxy in front of Redis that, once armed, forwards the next request containing
    `marker` to Redis but closes the client's connection instead of returning the reply: a claim
    that runs in Redis while its worker never hears of it."""

    def __init__(self, upstream_port: int, marker: bytes) -> None:
        self.upstream_port = upstream_port
        self.marker = marker
        self.armed = threading.Event()
        self.dropped = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            muted = threading.Event()  # the replies of this connection are no longer passed on
            threading.Thread(target=self._requests, args=(client, upstream, muted), daemon=True).start()
            threading.Thread(target=self._replies, args=(upstream, client, muted), daemon=True).start()

    def _requests(self, client: socket.socket, upstream: socket.socket, muted: threading.Event) -> None:
        try:
            while data := client.recv(65536):
                if self.armed.is_set() and self.marker in data:
                    self.armed.clear()
                    muted.set()
                    upstream.sendall(data)
                    time.sleep(0.2)  # Redis runs it; its reply goes nowhere
                    self.dropped.set()
                    break
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            client.close()
            upstream.close()

    def _replies(self, upstream: socket.socket, client: socket.socket, muted: threading.Event) -> None:
        try:
            while data := upstream.recv(65536):
                if not muted.is_set():
                    client.sendall(data)
        except OSError:
            pass


def test_a_claim_whose_reply_was_lost_goes_back_to_the_queue_at_once(
    cluster: str, durable: EmbeddedRedis, start_workers: WorkerFactory
) -> None:
    proxy = DropOneReply(durable.port, b"lost-0")
    client = Client(durable.url, cluster)
    start_workers(1, redis_url=f"redis://127.0.0.1:{proxy.port}/0", wait=False, lease_seconds=60, pool="thread")
    registered(client, 1)
    proxy.armed.set()
    handle = client.submit("pids.tasks:square", 7, task_id="lost-0")
    assert proxy.dropped.wait(30)
    assert handle.result(timeout=20) == 49  # well inside the 60 s lease
    assert handle.info().attempt == 2 and int(client.redis.hget(client.keys.stats, "released") or 0) == 1
