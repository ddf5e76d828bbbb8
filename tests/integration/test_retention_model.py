"""Retention under random interleavings (Hypothesis, a real Redis): tasks completed and listed,
failed for good (key expiry), retried, retained with another retention or none, swept at any
time. A record never disappears before its due, and after a last sweep none stays past it."""

from __future__ import annotations

import math
import time
import uuid
from collections import Counter

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from pids.client import Client
from pids.connection import connect
from pids.embedded import EmbeddedRedis
from pids.protocol import Protocol
from pids.wire import ClaimedTask, Completion

RETENTION = 0.05  # seconds: the tasks' and the worker's, so completions are listed
LONGER = 60.0  # another retention: completions give expiries
WORKER = "w"
SEEN: Counter[str] = Counter()  # what the run did, by kind


class RetentionMachine(RuleBasedStateMachine):
    server: EmbeddedRedis  # set by the test

    def __init__(self) -> None:
        super().__init__()
        self.client = Client.from_redis(connect(self.server.url), f"r{uuid.uuid4().hex[:10]}", retention=RETENTION)
        self.worker = Protocol(self.client.redis, self.client.keys, list_retention_ms=round(RETENTION * 1000))
        self.worker.heartbeat(WORKER, {"slots": 64, "speed": 1.0, "capacity": 64.0}, 600_000, 600_000)
        self.pending: set[str] = set()
        self.earliest: dict[str, float] = {}  # final task -> server ms before which it must exist (inf: kept)
        self.failed: set[str] = set()
        self.retention: dict[str, float] = {}  # task -> its retention field in ms (inf: kept), if not RETENTION
        self.n = 0

    def teardown(self) -> None:
        self.client.redis.close()

    def now(self) -> int:
        return self.worker.server_ms()

    def finished_at(self, task_id: str) -> int:
        return int(self.client.redis.hget(self.client.keys.task(task_id), "finished_at") or 0)

    @rule(count=st.integers(1, 4), longer=st.booleans())
    def submit(self, count: int, longer: bool) -> None:
        """longer: a retention other than the worker's (key expiry), long enough that a task failed
        for good is still there to be retried."""
        for _ in range(count):
            self.n += 1
            task_id = f"t{self.n}"
            self.pending.add(
                self.client.submit(
                    "pids.tasks:echo", self.n, task_id=task_id, retention=LONGER if longer else RETENTION
                ).id
            )
            if longer:
                self.retention[task_id] = LONGER * 1000

    # Rules draw the same values whatever the state (which moves with real time: Hypothesis
    # replays an example and needs its draws to repeat), and do nothing when nothing applies.
    @rule(count=st.integers(1, 4), fail=st.booleans())
    def finish(self, count: int, fail: bool) -> None:
        if not self.pending:
            return
        won = self.worker.claim(WORKER, sorted(self.pending)[:count], lease_ms=600_000)
        if fail:
            for task in won:
                assert self.worker.fail(WORKER, task, "no", retryable=False, backoff_ms=0, busy_seconds=0.0) == "failed"
                self.failed.add(task.id)
        else:
            reply = self.worker.complete(WORKER, [self.completion(t) for t in won])
            assert reply.accepted == [t.id for t in won]
        for task in won:
            self.pending.discard(task.id)
            self.earliest[task.id] = self.finished_at(task.id) + self.retention.get(task.id, RETENTION * 1000)

    @staticmethod
    def completion(task: ClaimedTask) -> Completion:
        return Completion(task.id, task.token, str(task.attempt), 0.0, task.weight, task.batch)

    @rule(pick=st.integers(0, 999), retention=st.sampled_from([None, RETENTION, LONGER]))
    def retain(self, pick: int, retention: float | None) -> None:
        if not self.earliest:
            return
        task_id = sorted(self.earliest)[pick % len(self.earliest)]
        before = self.now()
        if self.client.retain([task_id], retention) == 1:  # final: from now on
            SEEN[f"retained {retention}"] += 1
            self.retention[task_id] = math.inf if retention is None else retention * 1000
            self.earliest[task_id] = before + self.retention[task_id]

    @rule(pick=st.integers(0, 999))
    def retry(self, pick: int) -> None:
        candidates = sorted(self.failed & set(self.earliest))
        if not candidates:
            return
        task_id = candidates[pick % len(candidates)]
        if self.client.retry([task_id]).get(task_id) == "requeued":
            SEEN["retried"] += 1
            del self.earliest[task_id]
            self.failed.discard(task_id)
            self.pending.add(task_id)

    @rule()
    def sweep(self) -> None:
        SEEN["swept"] += self.worker.sweep(1000)[1]

    @rule()
    def wait(self) -> None:
        time.sleep(RETENTION / 3)

    @invariant()
    def no_record_is_gone_before_its_due(self) -> None:
        watched = sorted(self.pending | set(self.earliest))
        gone = [t for t in watched if not self.client.redis.exists(self.client.keys.task(t))]
        now = self.now()  # read after: each task was gone by now
        for task_id in gone:
            assert task_id not in self.pending, f"{task_id} vanished while not final"
            assert now >= self.earliest[task_id], f"{task_id} gone {self.earliest[task_id] - now:.0f} ms early"
            del self.earliest[task_id]
            self.failed.discard(task_id)

    def check_none_stays_past_its_due(self) -> None:
        time.sleep(RETENTION * 1.2)
        while (swept := self.worker.sweep(1000))[0]:
            SEEN["swept at the end"] += swept[1]
        now = self.now()
        for task_id, earliest in self.earliest.items():
            if earliest + 1 <= now:  # key expiry's own rounding aside
                assert not self.client.redis.exists(self.client.keys.task(task_id)), f"{task_id} stayed past its due"


def test_no_final_task_is_deleted_before_its_retention_and_none_stays_after_it(redis_server: EmbeddedRedis) -> None:
    class OnTheSessionServer(RetentionMachine):
        server = redis_server

        def teardown(self) -> None:
            self.check_none_stays_past_its_due()
            super().teardown()

    SEEN.clear()
    for _ in range(3):  # a round of 40 examples now and then draws no failure that stays to be retried
        run_state_machine_as_test(
            OnTheSessionServer,
            settings=settings(
                max_examples=40, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
            ),
        )
        if SEEN["swept"] + SEEN["swept at the end"] and SEEN["retried"]:
            break
    print("\nretention model:", dict(sorted(SEEN.items())))
    assert SEEN["swept"] + SEEN["swept at the end"] and SEEN["retried"], "the run never swept or retried a task"
