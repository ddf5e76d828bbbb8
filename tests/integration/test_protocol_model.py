"""A model-based test of the data-plane protocol against a real redis-server (Hypothesis stateful
testing): random interleavings of enqueue, claim, complete, fail, release, lease expiry, worker
death, cancel, snapshots, client waits and Redis restarts (from its AOF, from an older copy of it,
or empty), each reply and, after every step, the whole of the cluster's Redis state checked
against the plain-Python model in protocol_model.py. `PIDS_MODEL_PROFILE=pids-model-long pytest --timeout 0 -s` runs about 50
times as many steps; -s shows the tally of what a run tried."""

from __future__ import annotations

import concurrent.futures
import copy
import json
import os
import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from pids import reaper
from pids.client import KEEP, Client, TaskHandle
from pids.connection import connect
from pids.embedded import EmbeddedRedis
from pids.errors import PidsError, TaskFailed, TaskLost, TaskNotFound, TaskTimeout
from pids.task import TaskState
from pids.wire import ClaimedTask, Completion, CycleReply, CycleRequest, parse_claim

pytest.register_assert_rewrite("model_redis", "protocol_model")  # their asserts show both sides too
from model_redis import RestartingRedis, check_redis_state  # noqa: E402
from protocol_model import FINAL, Model  # noqa: E402

WORKERS = ("w0", "w1", "w|2")  # the token keeps the worker id last, so any character works
SINGLE_IDS = tuple(f"t{i}" for i in range(6))
BATCHES = ("b0", "b1")
BATCH_SIZE = 4
ALL_IDS = SINGLE_IDS + tuple(f"{b}-{i}" for b in BATCHES for i in range(BATCH_SIZE))
WEIGHTS = (1.0, 0.5, 2.5)  # exact in binary: loads add up without rounding
RESULTS = ("null", "1", '"done"')
LONG_MS = 600_000  # outlives any example
SHORT_MS = 1  # has run out at the next reaper turn, which first sleeps PAST_SHORT
PAST_SHORT = 0.003
SLOTS = 4
MAX_RESTARTS = 2  # per example (each restart costs a server start)
WAIT_SECONDS = 0.02  # a client wait's timeout for unfinished work
HANG_SECONDS = 10.0  # a wait still running by then hangs
BARRIER = "~barrier~"  # published on the done channel: every event before it has arrived

settings.register_profile(
    "pids-model", max_examples=80, stateful_step_count=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "pids-model-long", settings.get_profile("pids-model"), max_examples=2000, stateful_step_count=100
)
PROFILE = os.environ.get("PIDS_MODEL_PROFILE", "pids-model")
STEPS: Counter[str] = Counter()
SEEN: Counter[str] = Counter()  # what the run tried, by kind


class ProtocolMachine(RuleBasedStateMachine):
    """One example: a fresh cluster name on the module's redis-server, and its model."""

    redis: ClassVar[RestartingRedis]  # set by the test

    def __init__(self) -> None:
        super().__init__()
        self.client = Client.from_redis(
            connect(self.redis.server.url), f"m{uuid.uuid4().hex[:10]}", retention=KEEP, reconnect_seconds=5.0
        )
        self.protocol = self.client.protocol
        self.keys = self.client.keys
        self.model = Model()
        self.issued: dict[str, list[ClaimedTask]] = {w: [] for w in WORKERS}  # every claim won, in every epoch
        self.submitted: dict[str, str] = {}  # task id -> the epoch it was last submitted in
        self.done_ids: set[str] = set()  # tasks with a done event in this data set
        self.restarts = 0
        self.held_connection_stale = False  # Redis restarted since the last cycle
        self.waits = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        self.aof_copies = Path(tempfile.mkdtemp(prefix="pids-model-aof-"))
        self.older: tuple[Model, set[str]] | None = None  # the model when the AOF was copied
        self.events = self._subscribe()
        STEPS["examples"] += 1

    def teardown(self) -> None:
        shutil.rmtree(self.aof_copies)
        self.waits.shutdown()
        self.events.close()
        self.protocol.held.reset()
        self.client.redis.close()

    # -- submitting ---------------------------------------------------------------------------------
    @rule(
        task_id=st.sampled_from(SINGLE_IDS),
        weight=st.sampled_from(WEIGHTS),
        priority=st.sampled_from((0, 0, 1)),
        max_attempts=st.sampled_from((3, 1, 2)),
    )
    def enqueue_one(self, task_id: str, weight: float, priority: int, max_attempts: int) -> None:
        """Also a batch's task id submitted on its own (then in no batch), as the operator does after a loss."""
        handle = self.client.submit(
            "pids.tasks:echo", task_id, task_id=task_id, weight=weight, priority=priority, max_attempts=max_attempts
        )
        self.model.enqueue([(task_id, weight, priority, max_attempts)])
        self._submitted([handle])

    @initialize(
        weights=st.lists(st.sampled_from(WEIGHTS), min_size=1, max_size=BATCH_SIZE),
        max_attempts=st.sampled_from((3, 1, 2)),
    )
    def some_work_first(self, weights: list[float], max_attempts: int) -> None:
        """Every example starts with a batch (its rules may leave out enqueueing)."""
        self.enqueue_batch(BATCHES[0], weights, max_attempts)

    @rule(
        batch=st.sampled_from(BATCHES),
        weights=st.lists(st.sampled_from(WEIGHTS), min_size=1, max_size=BATCH_SIZE),
        max_attempts=st.sampled_from((3, 1, 2)),
    )
    def enqueue_batch(self, batch: str, weights: list[float], max_attempts: int) -> None:
        items = [{"args": [i], "weight": w} for i, w in enumerate(weights)]
        handles = self.client.submit_batch(batch, "pids.tasks:echo", items, max_attempts=max_attempts)
        self.model.enqueue([(f"{batch}-{i}", w, 0, max_attempts) for i, w in enumerate(weights)], batch)
        self._submitted(handles)

    def _submitted(self, handles: list[TaskHandle]) -> None:
        for handle in handles:
            self.model.learn_epoch(handle.epoch)
            self.submitted[handle.id] = handle.epoch

    # -- claiming -----------------------------------------------------------------------------------
    def _ids(self, data: st.DataObject, label: str, index: str, min_size: int = 0, max_size: int = 4) -> list[str]:
        """Task ids: two in three of the tasks in `index` ("" for any task in the data set), the rest of any."""
        likely = st.sampled_from(sorted(t.id for t in self.model.tasks.values() if index in ("", t.index)) or ALL_IDS)
        some = st.one_of(likely, likely, st.sampled_from(ALL_IDS))
        return data.draw(st.lists(some, min_size=min_size, max_size=max_size), label=label)

    @rule(worker=st.sampled_from(WORKERS), lease_short=st.booleans(), data=st.data())
    def claim(self, worker: str, lease_short: bool, data: st.DataObject) -> None:
        candidates = self._ids(data, "candidates", "pending", 1, 6)
        wanted = data.draw(st.integers(1, len(candidates)), label="wanted")
        won = self.protocol.claim(worker, candidates, SHORT_MS if lease_short else LONG_MS, wanted)
        self._won(worker, won, self.model.claim(worker, candidates, wanted), lease_short)

    def _won(self, worker: str, won: list[ClaimedTask], expected: list[tuple[str, int]], lease_short: bool) -> None:
        assert [(t.id, t.attempt) for t in won] == expected
        SEEN["claims won"] += len(won)
        SEEN["claims won again (attempt > 1)"] += sum(t.attempt > 1 for t in won)
        for task in won:
            token = parse_claim(task.token)
            assert token.worker == worker
            self.model.learn_epoch(token.epoch)
            self.model.claimed(task.id, task.token, lease_short)
            self.issued[worker].append(task)

    # -- finishing ----------------------------------------------------------------------------------
    def _current(self, worker: str) -> list[ClaimedTask]:
        """The claims the worker holds now (its tokens that still win)."""
        tasks = self.model.tasks
        return [
            c
            for c in self.issued[worker]
            if c.id in tasks and tasks[c.id].state == "running" and tasks[c.id].token == c.token
        ]

    def _holders(self) -> list[str]:
        return [w for w in WORKERS if self._current(w)]

    def _overtaken(self) -> list[ClaimedTask]:
        """Claims of tasks that run again under a newer token (another attempt, or another epoch)."""
        tasks = self.model.tasks
        return [
            c
            for w in WORKERS
            for c in self.issued[w]
            if c.id in tasks and tasks[c.id].state == "running" and tasks[c.id].token != c.token
        ]

    @precondition(lambda self: self._holders())
    @rule(fail=st.booleans(), data=st.data())
    def finish_current(self, fail: bool, data: st.DataObject) -> None:
        """A holder completes some of its tasks, or fails one."""
        worker = data.draw(st.sampled_from(self._holders()), label="worker")
        self._finish(
            worker, data.draw(st.lists(st.sampled_from(self._current(worker)), min_size=1, max_size=3)), fail, data
        )

    @precondition(lambda self: any(self.issued.values()))
    @rule(fail=st.booleans(), data=st.data())
    def finish_with_any_token(self, fail: bool, data: st.DataObject) -> None:
        """Stale attempts, claims of an older epoch, resends of accepted completions, current ones."""
        worker = data.draw(st.sampled_from([w for w in WORKERS if self.issued[w]]), label="worker")
        self._finish(
            worker, data.draw(st.lists(st.sampled_from(self.issued[worker]), min_size=1, max_size=3)), fail, data
        )

    @precondition(lambda self: self._overtaken())
    @rule(fail=st.booleans(), data=st.data())
    def overtaken_holder_finishes(self, fail: bool, data: st.DataObject) -> None:
        """A holder that lost its claim (lease, death, an older copy of Redis or an empty one)
        finishes late, while its task runs again: refused, and changes nothing."""
        claimed = data.draw(st.sampled_from(self._overtaken()), label="claim")
        self._finish(parse_claim(claimed.token).worker, [claimed], fail, data)

    @precondition(lambda self: self._holders())
    @rule(fail=st.booleans(), data=st.data())
    def holder_is_overtaken(self, fail: bool, data: st.DataObject) -> None:
        """A holder loses its task (its lease runs out, it dies, it is released, or Redis comes back
        empty and the task is submitted again), another claim takes the task, then the first
        holder finishes late: refused, and changes nothing."""
        worker = data.draw(st.sampled_from(self._holders()), label="worker")
        claimed = data.draw(st.sampled_from(self._current(worker)), label="claim")
        ways = ("lease", "death", "release") + (("empty redis",) if self.restarts < MAX_RESTARTS else ())
        how = data.draw(st.sampled_from(ways), label="how")
        if how == "empty redis":
            self.redis_restarts_empty()
            self.enqueue_one(claimed.id, claimed.weight, 0, 1)
        elif how == "release":
            reason = f"worker {worker} was lost"
            expected = self.model.release(worker, sorted(t.id for t in self.model.running(worker)), False, reason)
            assert self.protocol.release_worker(worker, reason) == expected
        else:  # a lease or a heartbeat TTL that runs out at once, then the reaper's turn
            ttl_short, lease_short = how == "death", how == "lease"
            self.protocol.heartbeat(
                worker,
                {"slots": SLOTS},
                SHORT_MS if ttl_short else LONG_MS,
                SHORT_MS if lease_short else LONG_MS,
                [claimed.id],
            )
            self.model.heartbeat(worker, ttl_short, lease_short, [claimed.id])
            self.workers_stop_heartbeating() if ttl_short else self.leases_run_out()
        taker = data.draw(st.sampled_from(WORKERS), label="taker")
        won = self.protocol.claim(taker, [claimed.id], LONG_MS)
        self._won(taker, won, self.model.claim(taker, [claimed.id], 1), False)
        self._finish(worker, [claimed], fail, data)

    def _finish(self, worker: str, chosen: list[ClaimedTask], fail: bool, data: st.DataObject) -> None:
        if not fail:
            completions = self._completions(chosen, data)
            kinds = [self._kind(c.task_id, c.token) for c in completions]
            assert self.protocol.complete(worker, completions) == self._expected_completions(completions)
            SEEN.update(f"complete: {kind}" for kind in kinds)
            return
        claimed = chosen[0]
        retryable, due = data.draw(st.booleans(), label="retryable"), data.draw(st.booleans(), label="due")
        kind = self._kind(claimed.id, claimed.token)
        error = f"attempt {claimed.attempt} failed"
        outcome = self.protocol.fail(
            worker, claimed, error, retryable=retryable, backoff_ms=0 if due else LONG_MS, busy_seconds=0.0
        )  # due: the next snapshot queues the retry
        assert outcome == self.model.fail(claimed.id, claimed.token, error, retryable, due)
        SEEN[f"fail: {kind} -> {outcome}"] += 1

    def _kind(self, task_id: str, token: str) -> str:
        """Which token a completion or failure sends, for the run's tally of what it tried."""
        task = self.model.tasks.get(task_id)
        if task and task.token == token:
            return "current" if task.state == "running" else "resent" if task.completed_with else "holder lost it"
        older = "older epoch" if parse_claim(token).epoch != self.model.epoch else "older attempt"
        return older + (", the task running again" if task and task.state == "running" else "")

    @staticmethod
    def _completions(chosen: list[ClaimedTask], data: st.DataObject) -> list[Completion]:
        return [
            Completion(c.id, c.token, data.draw(st.sampled_from(RESULTS), label="result"), 0.0, c.weight, c.batch)
            for c in chosen
        ]

    def _expected_completions(self, completions: list[Completion]) -> Any:
        return self.model.complete([(c.task_id, c.token, c.result_json) for c in completions])

    # -- the claim loop's cycle ---------------------------------------------------------------------
    @rule(
        worker=st.sampled_from(WORKERS),
        window=st.integers(0, 4),
        heaviest=st.integers(0, 2),
        lease_short=st.booleans(),
        data=st.data(),
    )
    def cycle(self, worker: str, window: int, heaviest: int, lease_short: bool, data: st.DataObject) -> None:
        claim_ids = self._ids(data, "claim_ids", "pending")
        held = self._current(worker)
        chosen = data.draw(st.lists(st.sampled_from(held), max_size=2), label="completed") if held else []
        completions = self._completions(chosen, data)
        wanted = data.draw(st.integers(1, len(claim_ids)), label="wanted") if claim_ids else 0
        reply = self._cycle(
            CycleRequest(
                worker,
                completions,
                claim_ids=claim_ids,
                wanted=wanted,
                lease_ms=SHORT_MS if lease_short else LONG_MS,
                window=window,
                heaviest=heaviest,
            )
        )
        assert reply.completed == self._expected_completions(completions)
        if claim_ids:
            self._won(worker, reply.won, self.model.claim(worker, claim_ids, wanted), lease_short)
        else:
            assert reply.won == []
        if window:
            assert reply.snapshot is not None and reply.snapshot.task_ids == self.model.snapshot(window, heaviest)
        else:
            assert reply.snapshot is None

    def _cycle(self, request: CycleRequest) -> CycleReply:
        """After a Redis restart the held connection is to the old server (nothing it sends runs):
        the first call fails and the next one connects again, as in the worker."""
        try:
            return self.protocol.cycle(request)
        except redis.ConnectionError:
            if not self.held_connection_stale:
                raise
            self.held_connection_stale = False
            return self.protocol.cycle(request)

    @rule(window=st.integers(0, 6), heaviest=st.integers(0, 2), me=st.sampled_from(("", *WORKERS)))
    def snapshot(self, window: int, heaviest: int, me: str) -> None:
        assert self.protocol.snapshot(window, heaviest, me=me).task_ids == self.model.snapshot(window, heaviest)

    # -- leases, heartbeats, workers that die ---------------------------------------------------------
    @rule(worker=st.sampled_from(WORKERS), ttl_short=st.booleans(), lease_short=st.booleans(), data=st.data())
    def heartbeat(self, worker: str, ttl_short: bool, lease_short: bool, data: st.DataObject) -> None:
        extra = self._ids(data, "extra", "running", max_size=2)
        mine = [t.id for t in self.model.running(worker)]
        held = data.draw(st.lists(st.sampled_from(mine), unique=True), label="held") if mine else []
        held += extra  # ids it does not hold are not renewed
        renewed = sum(1 for i in held if i in self.model.tasks and self.model.tasks[i].holder == worker)
        beat = self.protocol.heartbeat(
            worker, {"slots": SLOTS}, SHORT_MS if ttl_short else LONG_MS, SHORT_MS if lease_short else LONG_MS, held
        )
        assert (beat.renewed, beat.drain_requested) == (renewed, False)
        self.model.heartbeat(worker, ttl_short, lease_short, held)
        self.model.learn_epoch(beat.epoch)

    @rule()
    def retries_come_due(self) -> None:
        assert reaper.queue_due_retries(self.protocol) == self.model.queue_due_retries()

    @rule()
    def leases_run_out(self) -> None:
        time.sleep(PAST_SHORT)
        released = self.model.expire_leases()
        assert reaper.release_expired_leases(self.protocol) == released
        SEEN["leases ran out"] += sum(released) > 0

    @rule()
    def workers_stop_heartbeating(self) -> None:
        time.sleep(PAST_SHORT)
        dead = self.model.dead_workers()
        assert sorted(reaper.release_dead_workers(self.protocol, "reaper")) == dead
        SEEN["workers died"] += bool(dead)

    @rule(worker=st.sampled_from(WORKERS), data=st.data())
    def release_worker(self, worker: str, data: st.DataObject) -> None:
        """The operator gives back what a lost pod held (a draining worker keeps some)."""
        held = sorted(t.id for t in self.model.running(worker))
        keep = data.draw(st.lists(st.sampled_from(held), unique=True), label="keep") if held else []
        reason = f"worker {worker} was lost"
        expected = self.model.release(worker, [i for i in held if i not in keep], False, reason)
        assert self.protocol.release_worker(worker, reason, keep) == expected

    @rule(worker=st.sampled_from(WORKERS), only_expired=st.booleans(), data=st.data())
    def release(self, worker: str, only_expired: bool, data: st.DataObject) -> None:
        task_ids = self._ids(data, "task_ids", "running", 1)
        if only_expired:
            time.sleep(PAST_SHORT)
        expected = self.model.release(worker, task_ids, only_expired, "given back")
        assert self.protocol.release(worker, task_ids, only_expired=only_expired, reason="given back") == expected

    @rule(through_client=st.booleans(), data=st.data())
    def cancel(self, through_client: bool, data: st.DataObject) -> None:
        (task_id,) = self._ids(data, "task_id", "", 1, 1)
        expected = self.model.cancel(task_id)
        if not through_client:
            assert self.protocol.cancel(task_id) == expected
        elif expected == "missing":
            with pytest.raises(TaskNotFound):
                self.client.cancel(task_id)
        else:
            assert self.client.cancel(task_id) is (expected in ("cancelled", "cancelling"))

    # -- clients waiting ----------------------------------------------------------------------------
    @rule(fetch_result=st.booleans(), data=st.data())
    def client_waits(self, fetch_result: bool, data: st.DataObject) -> None:
        """Every wait ends: with the final state (or result), TaskTimeout for unfinished work,
        TaskLost for a task of a lost data set, TaskNotFound for one never submitted."""
        some = st.sampled_from((*ALL_IDS, "never-submitted"))
        if self.submitted:
            some = st.one_of(st.sampled_from(sorted(self.submitted)), some)
        task_id = data.draw(some, label="task_id")
        epoch = self.submitted.get(task_id, "")
        target: TaskHandle | str = TaskHandle(self.client, task_id, epoch) if epoch else task_id
        call: Callable[[], Any] = (
            (lambda: self.client.result(target, timeout=WAIT_SECONDS))
            if fetch_result
            else (lambda: self.client.wait([target], timeout=WAIT_SECONDS))
        )
        try:
            outcome = self.waits.submit(call).result(timeout=HANG_SECONDS)
        except concurrent.futures.TimeoutError:
            raise AssertionError(f"a wait for {task_id} hangs") from None
        except PidsError as exc:
            outcome = exc
        SEEN[f"wait: {type(outcome).__name__}"] += 1
        task = self.model.tasks.get(task_id)
        if task is None:
            assert isinstance(outcome, TaskLost if epoch else TaskNotFound), outcome
        elif task.state not in FINAL:
            assert isinstance(outcome, TaskTimeout), outcome
        elif not fetch_result:
            assert outcome == {task_id: TaskState(task.state)}
        elif task.state == "succeeded":
            assert outcome == (None if task.result is None else json.loads(task.result))
        else:
            assert isinstance(outcome, TaskFailed) and outcome.state == task.state, outcome

    # -- Redis restarts -----------------------------------------------------------------------------
    @precondition(lambda self: self.restarts < MAX_RESTARTS)
    @rule(crash=st.booleans())
    def redis_restarts_from_its_aof(self, crash: bool) -> None:
        """SIGKILL or SIGTERM: with appendfsync always every acknowledged write is kept."""
        self._restart(crash)
        SEEN["restart: from its AOF" + (" after SIGKILL" if crash else "")] += 1

    @precondition(lambda self: self.restarts < MAX_RESTARTS)
    @rule()
    def redis_restarts_empty(self) -> None:
        self._restart(False, self.aof_copies / "none")
        self.model.lose_everything()
        self.done_ids.clear()
        SEEN["restart: empty"] += 1
        assert list(self.client.redis.scan_iter(match=f"{self.keys.prefix}*")) == []

    @rule()
    def copy_the_aof(self) -> None:
        """What a backup, or a replica that falls behind, holds: this moment's data set."""
        self.redis.copy_files(self.aof_copies / "older")
        self.older = (copy.deepcopy(self.model), set(self.done_ids))

    @precondition(lambda self: self.restarts < MAX_RESTARTS and self.older is not None)
    @rule()
    def redis_restarts_from_an_older_copy(self) -> None:
        """Redis comes back with the same epoch but without its last writes: claims, completions and
        tasks made since are gone; the tokens of claims made since never win."""
        assert self.older is not None
        self._restart(True, self.aof_copies / "older")
        self.model, done_ids = copy.deepcopy(self.older)
        self.done_ids = set(done_ids)
        SEEN["restart: from an older copy"] += 1

    def _restart(self, crash: bool, files: Path | None = None) -> None:
        self._check_events()
        self.redis.restart(crash=crash, files=files)
        self.restarts += 1
        self.held_connection_stale = True
        self.events.close()
        self.events = self._subscribe()
        STEPS["restarts"] += 1

    # -- the invariants, after every step ----------------------------------------------------------
    def _subscribe(self) -> Any:
        pubsub = self.client.redis.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        pubsub.subscribe(self.keys.done_channel)
        return pubsub

    def _check_events(self) -> None:
        """The done events published since the last check are the model's: one per task that became final."""
        self.client.redis.publish(self.keys.done_channel, BARRIER)
        received: list[str] = []
        deadline = time.monotonic() + HANG_SECONDS
        while True:
            assert time.monotonic() < deadline, "the done channel stopped delivering"
            message = self.events.get_message(timeout=1.0)  # None also for a subscription confirmed
            if message is None:
                continue
            if message["data"] == BARRIER:
                break
            received.extend(message["data"].split(" "))
        assert sorted(received) == sorted(self.model.events)
        self.model.events.clear()
        for event in received:
            task_id = event.rsplit(":", 1)[0]
            assert task_id not in self.done_ids, f"a second done event for {task_id}"
            self.done_ids.add(task_id)

    @invariant()
    def redis_holds_what_the_model_says(self) -> None:
        STEPS["checks"] += 1
        self._check_events()
        check_redis_state(self.client, self.model, ALL_IDS, WORKERS, BATCHES, SLOTS)


@pytest.fixture(scope="module")
def durable_redis() -> Iterator[RestartingRedis]:
    """A redis-server of this module's own, its AOF fsynced at every write: the test restarts it."""
    with EmbeddedRedis(appendonly=True) as server:
        yield RestartingRedis(server)


@pytest.mark.timeout(600)  # a failure is shrunk for up to five minutes (Hypothesis' own limit)
def test_the_protocol_keeps_its_model_through_random_interleavings_and_restarts(durable_redis: RestartingRedis) -> None:
    STEPS.clear()
    SEEN.clear()
    started = time.monotonic()

    class OnTheModuleServer(ProtocolMachine):
        redis = durable_redis

    run_state_machine_as_test(OnTheModuleServer, settings=settings.get_profile(PROFILE))
    print(
        f"\nprotocol model: {STEPS['examples']} examples, {STEPS['checks'] - STEPS['examples']} steps, "
        f"{STEPS['restarts']} Redis restarts in {time.monotonic() - started:.1f} s"
    )
    print("\n".join(f"  {count:6d} {kind}" for kind, count in sorted(SEEN.items())))
