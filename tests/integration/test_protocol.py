"""The Lua protocol against a real redis-server: atomic claims, fencing, retries,
dead letters, lease and worker release, idempotent enqueue, cancel."""

from __future__ import annotations

import os
import signal
import time

import pytest
import redis

from pids import reaper
from pids.client import Client
from pids.connection import connect
from pids.embedded import EmbeddedRedis
from pids.errors import EnqueueNotAcknowledged, TaskArgumentsError, TaskFunctionError
from pids.protocol import Protocol
from pids.task import TaskState
from pids.wire import (
    DEPARTED_KEPT,
    DEPARTED_WORKERS,
    ClaimedTask,
    Completion,
    CompletionReply,
    CycleReply,
    CycleRequest,
    WorkerTotals,
)


def register(protocol: Protocol, worker_id: str, ttl_ms: int = 5000, lease_ms: int = 5000) -> None:
    protocol.heartbeat(worker_id, {"slots": 4, "speed": 1.0, "capacity": 4.0}, ttl_ms, lease_ms)


def done(task: ClaimedTask, result: str = "null", busy: float = 0.0) -> Completion:
    return Completion(task.id, task.token, result, busy, task.weight, task.batch)


def cycle(
    p: Protocol,
    worker: str,
    completions: list[Completion],
    claim_ids: list[str],
    lease_ms: int = 60_000,
    window: int = 8,
    *,
    read_snapshot: bool = True,
    wanted: int | None = None,
    totals: WorkerTotals | None = None,
    maybe_idle: bool = True,
) -> CycleReply:
    return p.cycle(
        CycleRequest(
            worker,
            completions,
            totals or WorkerTotals(),
            claim_ids,
            len(claim_ids) if wanted is None else wanted,
            lease_ms,
            maybe_idle,
            window if read_snapshot else 0,
        )
    )


def accepted(*ids: str) -> CompletionReply:
    return CompletionReply(list(ids), [], [])


def stale(*ids: str) -> CompletionReply:
    return CompletionReply([], list(ids), [])


def test_enqueue_same_task_id_twice_creates_one_task(client: Client) -> None:
    client.submit("pids.tasks:echo", 1, task_id="once")
    client.submit("pids.tasks:echo", 2, task_id="once")
    stats = client.cluster_stats()
    assert stats.enqueued == 1 and stats.backlog == 1
    assert client.protocol.snapshot(10).task_ids == ["once"]


def test_batch_enqueue_is_idempotent_per_batch_id(client: Client) -> None:
    client.submit_batch("b1", "pids.tasks:square", [[i] for i in range(20)])
    client.submit_batch("b1", "pids.tasks:square", [[i] for i in range(20)])
    assert client.batch_ids("b1") == [f"b1-{i}" for i in range(20)]
    assert client.cluster_stats().backlog == 20


def test_bad_input_is_rejected_with_a_clear_error(client: Client) -> None:
    with pytest.raises(TaskFunctionError, match="module:callable|package.module:callable"):
        client.submit("not a function")
    with pytest.raises(TaskArgumentsError, match="JSON-serialisable"):
        client.submit("pids.tasks:echo", object())
    with pytest.raises(TaskArgumentsError, match="weight"):
        client.submit("pids.tasks:echo", 1, weight=-1)
    assert client.cluster_stats().enqueued == 0


def test_claim_records_worker_attempt_and_lease_and_skips_claimed_tasks(client: Client) -> None:
    p = client.protocol
    client.submit("pids.tasks:echo", "x", task_id="t1", weight=2.5)
    register(p, "a")
    register(p, "b")
    won = p.claim("a", ["t1"], lease_ms=5000)
    assert [(t.id, t.attempt, t.fn, t.args_json, t.weight) for t in won] == [("t1", 1, "pids.tasks:echo", '["x"]', 2.5)]
    assert p.claim("b", ["t1"], lease_ms=5000) == []
    info = client.task_info("t1")
    assert info.state is TaskState.RUNNING and info.worker == "a" and info.attempt == 1
    lease = client.redis.zscore(client.keys.running, "t1")
    assert lease is not None and lease > info.claimed_at * 1000
    assert client.protocol.snapshot(10).loads["a"] == 2.5


def test_claim_takes_the_first_wanted_candidates_still_pending(client: Client) -> None:
    """A worker sends a few candidates more than it wants: taken ones are skipped, and the
    claim stops once it has won as many as it wants."""
    p = client.protocol
    client.submit_batch("c", "pids.tasks:noop", [[]] * 5)
    register(p, "a")
    register(p, "b")
    assert [t.id for t in p.claim("b", ["c-1"], lease_ms=5000)] == ["c-1"]
    won = p.claim("a", ["c-0", "c-1", "c-2", "c-3"], lease_ms=5000, wanted=2)
    assert [t.id for t in won] == ["c-0", "c-2"]
    assert client.batch_status("c").counts == {"running": 3, "pending": 2}
    assert p.snapshot(10).loads["a:n"] == 2


@pytest.mark.parametrize("wanted", [1, 3])
def test_a_claim_takes_an_id_sent_twice_once_and_drops_queue_entries_without_a_record(
    client: Client, wanted: int
) -> None:
    """An id sent twice is won once, and a queued id whose record is gone (a data set restored
    in part) leaves the queue without counting as won; the claim stops at `wanted`."""
    p = client.protocol
    client.submit_batch("c", "pids.tasks:noop", [[]] * 5)
    client.redis.delete(client.keys.task("c-1"))
    register(p, "a")
    won = p.claim("a", ["c-1", "c-0", "c-0", "c-2", "c-3"], lease_ms=5000, wanted=wanted)
    assert [(t.id, t.attempt) for t in won] == [("c-0", 1), ("c-2", 1), ("c-3", 1)][:wanted]
    left = client.redis.zrange(client.keys.pending, 0, -1)
    assert left == (["c-2", "c-3", "c-4"] if wanted == 1 else ["c-4"])
    assert sorted(client.redis.hkeys(client.keys.pending_meta)) == left
    assert p.snapshot(10).loads["a:n"] == wanted and client.redis.zcard(client.keys.running) == wanted


def test_a_task_queued_before_its_record_had_a_spec_is_claimed_whole(client: Client) -> None:
    """A record written before the claim's fields were packed into spec (fn, args, kwargs,
    timeout and batch each a field, no epoch) is claimed with all of them."""
    p = client.protocol
    client.submit_batch("old", "pids.tasks:echo", [{"args": [1, "a"], "kwargs": {"k": 2}}], timeout=5)
    key = client.keys.task("old-0")
    client.redis.hdel(key, "spec", "epoch")
    client.redis.hset(key, mapping={"args": '[1,"a"]', "kwargs": '{"k":2}', "timeout": "5.0"})
    register(p, "a")
    (task,) = p.claim("a", ["old-0"], lease_ms=5000)
    assert (task.fn, task.args_json, task.kwargs_json, task.timeout, task.batch) == (
        "pids.tasks:echo",
        '[1,"a"]',
        '{"k":2}',
        5.0,
        "old",
    )
    assert task.token.split("|")[2] == "0" and p.complete("a", [done(task, "1")]) == accepted("old-0")


def test_complete_is_fenced_by_attempt_and_worker(client: Client) -> None:
    p = client.protocol
    client.submit("pids.tasks:echo", "x", task_id="t1")
    register(p, "a")
    (first,) = p.claim("a", ["t1"], lease_ms=5000)
    p.release_worker("a", reason="test: a lost")
    register(p, "b")
    (second,) = p.claim("b", ["t1"], lease_ms=5000)
    assert second.attempt == 2
    # the old attempt wakes up late: rejected, the newer attempt's result wins
    assert p.complete("a", [done(first, '"stale"')]) == stale("t1")
    assert p.complete("b", [done(second, '"fresh"')]) == accepted("t1")
    assert client.result("t1", timeout=1) == "fresh"
    # the same completion sent again (its reply was lost) is known, and changes nothing
    assert p.complete("b", [done(second, '"again"')]) == CompletionReply([], [], ["t1"])
    assert client.result("t1", timeout=1) == "fresh" and client.cluster_stats().succeeded == 1


def test_first_claim_time_is_kept_across_attempts_and_claim_times_move(client: Client) -> None:
    p = client.protocol
    client.submit("pids.tasks:echo", "x", task_id="t1")
    pending = client.task_info("t1")
    assert pending.worker == "" and pending.first_claimed_at is None and pending.claimed_at is None
    assert pending.finished_at is None and pending.result_size is None
    register(p, "a")
    p.claim("a", ["t1"], lease_ms=5000)
    first = client.task_info("t1")
    assert first.first_claimed_at is not None and first.first_claimed_at == first.claimed_at
    p.release_worker("a", reason="test: a lost")
    time.sleep(0.01)
    register(p, "b")
    p.claim("b", ["t1"], lease_ms=5000)
    second = client.task_info("t1")
    assert (second.attempt, second.worker) == (2, "b")
    assert second.first_claimed_at == first.first_claimed_at and second.claimed_at > first.claimed_at


def test_a_claim_is_one_field_and_fences_everything_but_its_exact_token(client: Client) -> None:
    """A claim writes state and one claim field, "<attempt>|<ms>|<epoch>|<worker>" (the worker
    last, so any id works): a completion or failure with any other token — another worker, even
    one whose id is a prefix of the holder's, another attempt, another epoch — is stale."""
    p = client.protocol
    client.submit("pids.tasks:echo", "x", task_id="t1")
    register(p, "a|1")
    before = client.redis.hgetall(client.keys.task("t1"))
    (task,) = p.claim("a|1", ["t1"], lease_ms=5000)
    after = client.redis.hgetall(client.keys.task("t1"))
    changed = {f for f in after if after[f] != before[f]}
    assert changed == {"state", "claim"} and after["claim"] == task.token
    attempt, ms, epoch, worker = task.token.split("|", 3)
    assert (attempt, epoch, worker) == ("1", client.epoch(), "a|1")
    info = client.task_info("t1")
    assert (info.attempt, info.worker) == (1, "a|1") and info.claimed_at == int(ms) / 1000
    for token in (
        f"1|{ms}|{epoch}|a",
        f"2|{ms}|{epoch}|a|1",
        f"1|{ms}|{int(epoch) - 1}|a|1",
        f"1|{int(ms) - 1}|{epoch}|a|1",
    ):
        assert p.complete("a|1", [done(task._replace(token=token))]) == stale("t1")
        assert (
            p.fail("a|1", task._replace(token=token), "boom", retryable=True, backoff_ms=0, busy_seconds=0.0) == "stale"
        )
    assert p.complete("a|1", [done(task)]) == accepted("t1")


def test_claim_and_complete_add_no_field_to_the_task_hash_and_find_theirs_first(client: Client) -> None:
    """A small hash is a flat list scanned from the front: the fields claim and complete read and
    write lead it, and none is added later (a missing field costs a scan to the end)."""
    p = client.protocol
    client.submit("pids.tasks:echo", "x", task_id="t1")
    key = client.keys.task("t1")
    fields = list(client.redis.hkeys(key))
    assert fields[:3] == ["state", "claim", "weight"]
    hot = {  # read or written by every claim and completion
        "state",
        "claim",
        "weight",
        "spec",
        "epoch",
        "cancel_requested",
        "retention",
        "finished_at",
        "result_size",
    }
    assert set(fields[: len(hot)]) == hot
    assert {"error", "first_claimed_at"} <= set(fields)  # written later, by some claims and completions
    register(p, "a")
    (task,) = p.claim("a", ["t1"], lease_ms=5000)
    assert p.complete("a", [done(task, '"done"')]) == accepted("t1")
    assert list(client.redis.hkeys(key)) == fields
    assert client.task_info("t1").state is TaskState.SUCCEEDED and client.result("t1", timeout=1) == "done"


def test_a_null_result_stores_no_result_key_and_reads_as_none(client: Client) -> None:
    p = client.protocol
    client.submit_batch("n", "pids.tasks:noop", [[]] * 2)
    register(p, "a")
    first, second = p.claim("a", ["n-0", "n-1"], lease_ms=5000)
    assert p.complete("a", [done(first), done(second, "0")]) == accepted("n-0", "n-1")
    assert not client.redis.exists(client.keys.result("n-0")) and client.redis.exists(client.keys.result("n-1"))
    assert client.results(["n-0", "n-1"]) == [None, 0]
    assert client.result("n-0", timeout=1) is None and client.task_info("n-0").result_size == 4


def test_failures_retry_then_land_in_the_dead_letter_set(client: Client) -> None:
    p = client.protocol
    client.submit("pids.tasks:fail", task_id="poison", max_attempts=2)
    register(p, "a")
    (task,) = p.claim("a", ["poison"], lease_ms=5000)
    assert p.fail("a", task, "boom 1", retryable=True, backoff_ms=0, busy_seconds=0.0) == "scheduled"
    assert client.task_info("poison").state is TaskState.SCHEDULED and p.snapshot(10).task_ids == []
    assert reaper.queue_due_retries(p) == 1  # backoff over: queued again, and says so
    assert client.task_info("poison").state is TaskState.PENDING and p.snapshot(10).task_ids == ["poison"]
    assert client.cluster_stats().scheduled == 0 and client.cluster_stats().backlog == 1
    (task,) = p.claim("a", ["poison"], lease_ms=5000)
    assert p.fail("a", task, "boom 2", retryable=True, backoff_ms=0, busy_seconds=0.0) == "failed"
    dead = client.dead_letters()
    assert [(d.id, d.state, d.attempt, d.error) for d in dead] == [("poison", TaskState.FAILED, 2, "boom 2")]


def test_non_retryable_failure_is_dead_lettered_at_once(client: Client) -> None:
    p = client.protocol
    client.submit("pids.tasks:echo", task_id="t", max_attempts=5)
    register(p, "a")
    (task,) = p.claim("a", ["t"], lease_ms=5000)
    assert p.fail("a", task, "TaskFunctionError: nope", retryable=False, backoff_ms=0, busy_seconds=0) == "failed"
    assert client.task_info("t").attempt == 1


def test_expired_leases_go_back_to_pending_and_live_ones_stay(client: Client) -> None:
    p = client.protocol
    client.submit("pids.tasks:echo", task_id="short")
    client.submit("pids.tasks:echo", task_id="long")
    register(p, "a")
    p.claim("a", ["short"], lease_ms=50)
    p.claim("a", ["long"], lease_ms=60_000)
    time.sleep(0.1)
    assert reaper.release_expired_leases(p) == (1, 0)
    assert client.task_info("short").state is TaskState.PENDING
    assert client.task_info("long").state is TaskState.RUNNING
    assert p.snapshot(10).loads["a:n"] == 1


def test_release_dead_workers_requeues_their_tasks(client: Client) -> None:
    p = client.protocol
    client.submit_batch("b", "pids.tasks:echo", [[i] for i in range(3)])
    register(p, "gone", ttl_ms=50)
    p.claim("gone", ["b-0", "b-1"], lease_ms=60_000)
    time.sleep(0.1)
    assert reaper.release_dead_workers(p, "alive") == ["gone"]
    assert client.batch_status("b").counts == {"pending": 3}
    assert "gone" not in p.snapshot(10).workers


def test_a_reaper_never_releases_its_own_tasks_even_past_its_deadline(client: Client) -> None:
    p = client.protocol
    client.submit_batch("b", "pids.tasks:echo", [[i] for i in range(2)])
    register(p, "me", ttl_ms=50)
    p.claim("me", ["b-0"], lease_ms=60_000)
    time.sleep(0.1)  # its heartbeat lapsed (a call stuck while Redis was away): it still runs b-0
    assert reaper.release_dead_workers(p, "me") == []
    assert client.batch_status("b").counts == {"running": 1, "pending": 1}


def test_cancel_removes_pending_and_marks_running(client: Client) -> None:
    p = client.protocol
    client.submit("pids.tasks:echo", task_id="p")
    client.submit("pids.tasks:echo", task_id="r")
    register(p, "a")
    (task,) = p.claim("a", ["r"], lease_ms=5000)
    assert client.cancel("p") and client.cancel("r")
    assert client.task_info("p").state is TaskState.CANCELLED
    assert p.complete("a", [done(task, "1")]) == accepted("r")
    assert client.task_info("r").state is TaskState.CANCELLED
    assert client.cluster_stats().backlog == 0


def test_a_task_cancelled_while_running_counts_as_cancelled_when_its_completion_arrives(client: Client) -> None:
    p = client.protocol
    client.submit("pids.tasks:echo", task_id="r")
    register(p, "a")
    (task,) = p.claim("a", ["r"], lease_ms=5000)
    assert client.cancel("r")
    assert p.complete("a", [done(task, "1")]) == accepted("r")
    stats = client.cluster_stats()
    assert (stats.succeeded, stats.cancelled) == (0, 1)


def test_a_late_completion_of_a_task_cancelled_without_one_is_stale_not_already_done(client: Client) -> None:
    """Cancelled while it ran, then released: its holder's completion is refused; "already" is
    only for a resend of a completion that was recorded."""
    p = client.protocol
    client.submit("pids.tasks:echo", task_id="r")
    register(p, "a")
    (task,) = p.claim("a", ["r"], lease_ms=5000)
    assert client.cancel("r")
    p.release_worker("a", reason="test: a lost")
    assert client.task_info("r").state is TaskState.CANCELLED
    assert p.complete("a", [done(task, "1")]) == stale("r")
    assert client.results(["r"]) == [None]


def test_heartbeat_renews_only_tasks_the_worker_knows_it_holds(client: Client) -> None:
    """A claim whose reply was lost (connection dropped) must not be kept alive forever."""
    p = client.protocol
    client.submit("pids.tasks:echo", task_id="known")
    client.submit("pids.tasks:echo", task_id="orphan")
    register(p, "a")
    p.claim("a", ["known", "orphan"], lease_ms=100)
    assert p.heartbeat("a", {"slots": 4}, 5000, 60_000, ["known"]).renewed == 1
    time.sleep(0.15)
    assert reaper.release_expired_leases(p) == (1, 0)
    assert client.task_info("orphan").state is TaskState.PENDING
    assert client.task_info("known").state is TaskState.RUNNING


def test_cycle_after_script_cache_loss_claims_each_task_once(client: Client) -> None:
    """After SCRIPT FLUSH (as after a Redis restart) a pipelined cycle must not re-run the
    calls that did execute: a re-run claim would orphan the task it already won."""
    p = client.protocol
    client.submit_batch("b", "pids.tasks:echo", [[i] for i in range(3)])
    register(p, "a")
    (first,) = cycle(p, "a", [], ["b-0"]).won
    client.redis.script_flush()
    completed, won, snapshot = cycle(p, "a", [done(first, "0")], ["b-1"])
    assert completed == accepted("b-0")
    assert [t.id for t in won] == ["b-1"]
    assert snapshot.task_ids == ["b-2"]
    assert client.task_info("b-1").attempt == 1  # claimed once
    assert client.redis.smembers(client.keys.claims("a")) == {"b-1"}


def test_a_cycle_nets_the_load_changes_of_its_completions_and_claims(client: Client) -> None:
    """complete + claim in one cycle apply the worker's load once: the snapshot read in that
    same cycle, and the table, show exactly what the worker holds after it."""
    p = client.protocol
    client.submit("pids.tasks:noop", task_id="heavy", weight=3.0)
    client.submit("pids.tasks:noop", task_id="light", weight=0.5)
    client.submit("pids.tasks:noop", task_id="other", weight=1.0)
    register(p, "a")  # 4 slots
    heavy, other = cycle(p, "a", [], ["heavy", "other"], read_snapshot=False).won

    def held(snapshot_loads: dict[str, float]) -> tuple[float, float, float]:
        return snapshot_loads["a"], snapshot_loads["a:n"], client.redis.zscore(client.keys.free_slots, "a")

    # one out (3.0), one in (0.5): the count and free slots stay, the weight drops by 2.5
    completed, won, snapshot = cycle(p, "a", [done(heavy)], ["light"])
    assert completed == accepted("heavy") and [t.id for t in won] == ["light"]
    (light,) = won
    assert held(snapshot.loads) == (1.5, 2, 2)
    # same weight out and in: nothing to change, and no command sent to change it
    client.submit("pids.tasks:noop", task_id="again", weight=0.5)
    client.redis.config_resetstat()
    _, won, snapshot = cycle(p, "a", [done(light)], ["again"])
    assert [t.id for t in won] == ["again"] and held(snapshot.loads) == (1.5, 2, 2)
    (again,) = won
    commands = client.redis.info("commandstats")
    assert "cmdstat_zincrby" not in commands and "cmdstat_scard" not in commands
    assert "cmdstat_hincrbyfloat" not in commands  # neither its load nor its totals (sent every few cycles)
    assert commands["cmdstat_time"]["calls"] == 1  # complete, claim and snapshot read one clock
    # everything out, the candidate already taken: the worker holds nothing, exactly
    completed, won, snapshot = cycle(p, "a", [done(again), done(other)], ["heavy"])
    assert completed == accepted("again", "other") and won == []
    assert held(snapshot.loads) == (0.0, 0, 4)
    stats = client.cluster_stats()
    assert (stats.enqueued, stats.succeeded, stats.running) == (4, 4, 0)


def test_a_worker_adds_its_totals_when_it_sends_them_not_with_each_completion(client: Client) -> None:
    """A completion leaves the worker's totals alone: the worker sums what was accepted and sends
    the sum every few cycles, with or without completions in the same call."""
    p = client.protocol
    client.submit_batch("t", "pids.tasks:noop", [[]] * 3, weight=2.0)
    register(p, "a")
    won = p.claim("a", ["t-0", "t-1", "t-2"], lease_ms=60_000)

    def totals() -> tuple[int, float, float]:
        (worker,) = [w for w in client.cluster_stats().workers if w.id == "a"]
        return worker.tasks_done, worker.work_done, worker.busy_seconds

    assert p.complete("a", [done(t, busy=0.25) for t in won[:2]]) == accepted("t-0", "t-1")
    assert totals() == (0, 0.0, 0.0)
    sent = WorkerTotals().plus([done(t, busy=0.25) for t in won[:2]])
    assert sent == WorkerTotals(2, 4.0, 0.5)
    completed, _, _ = cycle(p, "a", [done(won[2], busy=0.25)], [], totals=sent)
    assert completed == accepted("t-2") and totals() == (2, 4.0, 0.5)
    assert p.complete("a", [], WorkerTotals(1, 2.0, 0.25)) == accepted()
    assert totals() == (3, 6.0, 0.75)
    assert client.cluster_stats().succeeded == 3


def test_a_cycle_leaves_the_idle_set_only_if_its_worker_may_be_in_it(client: Client) -> None:
    """A worker is put in the idle set by a snapshot that finds no pending task; its next claim
    takes it out. A worker whose last snapshot found work is not in the set: its claims skip it."""
    p = client.protocol
    register(p, "a")
    assert p.snapshot(8, me="a").task_ids == []
    assert client.redis.zscore(client.keys.idle, "a") is not None
    client.submit_batch("c", "pids.tasks:noop", [[]] * 3)  # wakes "a", and takes it out of the set
    assert client.redis.zscore(client.keys.idle, "a") is None
    client.redis.zadd(client.keys.idle, {"a": 1})  # as if "a" had found the queue empty again since
    cycle(p, "a", [], ["c-0"], read_snapshot=False, maybe_idle=False)
    assert client.redis.zscore(client.keys.idle, "a") is not None
    cycle(p, "a", [], ["c-1"], read_snapshot=False, maybe_idle=True)
    assert client.redis.zscore(client.keys.idle, "a") is None
    assert client.cluster_stats().running == 2


def test_a_large_batch_is_claimed_and_completed_whole(client: Client) -> None:
    """The shared sets are written once per call, in slices: a thousand claims in one call and
    more completions than one call takes (the client splits them) leave no task behind."""
    p = client.protocol
    client.submit_batch("big", "pids.tasks:noop", [[]] * 1200)
    register(p, "a")
    ids = [f"big-{i}" for i in range(1200)]
    with pytest.raises(ValueError, match="at most 1000 candidates"):
        p.claim("a", ids, lease_ms=60_000)
    won = p.claim("a", ids[:1000], lease_ms=60_000) + p.claim("a", ids[1000:], lease_ms=60_000)
    assert [t.id for t in won] == ids
    assert client.redis.zcard(client.keys.running) == 1200 and client.redis.scard(client.keys.claims("a")) == 1200
    assert p.complete("a", [done(t) for t in won]) == CompletionReply(ids, [], [])
    stats = client.cluster_stats()
    assert (stats.backlog, stats.running, stats.succeeded) == (0, 0, 1200)
    assert client.redis.scard(client.keys.claims("a")) == 0 and client.redis.hlen(client.keys.pending_meta) == 0
    assert p.snapshot(10, me="a").loads == {"a": 0.0, "a:n": 0.0}


def test_snapshot_sees_only_the_workers_with_most_free_slots_plus_the_caller(client: Client) -> None:
    """The claim view stays the same size however many workers there are."""
    p = client.protocol
    for i in range(40):
        p.heartbeat(f"w{i:02d}", {"slots": 1 + i % 4}, 5000, 5000)
    view = p.snapshot(8, view=5, me="w00").workers
    assert len(view) == 6 and "w00" in view
    assert all(info["slots"] == 4 for w, info in view.items() if w != "w00")
    assert "w39" in view
    client.submit("pids.tasks:echo", task_id="t")
    p.claim("w39", ["t"], lease_ms=5000)  # w39 had 4 free slots, now 3: another 4-slot worker takes its place
    after = p.snapshot(8, view=5).workers
    assert "w39" not in after and len(after) == 5 and all(info["slots"] == 4 for info in after.values())


def test_a_snapshot_reads_the_same_with_or_without_decoded_replies(client: Client, redis_server: EmbeddedRedis) -> None:
    """PIDS connects with decode_responses (hiredis decodes in C); a Protocol on a client that
    returns bytes sees the same snapshot."""
    p = client.protocol
    register(p, "w1")
    client.submit_batch("b", "pids.tasks:echo", [[i] for i in range(5)])
    raw = Protocol(redis.Redis.from_url(redis_server.url), p.keys)
    decoded, from_bytes = p.snapshot(8, me="w1"), raw.snapshot(8, me="w1")
    assert from_bytes.task_ids == decoded.task_ids and len(decoded.task_ids) == 5
    assert from_bytes.task_meta == decoded.task_meta and all(isinstance(m, str) for m in from_bytes.task_meta)
    assert from_bytes.workers == decoded.workers and from_bytes.loads == decoded.loads


def test_a_packed_window_reads_the_same_as_an_unpacked_one_even_with_separators_inside(client: Client) -> None:
    """The window comes back packed (ids joined by tabs, metas by newlines); ids and metas written
    around the client that hold those separators, or a queued id without metadata, make it read
    again unpacked: no task is misread as another, in a snapshot or in a cycle."""
    p = client.protocol
    register(p, "w1")
    client.submit_batch("b", "pids.tasks:echo", [[i] for i in range(3)])
    packed, unpacked = p.snapshot(8, me="w1"), p.snapshot(8, me="w1", packed=False)
    assert packed.task_ids == unpacked.task_ids == ["b-0", "b-1", "b-2"]
    assert packed.task_meta == unpacked.task_meta and all(packed.task_meta)
    k = client.keys
    client.redis.zadd(k.pending, {"tab\tid": 0, "newline": 0, "no-meta": 0})
    client.redis.hset(k.pending_meta, mapping={"tab\tid": "0\t1\t0\t\t1\t0", "newline": "0\t1\t0\tz\nn\t2\t0"})
    odd = p.snapshot(8, me="w1")
    assert odd.task_ids[:3] == ["newline", "no-meta", "tab\tid"] and odd.task_ids[3:] == packed.task_ids
    assert odd.task_meta[:3] == ["0\t1\t0\tz\nn\t2\t0", None, "0\t1\t0\t\t1\t0"]
    in_cycle = cycle(p, "w1", [], []).snapshot
    assert in_cycle is not None and (in_cycle.task_ids, in_cycle.task_meta) == (odd.task_ids, odd.task_meta)
    client.redis.zrem(k.pending, "tab\tid", "newline")
    only_missing = cycle(p, "w1", [], [])
    assert only_missing.snapshot is not None
    assert only_missing.snapshot.task_ids == ["no-meta", *packed.task_ids]
    assert only_missing.snapshot.task_meta == [None, *packed.task_meta]


def test_dead_workers_are_found_without_scanning_the_worker_table(client: Client) -> None:
    p = client.protocol
    p.heartbeat("alive", {"slots": 1}, 60_000, 5000)
    p.heartbeat("gone", {"slots": 1}, 10, 5000)
    time.sleep(0.05)
    assert reaper.release_dead_workers(p, "alive") == ["gone"]
    assert client.redis.zrange(client.keys.deadlines, 0, -1) == ["alive"]
    assert client.redis.zrange(client.keys.free_slots, 0, -1) == ["alive"]


def test_queue_is_fifo_within_a_batch_and_priority_comes_first(client: Client) -> None:
    client.submit_batch("b", "pids.tasks:echo", [[i] for i in range(12)])
    client.submit("pids.tasks:echo", task_id="urgent", priority=5)
    ids = client.protocol.snapshot(20).task_ids
    assert ids == ["urgent"] + [f"b-{i}" for i in range(12)]  # not b-0, b-1, b-10, b-11, b-2 ...


def test_the_window_holds_the_heaviest_tasks_heavier_than_the_default_then_the_queue_front(client: Client) -> None:
    """Only tasks heavier than the default weight 1 are indexed by weight: a window of K holds up
    to H of the heaviest of them, the rest from the front of the queue (without heavier tasks, K
    from the front). A claim and a release keep the index to the pending heavy tasks."""
    p = client.protocol
    for i, weight in enumerate([1, 0.5, 1, 1, 1, 1, 3, 1, 2, 0.25]):
        client.submit("pids.tasks:noop", task_id=f"t{i}", weight=weight)
    assert sorted(p.redis.zrange(p.keys.pending_by_weight, 0, -1)) == ["t6", "t8"]
    assert p.snapshot(4, heaviest=1).task_ids == ["t0", "t1", "t2", "t6"]
    assert p.snapshot(4, heaviest=3).task_ids == ["t0", "t1", "t6", "t8"]  # 2 heavier ones: 2 from the front
    register(p, "a")
    p.claim("a", ["t6"], lease_ms=5000)
    assert p.redis.zrange(p.keys.pending_by_weight, 0, -1) == ["t8"]
    p.release_worker("a", reason="test")
    assert sorted(p.redis.zrange(p.keys.pending_by_weight, 0, -1)) == ["t6", "t8"]
    for task_id in ("t6", "t8"):
        p.cancel(task_id)
    assert p.redis.zcard(p.keys.pending_by_weight) == 0
    assert p.snapshot(4, heaviest=3).task_ids == ["t0", "t1", "t2", "t3"]


def test_one_worker_at_a_time_takes_the_reaper_turn(client: Client) -> None:
    p = client.protocol
    assert reaper.take_turn(p, "a", 100) and not reaper.take_turn(p, "b", 100)
    time.sleep(0.15)
    assert reaper.take_turn(p, "b", 100)


def test_enqueue_wakes_one_idle_worker_per_task_on_its_own_channel(client: Client) -> None:
    p = client.protocol
    for w in ("a", "b", "c"):
        register(p, w)
        assert p.snapshot(8, me=w).task_ids == []  # found the queue empty: idle
    pubsub = client.redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(*(client.keys.wake_channel(w) for w in ("a", "b", "c")))
    pubsub.get_message(timeout=0.1)
    client.submit_batch("b", "pids.tasks:echo", [[1], [2]])
    woken = set()
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.2)
        if message:
            woken.add(message["channel"].rsplit(":", 1)[1])
    pubsub.close()
    assert len(woken) == 2  # two tasks: two of the three idle workers, not all of them
    assert client.redis.zcard(client.keys.idle) == 1


def test_a_cycle_against_a_redis_that_stops_answering_fails_after_the_timeout_then_recovers() -> None:
    """The claim loop's connection blocks in the kernel with a timeout (no poll per call): a
    frozen Redis fails the cycle after socket_timeout instead of hanging it, and the next
    cycle, on a new connection, works once Redis answers again."""
    with EmbeddedRedis() as server:
        client = Client.from_redis(connect(server.url, socket_timeout=0.5), cluster="frozen")
        p = client.protocol
        client.submit_batch("f", "pids.tasks:noop", [[]] * 3)
        register(p, "a")
        (first,) = cycle(p, "a", [], ["f-0"]).won
        assert first.id == "f-0"
        os.kill(server.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises((redis.ConnectionError, redis.TimeoutError)):
                cycle(p, "a", [done(first)], ["f-1"])
            assert 0.4 < time.monotonic() - started < 5
        finally:
            os.kill(server.pid, signal.SIGCONT)
        # the failed call may still have run when Redis resumed (a timeout cannot tell): fenced,
        # the completion is recorded once either way
        completed, won, _ = cycle(p, "a", [done(first)], ["f-2"])
        assert completed in (accepted("f-0"), CompletionReply([], [], ["f-0"])) and [t.id for t in won] == ["f-2"]
        assert client.cluster_stats().succeeded == 1
        # redis-py reconnects a dropped connection by itself on its next command: the timeout
        # is set again on the new socket
        p.held.reset()
        os.kill(server.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises((redis.ConnectionError, redis.TimeoutError)):
                cycle(p, "a", [], [])
            assert 0.4 < time.monotonic() - started < 5
        finally:
            os.kill(server.pid, signal.SIGCONT)


def test_a_final_task_its_result_and_its_batch_expire_after_its_retention(client: Client) -> None:
    """Retention keeps Redis memory flat under an endless stream: once final (succeeded, failed
    for good, cancelled) a task's record, result and batch list expire; a pending or running
    one never does, and retention=None keeps a task until it is deleted."""
    p = client.protocol
    short = Client.from_redis(client.redis, client.keys.cluster, retention=0.3)
    batch = short.submit_batch("r", "pids.tasks:echo", [[1], [2], [3]])
    kept = short.submit("pids.tasks:echo", 4, retention=None)
    register(p, "a")
    first, second = p.claim("a", ["r-0", "r-1"], lease_ms=60_000)
    assert p.complete("a", [done(first, "1")]) == accepted("r-0")
    assert p.fail("a", second, "no", retryable=False, backoff_ms=0, busy_seconds=0.0) == "failed"
    assert client.redis.pttl(client.keys.task("r-2")) == -1  # pending: kept
    assert short.cancel("r-2")
    (last,) = p.claim("a", [kept.id], lease_ms=60_000)
    p.complete("a", [done(last, "4")])
    for key in (client.keys.task("r-0"), client.keys.result("r-0"), client.keys.task("r-1"), client.keys.batch("r")):
        assert 0 < client.redis.pttl(key) <= 300
    assert client.redis.pttl(client.keys.task(kept.id)) == -1 and client.redis.pttl(client.keys.result(kept.id)) == -1
    time.sleep(0.4)
    assert not client.redis.exists(
        *(client.keys.task(h.id) for h in batch), client.keys.batch("r"), client.keys.result("r-0")
    )
    assert kept.result(timeout=1) == 4
    assert reaper.trim_dead_letters(p, 1) == 1 and client.redis.zcard(client.keys.dead) == 0
    assert client.dead_letters() == []


def test_the_totals_of_workers_long_gone_are_folded_into_one_entry_and_the_sums_stay(client: Client) -> None:
    """Pods come and go: worker_totals keeps its own totals for the DEPARTED_KEPT workers that
    left last and adds older ones to one entry, unless that worker id is back in the table."""
    p = client.protocol
    workers = [f"w{i:04d}" for i in range(DEPARTED_KEPT + 2)]
    for w in workers[:-1]:
        register(p, w)
        p.complete(w, [], WorkerTotals(1, 2.0, 0.5))
        assert p.forget_worker(w)
    register(p, workers[1])  # back before it is folded: keeps its own totals
    register(p, workers[-1])
    p.complete(workers[-1], [], WorkerTotals(1, 2.0, 0.5))
    assert p.forget_worker(workers[-1])
    stats = {w.id: w for w in client.cluster_stats().workers}
    assert workers[0] not in stats and stats[workers[1]].tasks_done == 1
    folded = stats[DEPARTED_WORKERS]
    assert (folded.tasks_done, folded.work_done, folded.busy_seconds) == (1, 2.0, 0.5)
    assert sum(w.tasks_done for w in stats.values()) == len(workers)
    assert client.redis.zcard(client.keys.departed) == DEPARTED_KEPT


def test_tasks_of_one_batch_completed_together_expire_its_list_once(client: Client) -> None:
    p = client.protocol
    short = Client.from_redis(client.redis, client.keys.cluster, retention=30)
    short.submit_batch("b", "pids.tasks:echo", [[i] for i in range(5)])
    register(p, "a")
    won = p.claim("a", [f"b-{i}" for i in range(5)], lease_ms=60_000)
    client.redis.config_resetstat()
    assert p.complete("a", [done(task, str(i)) for i, task in enumerate(won)]) == accepted(*(t.id for t in won))
    assert client.redis.info("commandstats")["cmdstat_pexpire"]["calls"] == 5 + 1  # records, list
    assert 29_000 < client.redis.pttl(client.keys.batch("b")) <= 30_000
    assert all(29_000 < client.redis.pttl(client.keys.result(t.id)) <= 30_000 for t in won)  # set with SET PX


def test_retain_changes_the_retention_of_final_tasks_now_and_of_the_others_when_they_end(client: Client) -> None:
    p = client.protocol
    kept = Client.from_redis(client.redis, client.keys.cluster, retention=None)
    finished, running, pending = (kept.submit("pids.tasks:echo", i, task_id=f"k{i}") for i in range(3))
    register(p, "a")
    (first,) = p.claim("a", [finished.id], lease_ms=60_000)
    p.complete("a", [done(first, "0")])
    (second,) = p.claim("a", [running.id], lease_ms=60_000)
    assert kept.retain([finished.id, running.id, pending.id, "never-submitted"], 30) == 3
    ttl = client.redis.pttl
    assert 29_000 < ttl(client.keys.task(finished.id)) <= 30_000 and ttl(client.keys.result(finished.id)) > 0
    assert ttl(client.keys.task(running.id)) == ttl(client.keys.task(pending.id)) == -1  # not final yet
    p.complete("a", [done(second, "1")])
    assert 29_000 < ttl(client.keys.task(running.id)) <= 30_000  # its new retention, at the end
    assert kept.retain([finished.id], None) == 1  # and back to: until deleted
    assert ttl(client.keys.task(finished.id)) == ttl(client.keys.result(finished.id)) == -1
    with pytest.raises(TaskArgumentsError):
        kept.retain([finished.id], -1)


def test_the_error_of_a_released_attempt_is_cleared_when_a_later_attempt_succeeds(client: Client) -> None:
    p = client.protocol
    client.submit("pids.tasks:echo", 1, task_id="t")
    register(p, "a")
    p.claim("a", ["t"], lease_ms=5000)
    p.release_worker("a", reason="worker a was lost")
    assert client.task_info("t").error == "worker a was lost"
    (task,) = p.claim("a", ["t"], lease_ms=5000)
    p.complete("a", [done(task, "1")])
    assert client.task_info("t").error == "" and client.task_info("t").state is TaskState.SUCCEEDED


def test_enqueue_waits_for_replicas_when_asked_and_says_when_they_do_not_answer(client: Client) -> None:
    """ack_replicas: an enqueue returns once that many replicas have it; a Redis without
    replicas cannot confirm it, and the client says so (the tasks are enqueued on the primary)."""
    acked = Client.from_redis(client.redis, client.keys.cluster, ack_replicas=1)
    with pytest.raises(EnqueueNotAcknowledged, match="0 of 1 replica"):
        acked.submit("pids.tasks:echo", 1, task_id="w")
    assert client.task_info("w").state is TaskState.PENDING
    assert Client.from_redis(client.redis, client.keys.cluster, ack_replicas=0).submit("pids.tasks:echo", 2).id
