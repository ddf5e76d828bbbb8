"""Nothing a task or a value does ends or wedges a worker (real redis-server, real `pids worker`
processes): each poison thing fails its own task, and the tasks after it run."""

from __future__ import annotations

import socket
import time

import pytest

from pids.client import Client
from pids.embedded import EmbeddedRedis, free_port
from pids.task import TaskState
from tests.harness import TEST_TASKS, WorkerFactory, get

POOLS = [
    pytest.param({"pool": "process", "concurrency": 2}, id="process"),
    pytest.param({"pool": "thread", "concurrency": 2}, id="threads"),
    pytest.param({"pool": "thread", "concurrency": 1}, id="inline"),
]


@pytest.mark.parametrize("pool", POOLS)
def test_a_task_ending_its_process_or_thread_fails_only_itself(
    client: Client, start_workers: WorkerFactory, pool: dict[str, object]
) -> None:
    """SystemExit (even sys.exit(0)), KeyboardInterrupt and a bare BaseException raised by tasks:
    each fails its task; the worker lives on and runs what comes after."""
    (worker,) = start_workers(1, allowed_modules=TEST_TASKS, **pool)
    bad = [
        client.submit(f"pids_test_tasks:{fn}", max_attempts=1) for fn in ("exit_process", "interrupt", "base_exception")
    ]
    good = client.map("pids.tasks:square", range(10))
    states = client.wait(bad + good, timeout=60)
    assert [states[h.id] for h in bad] == [TaskState.FAILED] * 3
    assert [h.info().error.split(":")[0] for h in bad] == ["SystemExit", "KeyboardInterrupt", "BaseException"]
    assert client.results([h.id for h in good]) == [i * i for i in range(10)]
    assert worker.poll() is None


def test_a_cpu_bound_task_holding_the_gil_keeps_its_worker_alive_and_healthy(
    client: Client, start_workers: WorkerFactory
) -> None:
    """On process slots a task that holds the GIL for far longer than the heartbeat TTL (0.6 s
    here) neither stops the heartbeat (its task is not given to another worker) nor the health
    endpoint."""
    port = free_port()
    start_workers(1, allowed_modules=TEST_TASKS, pool="process", concurrency=1, health_port=port)
    start_workers(1, prefix="other", allowed_modules=TEST_TASKS, pool="process", concurrency=1)
    handle = client.submit("pids_test_tasks:hold_gil", 80_000_000, max_attempts=3)
    answers = []
    while handle.status() is not TaskState.SUCCEEDED:
        answers.append(get(port, "/healthz")[0])
        time.sleep(0.1)
    assert handle.info().attempt == 1 and client.cluster_stats().succeeded == 1
    assert answers and set(answers) == {200}
    assert int(client.redis.hget(client.keys.stats, "released") or 0) == 0


def test_a_task_blocked_past_its_timeout_is_killed_and_the_next_tasks_run(
    client: Client, start_workers: WorkerFactory
) -> None:
    start_workers(1, allowed_modules=TEST_TASKS, pool="process", concurrency=1)
    stuck = [client.submit("pids_test_tasks:block", 600.0, timeout=0.2, max_attempts=1) for _ in range(3)]
    after = client.map("pids.tasks:square", range(5))
    states = client.wait(stuck + after, timeout=60)
    assert {states[h.id] for h in stuck} == {TaskState.FAILED}
    assert all("its process was killed" in h.info().error for h in stuck)
    assert client.results([h.id for h in after]) == [0, 1, 4, 9, 16]


def test_deeply_nested_arguments_written_past_the_client_fail_their_task(
    client: Client, start_workers: WorkerFactory
) -> None:
    """A task whose arguments were written straight into Redis, nested deeper than any decoder
    goes: the worker that claims it fails it (for good), and stays."""
    poison = client.submit("pids.tasks:echo", 1, task_id="poison", max_attempts=3)
    spec = client.redis.hget(client.keys.task(poison.id), "spec").rsplit("\t", 1)[0]  # all but the args
    client.redis.hset(client.keys.task(poison.id), "spec", spec + "\t" + "[" * 100_000 + "]" * 100_000)
    (worker,) = start_workers(1, pool="thread", concurrency=1)
    after = client.submit("pids.tasks:echo", "fine")
    assert client.wait([poison, after], timeout=30) == {poison.id: TaskState.FAILED, after.id: TaskState.SUCCEEDED}
    assert poison.info().attempt == 1 and "TaskArgumentsError" in poison.info().error
    assert worker.poll() is None


def test_a_task_record_not_written_by_enqueue_fails_its_task(client: Client, start_workers: WorkerFactory) -> None:
    """A spec field that is not enqueue's (here one without its separators): the task fails on
    what it names, the worker stays and runs the next task."""
    poison = client.submit("pids.tasks:echo", 1, max_attempts=1)
    client.redis.hset(client.keys.task(poison.id), "spec", "pids.tasks:echo [1]")
    (worker,) = start_workers(1, pool="thread", concurrency=1)
    after = client.submit("pids.tasks:echo", "fine")
    assert client.wait([poison, after], timeout=30) == {poison.id: TaskState.FAILED, after.id: TaskState.SUCCEEDED}
    assert "TaskFunctionError" in poison.info().error and worker.poll() is None


def test_a_result_larger_than_the_limit_fails_its_task(client: Client, start_workers: WorkerFactory) -> None:
    start_workers(1, allowed_modules=TEST_TASKS, max_result_bytes=1000)
    big = client.submit("pids_test_tasks:big_result", 5000)
    small = client.submit("pids_test_tasks:big_result", 10)
    assert client.wait([big, small], timeout=30) == {big.id: TaskState.FAILED, small.id: TaskState.SUCCEEDED}
    assert "more than the limit of 1000" in big.info().error and small.result() == "x" * 10


def test_a_result_redis_refuses_fails_its_task_and_not_the_completions_sent_with_it(
    cluster: str, start_workers: WorkerFactory
) -> None:
    """Redis refuses a bulk string longer than proto-max-bulk-len: that completion becomes its
    task's failure; the others in the same call are recorded, and nothing is sent forever."""
    with EmbeddedRedis(options=("--proto-max-bulk-len", "1mb")) as server:
        client = Client(server.url, cluster)
        handles = client.map("pids_test_tasks:big_result", [10, 2 << 20, 20, 30], max_attempts=1)
        (worker,) = start_workers(
            1,
            redis_url=server.url,
            wait=False,
            allowed_modules=TEST_TASKS,
            max_result_bytes=8 << 20,
            pool="thread",
            concurrency=4,
        )
        states = client.wait(handles, timeout=60)
        assert [states[h.id] for h in handles] == [
            TaskState.SUCCEEDED,
            TaskState.FAILED,
            TaskState.SUCCEEDED,
            TaskState.SUCCEEDED,
        ]
        assert "result could not be stored" in handles[1].info().error
        assert client.results([handles[0].id, handles[2].id]) == ["x" * 10, "x" * 20]
        assert worker.poll() is None


def test_the_health_server_listens_on_loopback_unless_told_otherwise(
    client: Client, start_workers: WorkerFactory
) -> None:
    port = free_port()
    start_workers(1, health_port=port)
    deadline = time.monotonic() + 10  # registered by its heartbeat; ready once its claim loop reached Redis too
    while get(port, "/readyz") != (200, "ready\n"):
        assert time.monotonic() < deadline, get(port, "/readyz")
        time.sleep(0.05)
    assert get(port, "/healthz")[0] == 200
    metrics = get(port, "/metrics")[1]
    assert "pids_redis_connected 1.0" in metrics and 'pids_redis_info{eviction_policy="noeviction"' in metrics
    with pytest.raises(OSError):  # another loopback address: not listened on
        socket.create_connection(("127.0.0.2", port), timeout=1).close()
