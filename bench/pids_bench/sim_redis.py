"""An in-memory model of one cluster's queue as the Lua scripts keep it, for the simulator.

It answers the worker's own `CycleRequest` with a `CycleReply`, as cycle.lua does: complete
(fenced by the claim token), claim (the first `wanted` candidates still pending, in order), then
the snapshot (up to H of the heaviest pending tasks heavier than the default weight 1, the rest
of the K from the front of the queue; the V workers with the most free slots, and the caller),
with the worker's load changes of complete and claim netted before the snapshot reads them. It
keeps what those reads depend on: the pending set in queue order, the weight index, the worker
table, loads, free slots and the idle set (enqueue wakes the workers idle longest). Left out:
results, retries, leases, batches, cancellation and counters, which the simulator never uses.
Time is the simulator's clock in seconds; the scripts' server time is its milliseconds.
tests/integration/test_sim_redis.py checks windows, views and claims against the real scripts.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pids.wire import (
    NO_COMPLETION,
    ClaimedTask,
    Completion,
    CompletionReply,
    CycleReply,
    CycleRequest,
    Snapshot,
    held_field,
)

PRIORITY_STEP = 1099511627776  # 2^40: queue order is seq - priority * this (enqueue.lua)
NEVER_MS = 2**53  # a heartbeat deadline that never passes
EPOCH = "sim"


def server_ms(now: float) -> int:
    """The scripts' clock (server_time.lua: whole milliseconds) at simulated time `now` (seconds)."""
    return int(now * 1000)


@dataclass(frozen=True)
class SimTask:
    """What enqueue is given for one task; seq None takes the next enqueue sequence number."""

    id: str
    weight: float = 1.0
    priority: int = 0
    position: str = ""
    seq: int | None = None


@dataclass
class _Record:
    """The fields of a task's hash the scripts read."""

    order: int
    weight_text: str
    priority: int
    position: str
    seq: int
    enqueued_ms: int
    state: str = "pending"
    claim: str = ""  # the running attempt's token, "<attempt>|<ms>|<epoch>|<worker>"
    attempt: int = 0

    @property
    def weight(self) -> float:
        return float(self.weight_text)

    def meta(self) -> str:
        """pending_meta_text (pending_meta.lua)."""
        return f"{self.order}\t{self.weight_text}\t{self.priority}\t{self.position}\t{self.seq}\t{self.enqueued_ms}"


@dataclass
class SimRedis:
    tasks: dict[str, _Record] = field(default_factory=dict)
    pending: list[tuple[int, str]] = field(default_factory=list)  # ZSET pending, as (order, id), sorted
    by_weight: list[tuple[float, str]] = field(default_factory=list)  # ZSET pending_by_weight, ascending
    meta: dict[str, str] = field(default_factory=dict)  # HASH pending_meta
    workers: dict[str, dict[str, Any]] = field(default_factory=dict)  # HASH workers: info with deadline
    load: dict[str, float] = field(default_factory=dict)  # HASH loads: held weight ...
    held: dict[str, int] = field(default_factory=dict)  # ... and "<worker>:n", held count
    free_slots: dict[str, int] = field(default_factory=dict)  # ZSET free_slots
    idle: dict[str, int] = field(default_factory=dict)  # ZSET idle: worker -> ms it found no pending task
    claims: dict[str, set[str]] = field(default_factory=dict)  # SET claims of each worker
    seq: int = 0  # stats' seq counter
    version: int = 0  # bumped by every change a snapshot's plan could see
    _deferred: list[float] | None = None  # cycle.lua's netted load change: [weight, count]

    # --- enqueue.lua, heartbeat.lua, release.lua, forget_worker.lua ---------------------------

    def enqueue(self, tasks: Sequence[SimTask], now: float) -> list[str]:
        """Create the tasks not there yet; returns the idle workers woken (one per task created)."""
        now_ms = server_ms(now)
        created = 0
        for t in tasks:
            if t.id in self.tasks:
                continue
            if t.seq is None:
                self.seq += 1
            seq = self.seq if t.seq is None else t.seq
            record = _Record(
                seq - t.priority * PRIORITY_STEP, repr(float(t.weight)), t.priority, t.position, seq, now_ms
            )
            self.tasks[t.id] = record
            self._make_pending(t.id, record)
            created += 1
        if created:
            self.version += 1
        woken = sorted(self.idle, key=lambda w: (self.idle[w], w))[:created]  # ZPOPMIN
        for w in woken:
            del self.idle[w]
        return woken

    def heartbeat(self, worker_id: str, info: dict[str, Any], now: float, ttl_ms: int = NEVER_MS) -> None:
        info = {**info, "deadline": server_ms(now) + ttl_ms}
        self.workers[worker_id] = info
        self.load.setdefault(worker_id, 0.0)
        self.held.setdefault(worker_id, 0)
        if info.get("draining"):
            self.free_slots.pop(worker_id, None)
        else:
            self.free_slots[worker_id] = int(info.get("slots", 1)) + int(info.get("prefetch", 0)) - self.held[worker_id]
        self.version += 1

    def lapse(self, worker_id: str, now: float) -> None:
        """The worker stopped beating: its deadline is `now` (it is no longer live)."""
        self.workers[worker_id]["deadline"] = server_ms(now)
        self.version += 1

    def release_worker(self, worker_id: str) -> int:
        """Every task the worker holds back to pending (release.lua); returns how many."""
        held = sorted(self.claims.get(worker_id, ()))
        weight = 0.0
        for task_id in held:
            record = self.tasks[task_id]
            record.state = "pending"
            weight += record.weight
            self._make_pending(task_id, record)
        self.claims[worker_id] = set()
        if held:
            self._change_load(worker_id, -weight, -len(held))
            self.version += 1
        return len(held)

    def forget_worker(self, worker_id: str) -> bool:
        if self.claims.get(worker_id):
            return False
        for table in (self.workers, self.load, self.held, self.free_slots, self.idle):
            table.pop(worker_id, None)
        self.version += 1
        return True

    # --- cycle.lua: complete, claim, snapshot ----------------------------------------------

    def cycle(self, request: CycleRequest, now: float) -> CycleReply:
        r = request
        self._deferred = [0.0, 0]
        completed = self.complete(r.worker_id, r.completions) if r.completions or r.totals.tasks else NO_COMPLETION
        won = self.claim(r.worker_id, r.claim_ids, r.wanted, now, r.maybe_idle) if r.claim_ids else []
        weight, count = self._deferred
        self._deferred = None
        if count or weight:
            self._apply_load(r.worker_id, weight, int(count))
        snapshot = self.snapshot(r.window, r.heaviest, r.view, r.worker_id, now) if r.window else None
        return CycleReply(completed, won, snapshot)

    def complete(self, worker_id: str, completions: Sequence[Completion]) -> CompletionReply:
        accepted: list[str] = []
        stale: list[str] = []
        already: list[str] = []
        released = 0.0
        for c in completions:
            record = self.tasks.get(c.task_id)
            if record is not None and record.state == "running" and record.claim == c.token:
                record.state = "succeeded"
                released += record.weight
                accepted.append(c.task_id)
                self.claims[worker_id].discard(c.task_id)
            elif record is not None and record.claim == c.token and record.state == "succeeded":
                already.append(c.task_id)
            else:
                stale.append(c.task_id)
        if accepted:
            self._change_load(worker_id, -released, -len(accepted))
            self.version += 1
        return CompletionReply(accepted, stale, already)

    def claim(
        self, worker_id: str, candidates: Sequence[str], wanted: int, now: float, maybe_idle: bool = True
    ) -> list[ClaimedTask]:
        """The first `wanted` of `candidates` still pending, in order."""
        suffix = f"|{server_ms(now)}|{EPOCH}|{worker_id}"
        won: list[ClaimedTask] = []
        added = 0.0
        for task_id in candidates:
            if len(won) == wanted:
                break
            record = self.tasks.get(task_id)
            if record is None or record.state != "pending":
                continue
            self._unqueue(task_id, record)
            record.attempt += 1
            record.state, record.claim = "running", f"{record.attempt}{suffix}"
            added += record.weight
            self.claims.setdefault(worker_id, set()).add(task_id)
            won.append(ClaimedTask(task_id, record.claim, "sim", "[]", "{}", None, record.weight, ""))
        if won:
            self._change_load(worker_id, added, len(won))
            if maybe_idle:
                self.idle.pop(worker_id, None)
            self.version += 1
        return won

    def snapshot(self, window: int, heaviest: int, view: int, me: str, now: float) -> Snapshot:
        now_ms = server_ms(now)
        heavy = [task_id for _, task_id in reversed(self.by_weight[-heaviest:])] if heaviest > 0 else []
        rest = window - len(heavy)
        ids = [task_id for _, task_id in self.pending[:rest]] if rest > 0 else []
        if heavy:
            seen = set(ids)
            ids += [task_id for task_id in heavy if task_id not in seen]
        metas: list[str | None] = [self.meta[task_id] for task_id in ids]
        shown = sorted(self.free_slots, key=lambda w: (self.free_slots[w], w), reverse=True)[:view]  # ZREVRANGE
        if me and me not in shown:
            shown.append(me)
        workers: dict[str, dict[str, Any]] = {}
        loads: dict[str, float] = {}
        for w in shown:
            if w in self.workers:
                workers[w] = dict(self.workers[w])
                loads[w] = self.load.get(w, 0.0)
                loads[held_field(w)] = float(self.held.get(w, 0))
        if not ids and me:
            self.idle[me] = now_ms
        return Snapshot(now_ms=now_ms, task_ids=ids, task_meta=metas, workers=workers, loads=loads, view=view)

    # --- the shared parts (pending_meta.lua, worker_load.lua) --------------------------------

    def _make_pending(self, task_id: str, record: _Record) -> None:
        bisect.insort(self.pending, (record.order, task_id))
        if record.weight > 1:
            bisect.insort(self.by_weight, (record.weight, task_id))
        self.meta[task_id] = record.meta()

    def _unqueue(self, task_id: str, record: _Record) -> None:
        del self.pending[bisect.bisect_left(self.pending, (record.order, task_id))]
        if record.weight > 1:
            del self.by_weight[bisect.bisect_left(self.by_weight, (record.weight, task_id))]
        del self.meta[task_id]

    def _change_load(self, worker_id: str, weight: float, count: int) -> None:
        if self._deferred is not None:
            self._deferred[0] += weight
            self._deferred[1] += count
        else:
            self._apply_load(worker_id, weight, count)

    def _apply_load(self, worker_id: str, weight: float, count: int) -> None:
        if count < 0 and not self.claims.get(worker_id):
            self.load[worker_id], self.held[worker_id] = 0.0, 0  # holds nothing: exact zeros
        else:
            self.load[worker_id] = self.load.get(worker_id, 0.0) + weight
            self.held[worker_id] = self.held.get(worker_id, 0) + count
        if count:
            self.free_slots[worker_id] = self.free_slots.get(worker_id, 0) - count

    def pending_count(self) -> int:
        return len(self.pending)
