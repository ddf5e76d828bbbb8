"""Retention by the reaper's sweep: a worker lists the tasks it completes under its own retention
(no key expiry on their records or results) and the sweep deletes them once due, in order, never
a task that changed since it was listed, never one a second sweeper already handled."""

from __future__ import annotations

import time

from pids import reaper
from pids.client import Client
from pids.embedded import free_port
from pids.protocol import Protocol
from pids.task import TaskState
from pids.wire import ClaimedTask, Completion
from tests.harness import WorkerFactory, get


def worker_protocol(client: Client, retention_ms: int) -> Protocol:
    p = Protocol(client.redis, client.keys, list_retention_ms=retention_ms)
    p.heartbeat("a", {"slots": 8, "speed": 1.0, "capacity": 8.0}, 60_000, 60_000)
    return p


def done(task: ClaimedTask, result: str = "null") -> Completion:
    return Completion(task.id, task.token, result, 0.0, task.weight, task.batch)


def finish(p: Protocol, ids: list[str], results: list[str] | None = None) -> None:
    won = p.claim("a", ids, lease_ms=60_000)
    assert [t.id for t in won] == ids
    reply = p.complete("a", [done(t, r) for t, r in zip(won, results or ["null"] * len(won))])
    assert reply.accepted == ids


def test_tasks_with_the_workers_retention_are_listed_without_expiries_and_swept_once_due(client: Client) -> None:
    p = worker_protocol(client, 300)
    short = Client.from_redis(client.redis, client.keys.cluster, retention=0.3)
    short.submit_batch("r", "pids.tasks:echo", [[1], [2], [3]])
    longer = short.submit("pids.tasks:echo", 4, task_id="long", retention=30)
    kept = short.submit("pids.tasks:echo", 5, task_id="kept", retention=None)
    client.redis.config_resetstat()
    finish(p, ["r-0", "r-1", "r-2"], ['"a"', "null", '"c"'])
    assert client.redis.info("commandstats")["cmdstat_pexpire"]["calls"] == 1  # the batch list only
    finish(p, [longer.id, kept.id], ["4", "5"])
    ttl = client.redis.pttl
    listed = [client.keys.task(f"r-{i}") for i in range(3)] + [client.keys.result("r-0"), client.keys.result("r-2")]
    assert [ttl(key) for key in listed] == [-1] * len(listed)
    assert 0 < ttl(client.keys.batch("r")) <= 300
    assert 29_000 < ttl(client.keys.task(longer.id)) <= 30_000  # another retention: key expiry, as before
    assert ttl(client.keys.task(kept.id)) == -1
    assert client.redis.llen(client.keys.finals) == 3
    assert p.sweep(1000) == (0, 0)  # none due yet
    assert short.task_info("r-0").state is TaskState.SUCCEEDED and short.result("r-0", timeout=1) == "a"
    time.sleep(0.35)
    assert reaper.sweep_finals(p, budget_seconds=1.0, page=2) == 3  # two pages
    assert not client.redis.exists(*listed) and client.redis.llen(client.keys.finals) == 0
    assert kept.result(timeout=1) == 5 and longer.result(timeout=1) == 4


def test_the_sweep_leaves_a_listed_task_that_was_retained_or_finished_again_and_skips_junk(client: Client) -> None:
    p = worker_protocol(client, 1000)
    short = Client.from_redis(client.redis, client.keys.cluster, retention=1)
    ids = [short.submit("pids.tasks:echo", i, task_id=f"t{i}").id for i in range(5)]
    finish(p, ids[:2])
    client.redis.rpush(client.keys.finals, "junk", "12|3|")  # not written by complete.lua
    finish(p, ids[2:], ["2", "3", "4"])
    time.sleep(0.5)
    assert short.retain(["t0"], None) == 1  # kept until deleted
    assert short.retain(["t1"], 60) == 1  # a longer retention, from now: its own expiry
    assert short.retain(["t2"], 1) == 1  # the same retention, from now: its own expiry too
    client.redis.hset(client.keys.task("t3"), "finished_at", str(short.protocol.server_ms()))  # a later finish
    client.redis.delete(client.keys.task("t4"))
    time.sleep(0.6)
    assert p.sweep(1000) == (7, 0)  # every entry taken off, no task deleted by it
    assert client.redis.llen(client.keys.finals) == 0
    assert short.task_info("t0").state is TaskState.SUCCEEDED and client.redis.pttl(client.keys.task("t0")) == -1
    assert client.redis.pttl(client.keys.task("t1")) > 59_000 and client.redis.exists(client.keys.task("t3"))
    assert short.result("t2", timeout=1) == 2


def test_a_sweeper_that_read_the_list_before_another_swept_it_deletes_nothing(client: Client) -> None:
    p = worker_protocol(client, 100)
    short = Client.from_redis(client.redis, client.keys.cluster, retention=0.1)
    for i in range(4):
        short.submit("pids.tasks:echo", i, task_id=f"s{i}")
    finish(p, ["s0", "s1"])
    time.sleep(0.15)
    seen = list(client.redis.lrange(client.keys.finals, 0, -1))
    assert p.sweep(1000) == (2, 2)  # the other sweeper, first
    finish(p, ["s2", "s3"])  # listed behind, not due
    stale_keys = [
        client.keys.finals,
        *(k for i in (0, 1) for k in (client.keys.task(f"s{i}"), client.keys.result(f"s{i}"))),
    ]
    assert [int(n) for n in p.scripts["sweep"](keys=stale_keys, args=seen)] == [0, 0]
    assert client.redis.llen(client.keys.finals) == 2 and client.redis.exists(client.keys.task("s2"))


def test_a_worker_sweeps_the_tasks_it_completed_once_their_retention_is_over(
    client: Client, start_workers: WorkerFactory
) -> None:
    short = Client.from_redis(client.redis, client.keys.cluster, retention=1)
    handles = short.submit_batch("sw", "pids.tasks:echo", [[i] for i in range(50)])
    health = free_port()
    start_workers(1, retention_seconds=1, concurrency=4, health_port=health)
    assert [h.result(timeout=30) for h in handles] == list(range(50))
    assert all(client.redis.pttl(client.keys.task(h.id)) == -1 for h in handles)
    deadline = time.monotonic() + 20
    while client.redis.exists(*(client.keys.task(h.id) for h in handles)):
        assert time.monotonic() < deadline, "the sweep did not delete the tasks"
        time.sleep(0.2)
    assert not client.redis.exists(*(client.keys.result(h.id) for h in handles), client.keys.finals)
    assert "pids_tasks_swept 50.0" in get(health, "/metrics")[1]


def test_completions_fall_back_to_expiries_while_the_list_is_full(client: Client) -> None:
    """A sweep that cannot keep up must not let memory grow without bound: the list never holds
    more than max_listed entries, and a completion call that would go beyond gives its tasks (their
    records, results and batch list) expiries instead."""
    p = worker_protocol(client, 60_000)
    p.max_listed = 3
    short = Client.from_redis(client.redis, client.keys.cluster, retention=60)
    for i in range(2):
        short.submit("pids.tasks:echo", i, task_id=f"f{i}")
    short.submit_batch("fb", "pids.tasks:echo", [[2], [3]])
    finish(p, ["f0", "f1"])
    finish(p, ["fb-0", "fb-1"], ["2", "3"])  # 4 entries would pass the cap of 3
    assert [e.rsplit("|", 1)[1] for e in client.redis.lrange(client.keys.finals, 0, -1)] == ["f0", "f1"]
    ttl = client.redis.pttl
    assert [ttl(client.keys.task(i)) == -1 for i in ("f0", "f1", "fb-0", "fb-1")] == [True, True, False, False]
    assert 59_000 < ttl(client.keys.result("fb-1")) <= 60_000
    assert 59_000 < ttl(client.keys.batch("fb")) <= 60_000
    assert short.result("fb-1", timeout=1) == 3
