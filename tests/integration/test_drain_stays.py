"""A worker drained through Redis with exit_when_drained=False (how the operator
runs workers): it finishes what it holds, stays up idle and not ready, claims
nothing more, and leaves only when stopped (SIGTERM in a pod)."""

from __future__ import annotations

import threading
import time

from pids.client import Client
from pids.embedded import EmbeddedRedis
from pids.settings import WorkerSettings
from pids.task import TaskState
from pids.worker import Worker


def test_worker_drained_through_redis_stays_idle_until_stopped(
    redis_server: EmbeddedRedis, cluster: str, client: Client
) -> None:
    settings = WorkerSettings(
        redis_url=redis_server.url,
        cluster=cluster,
        worker_id="stayer",
        concurrency=2,
        heartbeat_seconds=0.2,
        lease_seconds=5.0,
        exit_when_drained=False,
    )
    worker = Worker(settings)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        first = client.submit_batch("before", "pids.tasks:sleep", [[0.3]] * 2)
        deadline = time.monotonic() + 30
        while client.cluster_stats().running < 2:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        client.drain_worker("stayer")
        assert set(client.wait(first, timeout=30).values()) == {TaskState.SUCCEEDED}  # held ones finish
        later = client.submit("pids.tasks:echo", "after the drain")
        time.sleep(1.5)
        assert thread.is_alive(), "a worker drained through Redis left although exit_when_drained=False"
        assert worker.ready() == (False, "draining") and worker.alive()[0]
        assert later.status() is TaskState.PENDING, "a drained worker claimed new work"
    finally:
        worker.drain()  # what SIGTERM does
        thread.join(timeout=15)
    assert not thread.is_alive(), "the drained worker did not leave on SIGTERM's drain"
    assert "stayer" not in {w.id for w in client.cluster_stats().workers if w.alive}  # left the worker table
