"""`python -m pids_bench.worker`: a real worker under a baseline policy, and the policies a worker refuses."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from pids.client import Client
from pids.embedded import EmbeddedRedis
from pids.task import TaskState
from tests.harness import WorkerFactory

pytestmark = pytest.mark.integration

BENCH_WORKER = ("-m", "pids_bench.worker")


def run(*command: str) -> tuple[int, str]:
    """Exit code and stderr, its lines joined (errors are wrapped to the terminal's width)."""
    out = subprocess.run([sys.executable, *command], capture_output=True, text=True, timeout=60)
    return out.returncode, " ".join(out.stderr.split())


def test_early_binding_worker_binds_new_work_while_busy(client: Client, start_workers: WorkerFactory) -> None:
    """Round-robin binds every task when it is seen, as in the simulator: busy workers still
    claim (and queue) their share instead of waiting for a free slot."""
    start_workers(2, entry=BENCH_WORKER, policy="round_robin")
    first = client.submit_batch("first", "pids.tasks:sleep", [[3.0]] * 2)
    deadline = time.monotonic() + 10
    while client.cluster_stats().running < 2:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    second = client.submit_batch("second", "pids.tasks:sleep", [[0.01]] * 6)
    deadline = time.monotonic() + 2.0
    while client.cluster_stats().backlog > 0:
        assert time.monotonic() < deadline, "busy round-robin workers left new work pending"
        time.sleep(0.02)
    assert not any(h.status().is_final for h in first)  # both workers are still busy with the first tasks
    stats = client.cluster_stats()
    assert sorted(w.held for w in stats.workers) == [4, 4]  # 1 running + 3 queued each
    states = client.wait(first + second, timeout=30)
    assert set(states.values()) == {TaskState.SUCCEEDED}


def test_bench_worker_refuses_a_centralised_reference(redis_server: EmbeddedRedis, cluster: str) -> None:
    code, error = run(*BENCH_WORKER, "--policy", "lpt", "--redis-url", redis_server.url, "--cluster", cluster)
    assert code == 2
    assert "policy 'lpt' plans over the whole pending queue, which no worker sees" in error
    assert "a worker runs one of round_robin, random, least_loaded" in error


def test_pids_worker_refuses_a_baseline_and_names_where_it_runs(redis_server: EmbeddedRedis, cluster: str) -> None:
    code, error = run(
        "-m", "pids", "worker", "--policy", "round_robin", "--redis-url", redis_server.url, "--cluster", cluster
    )
    assert code == 2
    assert "placement policy 'round_robin' is not one a worker runs; choose one of: gravity" in error
    assert "python -m pids_bench.worker --policy NAME" in error
