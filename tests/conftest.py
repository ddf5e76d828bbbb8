"""Shared fixtures: one real redis-server per session (on its own free port, never a
developer's Redis), a fresh cluster name per test, and worker processes."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest

from pids.client import Client
from pids.demo import WORKER_COMMAND
from pids.embedded import EmbeddedRedis
from tests.harness import WorkerFactory, worker_command, worker_env


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture
def cluster() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def client(redis_server: EmbeddedRedis, cluster: str) -> Client:
    return Client(redis_server.url, cluster)


@pytest.fixture
def start_workers(redis_server: EmbeddedRedis, cluster: str, client: Client) -> Iterator[WorkerFactory]:
    """start_workers(n, redis_url=None, wait=True, entry=..., **settings) -> processes; all are stopped at teardown."""
    started: list[subprocess.Popen[bytes]] = []
    per_prefix: dict[str, int] = {}

    def start(
        count: int,
        *,
        redis_url: str | None = None,
        wait: bool = True,
        prefix: str = "w",
        entry: tuple[str, ...] = WORKER_COMMAND,
        **options: object,
    ) -> list[subprocess.Popen[bytes]]:
        first = per_prefix.get(prefix, 0)
        per_prefix[prefix] = first + count
        processes = [
            subprocess.Popen(
                worker_command(redis_url or redis_server.url, cluster, f"{prefix}{first + i}", entry=entry, **options),
                start_new_session=True,
                env=worker_env(),
            )
            for i in range(count)
        ]
        started.extend(processes)
        if wait:
            deadline = time.monotonic() + 60
            ids = {f"{prefix}{first + i}" for i in range(count)}
            while not ids <= {w.id for w in client.cluster_stats().workers if w.alive}:
                assert all(p.poll() is None for p in processes), "a worker exited at start"
                assert time.monotonic() < deadline, "workers did not register in 60 s"
                time.sleep(0.05)
        return processes

    yield start
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


os.environ.setdefault("PYTHONUNBUFFERED", "1")
