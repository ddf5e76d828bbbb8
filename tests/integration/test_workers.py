"""Real worker processes on a real redis-server: nothing is lost, each task completes
once, dead workers' tasks are re-run, stale workers are fenced, Redis can go away."""

from __future__ import annotations

import os
import signal
import time

import numpy as np

from pids.client import Client, TaskHandle
from pids.embedded import EmbeddedRedis
from pids.task import TaskState
from tests.harness import WorkerFactory


def test_eight_workers_complete_two_thousand_tasks_exactly_once(client: Client, start_workers: WorkerFactory) -> None:
    rng = np.random.default_rng(7)
    weights = rng.uniform(0.5, 5.0, size=2000)
    start_workers(8, concurrency=2)
    items = [{"args": [i], "weight": float(w)} for i, w in enumerate(weights)]
    handles = client.submit_batch("big", "pids.tasks:square", items)
    states = client.wait(handles, timeout=240)
    assert set(states.values()) == {TaskState.SUCCEEDED}
    assert client.results([h.id for h in handles]) == [i * i for i in range(2000)]
    assert client.cluster_stats().succeeded == 2000  # one recorded completion per task
    stats = client.wait_for_worker_totals(2000)  # a worker sends its totals every few cycles, and before it waits
    assert sum(w.tasks_done for w in stats.workers) == 2000
    assert abs(sum(w.work_done for w in stats.workers) - weights.sum()) < 1e-6
    assert sum(1 for w in stats.workers if w.tasks_done) > 1


def kill_a_worker_running(client: Client, start_workers: WorkerFactory, batch: str, count: int) -> list[TaskHandle]:
    """Start a worker, give it `count` one-second tasks and kill -9 it while it runs them all."""
    victim, *_ = start_workers(1, prefix="victim", concurrency=count)
    handles = client.submit_batch(batch, "pids.tasks:sleep", [[1.0]] * count)
    deadline = time.monotonic() + 30
    while client.cluster_stats().running < count:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    return handles


def test_killed_worker_tasks_are_rerun_by_others(client: Client, start_workers: WorkerFactory) -> None:
    handles = kill_a_worker_running(client, start_workers, "slow", 4)
    start_workers(2, prefix="rescuer", concurrency=4)
    states = client.wait(handles, timeout=60)
    assert set(states.values()) == {TaskState.SUCCEEDED}
    infos = [h.info() for h in handles]
    assert all(i.attempt == 2 and i.worker.startswith("rescuer") for i in infos)
    assert client.cluster_stats().succeeded == 4


def test_a_worker_that_sees_a_dead_one_in_its_view_releases_it_without_waiting_for_the_reaper(
    client: Client, start_workers: WorkerFactory
) -> None:
    client.redis.set(client.keys.reaper, "someone-else", px=120_000)  # no reaper turn for anyone
    handles = kill_a_worker_running(client, start_workers, "orphans", 2)
    start_workers(1, prefix="rescuer", concurrency=2)
    assert set(client.wait(handles, timeout=30).values()) == {TaskState.SUCCEEDED}
    assert all(h.info().attempt == 2 and h.info().worker == "rescuer0" for h in handles)
    assert "victim0" not in {w.id for w in client.cluster_stats().workers}  # forgotten, too


def test_stale_worker_cannot_overwrite_newer_attempt(client: Client, start_workers: WorkerFactory) -> None:
    sleeper, *_ = start_workers(1, prefix="sleeper")
    handle = client.submit("pids.tasks:sleep", 1.0, task_id="fenced")
    deadline = time.monotonic() + 30
    while handle.status() is not TaskState.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(sleeper.pid, signal.SIGSTOP)  # frozen: no heartbeat, its lease runs out
    try:
        start_workers(1, prefix="fresh")
        assert client.wait([handle], timeout=30)["fenced"] is TaskState.SUCCEEDED
        info = handle.info()
        assert info.attempt == 2 and info.worker == "fresh0"
    finally:
        os.kill(sleeper.pid, signal.SIGCONT)  # wakes, finishes attempt 1, tries to complete it
    deadline = time.monotonic() + 10
    while int(client.redis.hget(client.keys.stats, "stale") or 0) < 1:
        assert time.monotonic() < deadline, "the stale completion never arrived"
        time.sleep(0.05)
    info = handle.info()
    assert info.state is TaskState.SUCCEEDED and info.attempt == 2 and info.worker == "fresh0"
    assert client.cluster_stats().succeeded == 1


def test_poison_task_is_dead_lettered_and_others_complete(client: Client, start_workers: WorkerFactory) -> None:
    start_workers(2, concurrency=2)
    poison = client.submit("pids.tasks:fail", "poison!", max_attempts=3)
    good = client.map("pids.tasks:square", range(50))
    forbidden = client.submit("os:system", "true")
    unknown = client.submit("pids.tasks:does_not_exist")
    malformed = client.submit("pids.tasks:square", 1, 2, 3)
    client.protocol.redis.hset(client.keys.task(poison.id), "max_attempts", 3)
    states = client.wait([poison, forbidden, unknown, malformed, *good], timeout=60)
    assert all(states[h.id] is TaskState.SUCCEEDED for h in good)
    assert client.results([h.id for h in good]) == [i * i for i in range(50)]
    dead = {d.id: d for d in client.dead_letters()}
    assert dead[poison.id].attempt == 3 and "RuntimeError: poison!" in dead[poison.id].error
    assert dead[forbidden.id].attempt == 1 and "not allowed" in dead[forbidden.id].error
    assert dead[unknown.id].attempt == 1 and "no callable 'does_not_exist'" in dead[unknown.id].error
    assert dead[malformed.id].attempt == 1 and "arguments do not fit" in dead[malformed.id].error


def test_workers_survive_redis_restart_with_nothing_lost(cluster: str, start_workers: WorkerFactory) -> None:
    with EmbeddedRedis(appendonly=True) as server:
        client = Client(server.url, cluster)
        workers = start_workers(3, redis_url=server.url, wait=False, concurrency=2)
        deadline = time.monotonic() + 60
        while sum(w.alive for w in client.cluster_stats().workers) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        handles = client.submit_batch("outage", "pids.tasks:sleep", [[0.05]] * 300)
        while client.cluster_stats().succeeded < 20:
            time.sleep(0.02)
        server.stop()
        time.sleep(5)
        server.start()
        states = client.wait(handles, timeout=120)
        assert set(states.values()) == {TaskState.SUCCEEDED}
        assert client.cluster_stats().succeeded == 300
        assert all(p.poll() is None for p in workers)


def test_sigterm_drains_held_tasks_before_exit(client: Client, start_workers: WorkerFactory) -> None:
    worker, *_ = start_workers(1, concurrency=3)
    handles = client.submit_batch("drain", "pids.tasks:sleep", [[0.5]] * 6)
    deadline = time.monotonic() + 30
    while client.cluster_stats().running < 3:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    status = client.batch_status("drain")
    assert status.counts == {"succeeded": 3, "pending": 3}  # held ones finished, nothing else was taken
    assert [w.tasks_done for w in client.cluster_stats().workers] == [3]  # its totals went out as it left
    start_workers(1, prefix="after")
    assert set(client.wait(handles, timeout=30).values()) == {TaskState.SUCCEEDED}


def test_one_slot_worker_finishes_its_task_on_interrupt_and_a_second_one_releases_it(
    client: Client, start_workers: WorkerFactory
) -> None:
    """At one slot a task without a timeout runs on the claim loop's own thread. Ctrl-C drains
    (the task finishes); a second Ctrl-C leaves at once and the task goes back to the queue."""

    def running(handle: TaskHandle) -> None:
        deadline = time.monotonic() + 30
        while handle.status() is not TaskState.RUNNING:
            assert time.monotonic() < deadline
            time.sleep(0.02)

    worker, *_ = start_workers(1, concurrency=1)
    short = client.submit("pids.tasks:sleep", 1.0)
    running(short)
    worker.send_signal(signal.SIGINT)
    assert worker.wait(timeout=30) == 0
    assert short.status() is TaskState.SUCCEEDED

    worker, *_ = start_workers(1, concurrency=1, prefix="again")
    long = client.submit("pids.tasks:sleep", 600.0)
    running(long)
    worker.send_signal(signal.SIGINT)
    time.sleep(0.3)
    worker.send_signal(signal.SIGINT)
    assert worker.wait(timeout=30) == 0
    info = long.info()
    assert info.state is TaskState.PENDING and info.attempt == 1  # released, to run again elsewhere
    assert client.cluster_stats().running == 0


def test_task_past_its_timeout_is_failed_and_retried(client: Client, start_workers: WorkerFactory) -> None:
    start_workers(1, concurrency=1)
    slow = client.submit("pids.tasks:sleep", 3.0, timeout=0.3, max_attempts=2)
    after = client.submit("pids.tasks:echo", "next")
    assert client.wait([slow, after], timeout=30) == {slow.id: TaskState.FAILED, after.id: TaskState.SUCCEEDED}
    info = slow.info()
    assert info.attempt == 2 and "timeout of 0.3s" in info.error


def test_one_slot_worker_runs_its_prefetched_batch_one_task_at_a_time_and_reports_as_it_goes(
    client: Client, start_workers: WorkerFactory
) -> None:
    """One slot with prefetch: the claim loop runs the batch itself, a task with a timeout goes
    to the slot thread (which enforces it), and never are two tasks of the batch running at once."""
    before = [client.submit("pids.tasks:sleep", 0.15) for _ in range(4)]
    on_slot = client.submit("pids.tasks:sleep", 0.15, timeout=5.0)
    overdue = client.submit("pids.tasks:sleep", 3.0, timeout=0.3, max_attempts=1)
    after = [client.submit("pids.tasks:sleep", 0.15) for _ in range(4)]
    start_workers(1, concurrency=1, prefetch=9)
    handles = [*before, on_slot, overdue, *after]
    states = client.wait(handles, timeout=30)
    assert states == {h.id: TaskState.FAILED if h is overdue else TaskState.SUCCEEDED for h in handles}
    assert "timeout of 0.3s" in overdue.info().error
    infos = [h.info() for h in handles]
    assert {i.attempt for i in infos} == {1}  # claimed once, in one batch or a few
    span = max(i.finished_at for i in infos) - min(i.claimed_at for i in infos)
    assert span >= 9 * 0.15 + 0.3 - 0.01  # one at a time: no two sleeps overlapped
    assert len({i.finished_at for i in infos}) >= 5  # results went out while the batch ran, not all at its end


def test_a_task_trickling_in_never_waits_for_a_sleeping_worker(client: Client, start_workers: WorkerFactory) -> None:
    """Enqueue wakes the worker idle longest; the plan may give the task to the other one, which
    sleeps until new work or its idle timeout (1 s). The woken worker wakes the one it chose."""
    start_workers(2, concurrency=1)
    deadline = time.monotonic() + 10
    while client.redis.zcard(client.keys.idle) < 2:  # both asleep, waiting for work
        assert time.monotonic() < deadline
        time.sleep(0.02)
    waits = []
    for i in range(4):  # spaced past the idle timeout, so each one finds both workers asleep
        handle = client.submit("pids.tasks:echo", i)
        assert client.wait([handle], timeout=10)[handle.id] is TaskState.SUCCEEDED
        waits.append(handle.info().wait_seconds)
        time.sleep(1.3)
    assert max(waits) < 0.3, waits  # a task left to a sleeping worker would wait up to its 1 s timeout
