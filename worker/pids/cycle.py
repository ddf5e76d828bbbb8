"""The claim cycle as a pure state machine: `request()` says what the next call to Redis carries
(claim the front of this worker's share, read a snapshot when the share runs low), `absorb()`
folds the reply in (plan a new share from the snapshot). No I/O: the worker's loop sends the
requests, and the simulator and `pids bench scale` can drive the same object.

Steady state is one round trip per cycle: completions + a claim from the share kept from the
last plan + a snapshot when the share runs low, in one call of cycle.lua. Without a usable share
the first round trip only reads a snapshot to plan from, and `again` asks for a second one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .placement import Placement, WorkerTable, binds_late, claim_order
from .settings import HEAVIEST, WorkerSettings
from .share import DEPTH, Share
from .view import task_window, worker_table
from .wire import NO_TOTALS, VIEW, ClaimedTask, Completion, CycleReply, CycleRequest, Snapshot, WorkerTotals

MIN_WINDOW = 2 * DEPTH  # two one-slot workers each find a DEPTH-deep share in one window
MAX_BATCHED_WINDOW = 1024  # tasks a batched worker's snapshot reads at most for the other workers' batches
QUARANTINE_SECONDS = 60.0  # a task whose claim Redis refused is left out of this worker's shares this long


@dataclass(frozen=True)
class CycleConfig:
    worker_id: str
    slots: int
    prefetch: int
    window: int
    heaviest: int
    view: int
    lease_ms: int

    @classmethod
    def of(cls, settings: WorkerSettings) -> CycleConfig:
        s = settings
        return cls(s.worker_id, s.concurrency, s.prefetch, s.window, HEAVIEST, VIEW, int(s.lease_seconds * 1000))


def claim_window(config: CycleConfig, cluster_slots: int) -> tuple[int, int]:
    """(window, heaviest part) read per snapshot: the configured window, but no larger than a few
    times the slots (+ prefetch) of the whole cluster or two DEPTH-deep shares, whichever is more
    (so a small cluster's snapshot is read once per share, not per claim). A worker claiming in
    batches reads at least two of its own batches and, up to MAX_BATCHED_WINDOW, a batch for every
    slot of the cluster, so batched workers do not split one small window into small claims."""
    own_batch = config.slots + config.prefetch
    every_batch = min(cluster_slots, MAX_BATCHED_WINDOW) if own_batch > 1 else 0
    window = min(max(config.window, 2 * own_batch, every_batch), max(MIN_WINDOW, 4 * cluster_slots))
    return window, min(config.heaviest, window // 4)


class Step(NamedTuple):
    """What a reply means for the worker."""

    won: list[ClaimedTask]
    pending: int | None  # tasks in the window planned from; None: no snapshot was read
    again: bool  # nothing won but a fresh plan (or share) to claim from: send another request now
    wake: str | None  # the plan gives its first task to this worker, which holds nothing: wake it
    saw_dead: bool  # a worker in the view is past its heartbeat deadline


class ClaimCycle:
    def __init__(self, config: CycleConfig, policy: Placement) -> None:
        self.config = config
        self.policy = policy
        self.late_binding = binds_late(policy)
        self.share = Share()
        self.window = (config.window, config.heaviest)  # sized from the last snapshot
        self.maybe_idle = True  # the last snapshot found no pending task, so it put this worker in the idle set
        self.quarantined: dict[str, float] = {}  # task id -> until (perf_counter seconds)

    def quarantine(self, task_ids: Sequence[str], now: float) -> None:
        """Leave these tasks out of this worker's shares for a while (a claim of them failed)."""
        self.quarantined = {t: u for t, u in self.quarantined.items() if u > now}
        self.quarantined.update(dict.fromkeys(task_ids, now + QUARANTINE_SECONDS))
        self.share.clear()

    def request(
        self,
        free: int,
        now: float,
        completions: Sequence[Completion] = (),
        totals: WorkerTotals = NO_TOTALS,
        claiming: bool = True,
    ) -> CycleRequest:
        """The next call: `free` slots to fill (an early-binding policy takes its whole share);
        totals go with snapshot reads only, not with every cycle. claiming False (draining):
        only the completions."""
        if not claiming:
            return CycleRequest(self.config.worker_id, completions, totals)
        wanted = free if self.late_binding else len(self.share)
        sent = self.share.candidates(wanted) if self.share.usable(now) else []
        read_snapshot = not sent or self.share.runs_low(wanted, now)
        window, heaviest = self.window
        return CycleRequest(
            self.config.worker_id,
            completions,
            totals if read_snapshot else NO_TOTALS,
            sent,
            wanted,
            self.config.lease_ms,
            self.maybe_idle,
            window if read_snapshot else 0,
            heaviest,
            self.config.view,
        )

    def absorb(self, request: CycleRequest, reply: CycleReply, free: int, now: float) -> Step:
        """Fold a reply in; `free` is the slots that were free when the request was made."""
        won = reply.won
        if request.claim_ids:
            self.maybe_idle = False
        self.share.consume(request.claim_ids, [task.id for task in won], request.wanted)
        snapshot = reply.snapshot
        if snapshot is None:
            return Step(won, None, not won, None, False)
        live = snapshot.live_workers()
        slots = sum(int(i.get("slots", 1)) + int(i.get("prefetch", 0)) for i in live.values())
        self.window = claim_window(self.config, slots)
        pending, wake = self._plan(snapshot, free - len(won), now)
        if pending == 0:
            self.maybe_idle = True
        return Step(won, pending, not won and bool(self.share), wake, len(live) < len(snapshot.workers))

    def _plan(self, snapshot: Snapshot, free: int, planned_at: float) -> tuple[int, str | None]:
        """Make this worker's share from `snapshot`; returns (the size of its task window, a worker
        to wake). A late-binding policy plans as if this worker had DEPTH times its slots; the
        share is claimed in the policy's own order (placement.claim_order), so its front is what
        the policy would place first. An early-binding one plans with its free slots and queues
        its whole share."""
        self.share.clear()
        window = task_window(snapshot)
        if len(window) == 0:
            return 0, None
        me_id = self.config.worker_id
        slots = self.config.slots + self.config.prefetch
        table = worker_table(snapshot, me_id, slots * DEPTH if self.late_binding else max(free, 0))
        if me_id not in table.ids:
            return len(window), None  # our heartbeat lapsed (e.g. Redis was away): register again first
        me = table.ids.index(me_id)
        plan = self.policy.assign(table, window, me)
        share = [window.ids[i] for i in claim_order(self.policy, table, window, me, np.flatnonzero(plan == me))]
        if self.quarantined:
            share = [t for t in share if self.quarantined.get(t, 0.0) <= planned_at]
        self.share.replace(share, planned_at)
        return len(window), None if share else first_idle_owner(table, plan)


def first_idle_owner(table: WorkerTable, plan: np.ndarray) -> str | None:
    """The worker a plan gives its first task to, if it holds nothing. It may be asleep until new
    work wakes it, and enqueue wakes the worker idle longest, not the one the plan picks: one
    wake per such plan at most, so the fan-out per task stays flat in the number of workers."""
    owners = plan[plan >= 0]
    if len(owners) > 0 and table.held is not None and table.held[owners[0]] == 0:
        return table.ids[int(owners[0])]
    return None
