"""Retrying dead letters (lua/retry.lua) against a real redis-server: back to the queue with
more attempts, fenced by the attempt the caller saw, and run again by real workers."""

from __future__ import annotations

import time

import pytest

from pids import reaper
from pids.client import Client
from pids.errors import TaskArgumentsError
from pids.protocol import Protocol
from pids.task import TaskState
from pids.wire import ClaimedTask, Completion


def dead_letter(client: Client, task_id: str, worker: str = "a", max_attempts: int = 1) -> None:
    """Enqueue `task_id`, claim it as `worker` and fail it for good."""
    p = client.protocol
    client.submit("pids.tasks:echo", task_id, task_id=task_id, max_attempts=max_attempts, weight=3.0, position="z1/n1")
    register(p, worker)
    (task,) = p.claim(worker, [task_id], lease_ms=5000)
    assert p.fail(worker, task, "Boom: not yet", retryable=False, backoff_ms=0, busy_seconds=0.0) == "failed"


def completion(task: ClaimedTask, result: str = '"ok"') -> Completion:
    return Completion(task.id, task.token, result, 0.0, task.weight, task.batch)


def register(protocol: Protocol, worker_id: str) -> None:
    protocol.heartbeat(worker_id, {"slots": 4, "speed": 1.0, "capacity": 4.0}, 5000, 5000)


def test_retry_sends_a_dead_letter_back_to_the_queue_with_more_attempts(client: Client) -> None:
    dead_letter(client, "t")
    assert client.retry(["t"], attempts=2) == {"t": "requeued"}
    info = client.task_info("t")
    assert info.state is TaskState.PENDING and info.max_attempts == 3 and info.finished_at is None
    assert client.dead_letters() == []
    snapshot = client.protocol.snapshot(10, heaviest=5)
    assert snapshot.task_ids == ["t"]
    _order, weight, _, position = snapshot.task_meta[0].split("\t")[:4]
    assert (float(weight), position) == (3.0, "z1/n1")
    assert client.redis.zscore(client.keys.pending_by_weight, "t") == 3.0
    assert client.cluster_stats().backlog == 1


def test_a_retried_task_runs_at_the_next_attempt_and_its_result_is_kept(client: Client) -> None:
    dead_letter(client, "t")
    client.retry(["t"])
    p = client.protocol
    (claimed,) = p.claim("b", ["t"], lease_ms=5000)
    assert claimed.attempt == 2
    assert p.complete("b", [completion(claimed)]).accepted == ["t"]
    assert client.result("t", timeout=1) == "ok"
    assert client.task_info("t").worker == "b"


def test_a_late_completion_of_the_attempt_before_the_retry_is_rejected(client: Client) -> None:
    p = client.protocol
    client.submit("pids.tasks:echo", 1, task_id="t", max_attempts=1)
    register(p, "a")
    (first,) = p.claim("a", ["t"], lease_ms=50)
    time.sleep(0.1)
    assert reaper.release_expired_leases(p) == (0, 1)  # the lease ran out with no attempt left: dead
    client.retry(["t"])
    p.claim("a", ["t"], lease_ms=5000)  # attempt 2, by the same worker
    assert p.complete("a", [completion(first, '"late"')]).stale == ["t"]
    assert client.task_info("t").state is TaskState.RUNNING


def test_retry_is_fenced_by_the_attempt_the_caller_saw(client: Client) -> None:
    dead_letter(client, "t")
    seen = client.task_info("t")
    assert client.retry([seen]) == {"t": "requeued"}
    p = client.protocol
    (again,) = p.claim("a", ["t"], lease_ms=5000)
    p.fail("a", again, "Boom again", retryable=True, backoff_ms=0, busy_seconds=0.0)  # no attempts left: dead
    assert client.task_info("t").state is TaskState.FAILED
    assert client.retry([seen]) == {"t": "stale"}  # what the caller saw is out of date
    assert client.task_info("t").state is TaskState.FAILED
    assert client.retry([client.task_info("t")]) == {"t": "requeued"}


def test_retry_leaves_tasks_that_are_not_dead_letters_alone(client: Client) -> None:
    client.submit("pids.tasks:echo", 1, task_id="waiting")
    dead_letter(client, "dead")
    client.protocol.claim("a", ["waiting"], lease_ms=5000)
    outcomes = client.retry(["waiting", "dead", "nowhere"])
    assert outcomes == {"waiting": "running", "dead": "requeued", "nowhere": "missing"}
    assert client.task_info("waiting").state is TaskState.RUNNING
    assert client.redis.hget(client.keys.stats, "dead_retried") == "1"


def test_retry_needs_at_least_one_more_attempt(client: Client) -> None:
    dead_letter(client, "t")
    with pytest.raises(TaskArgumentsError, match="at least 1 more attempt"):
        client.retry(["t"], attempts=0)
    assert client.task_info("t").state is TaskState.FAILED


def test_retry_of_a_large_batch_requeues_every_dead_letter(client: Client) -> None:
    p = client.protocol
    client.submit_batch("big", "pids.tasks:echo", [[i] for i in range(1200)], max_attempts=1)
    register(p, "a")
    ids = client.batch_ids("big")
    for start in range(0, len(ids), 500):
        for task in p.claim("a", ids[start : start + 500], lease_ms=60_000):
            p.fail("a", task, "Boom", retryable=False, backoff_ms=0, busy_seconds=0.0)
    assert len(client.dead_letters()) == 1200
    outcomes = client.retry(ids)
    assert set(outcomes.values()) == {"requeued"} and len(outcomes) == 1200
    assert client.cluster_stats().backlog == 1200 and client.dead_letters() == []
    assert client.protocol.snapshot(3).task_ids == ["big-0", "big-1", "big-2"]  # in their queue order


def test_a_requeued_task_and_its_batch_stop_expiring_until_final_again(client: Client) -> None:
    p = client.protocol
    client.submit_batch("b", "pids.tasks:echo", [[1], [2]], max_attempts=1)
    register(p, "a")
    first, second = p.claim("a", ["b-0", "b-1"], lease_ms=5000)
    assert p.complete("a", [completion(first)]).accepted == ["b-0"]
    p.fail("a", second, "Boom", retryable=False, backoff_ms=0, busy_seconds=0.0)
    assert client.redis.pttl(client.keys.task("b-1")) > 0 and client.redis.pttl(client.keys.batch("b")) > 0
    assert client.retry(["b-1"]) == {"b-1": "requeued"}
    assert client.redis.pttl(client.keys.task("b-1")) == -1 and client.redis.pttl(client.keys.batch("b")) == -1
    (again,) = p.claim("a", ["b-1"], lease_ms=5000)
    p.complete("a", [completion(again)])
    assert client.redis.pttl(client.keys.task("b-1")) > 0 and client.redis.pttl(client.keys.batch("b")) > 0
