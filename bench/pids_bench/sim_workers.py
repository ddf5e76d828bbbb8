"""The simulated workers: each takes claim turns on the simulator's queue model (sim_redis).

`CycleWorker` is a worker as `pids worker` runs: its own `ClaimCycle` and `Ledger`, one turn
made as ClaimLoop._turn and _claim make it (request, the model's reply, absorb, a second round
when the step says `again`), with the simulated clock as `now`. `CentralWorker` stands for a
centralised reference (LPT, EFT): each free slot is planned over the whole pending queue, with
no shares, window or wake-ups, and the completions reach the queue the moment a task ends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from pids.cycle import ClaimCycle, CycleConfig, Step
from pids.execution import Outcome
from pids.ledger import Ledger
from pids.placement import Placement, TaskWindow, WorkerTable, binds_late, claim_order
from pids.view import task_window, worker_table
from pids.wire import VIEW, ClaimedTask, Completion, CycleReply, CycleRequest

from .sim_redis import SimRedis
from .workloads import WorkerSpec

LEASE_MS = 30_000  # a claim's lease (never runs out in the simulator: workers beat until they crash)


@dataclass
class Timed:
    """A policy with the process CPU time of its plans counted (the simulator's one measured output)."""

    inner: Placement
    seconds: float = 0.0
    calls: int = 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def late_binding(self) -> bool:
        return binds_late(self.inner)

    def assign(self, workers: WorkerTable, tasks: TaskWindow, me: int) -> np.ndarray:
        began = time.process_time()
        plan = self.inner.assign(workers, tasks, me)
        self.seconds += time.process_time() - began
        self.calls += 1
        return plan

    def claim_order(self, workers: WorkerTable, tasks: TaskWindow, me: int, share: np.ndarray) -> np.ndarray:
        """The inner policy's claim order (placement.claim_order), its CPU time counted too."""
        began = time.process_time()
        ordered = claim_order(self.inner, workers, tasks, me, share)
        self.seconds += time.process_time() - began
        return ordered


class Turn(NamedTuple):
    won: list[ClaimedTask]
    waiting: bool  # nothing won, and the plan left pending work to other workers: look again soon
    wake: str | None  # a worker to wake (its plan gives it the first task and it holds nothing)
    may_claim: bool  # False: every slot (and prefetch) is taken; the worker waits for a task to end


def worker_info(spec: WorkerSpec, prefetch: int) -> dict[str, Any]:
    """The heartbeat's info, as Worker.info builds it."""
    return {
        "slots": spec.slots,
        "prefetch": prefetch,
        "speed": spec.speed,
        "capacity": spec.slots * spec.speed,
        "position": spec.position,
        "draining": False,
    }


class CycleWorker:
    def __init__(
        self, spec: WorkerSpec, policy: Placement, redis: SimRedis, *, prefetch: int, window: int, heaviest: int
    ) -> None:
        self.id = spec.id
        self.info = worker_info(spec, prefetch)
        self.slots = spec.slots + prefetch
        self.redis = redis
        self.cycle = ClaimCycle(CycleConfig(spec.id, spec.slots, prefetch, window, heaviest, VIEW, LEASE_MS), policy)
        self.ledger = Ledger()
        self.held = 0  # tasks claimed and not finished

    def finished(self, task: ClaimedTask, seconds: float, now: float) -> None:
        self.held -= 1
        self.ledger.record(Outcome(task, True, seconds=seconds))

    def turn(self, now: float) -> Turn:
        """One turn of the claim loop (ClaimLoop._turn)."""
        free = self.slots - self.held
        may_claim = free > 0 or not self.cycle.late_binding
        won: list[ClaimedTask] = []
        waiting, wake = False, None
        if may_claim:
            step = self._round(max(free, 0), now)
            if step.again:  # a fresh plan (or share) and nothing won yet: claim from it now
                step = self._round(max(free, 0), now)
            won, waiting, wake = step.won, not step.won and step.pending != 0, step.wake
        if not may_claim or not (won or waiting):
            self.flush(now, until_empty=False)
        self.held += len(won)
        return Turn(won, waiting, wake, may_claim)

    def _round(self, free: int, now: float) -> Step:
        request = self.cycle.request(free, now, self.ledger.next_completions(), self.ledger.totals)
        return self.cycle.absorb(request, self._call(request, now), free, now)

    def _call(self, request: CycleRequest, now: float) -> CycleReply:
        reply = self.redis.cycle(request, now)
        self.ledger.sent(request.completions, request.totals, reply.completed)
        return reply

    def flush(self, now: float, until_empty: bool = True) -> None:
        """Send the completions not sent yet (ClaimLoop._send_completions)."""
        while self.ledger.completions or self.ledger.totals.tasks:
            self._call(CycleRequest(self.id, self.ledger.next_completions(), self.ledger.totals), now)
            if not until_empty:
                return


class CentralWorker:
    def __init__(self, spec: WorkerSpec, policy: Placement, redis: SimRedis) -> None:
        self.id = spec.id
        self.info = worker_info(spec, 0)
        self.slots = spec.slots
        self.policy = policy
        self.redis = redis
        self.held = 0

    def finished(self, task: ClaimedTask, seconds: float, now: float) -> None:
        self.held -= 1
        self.redis.complete(self.id, [Completion(task.id, task.token, "null", seconds, task.weight)])

    def turn(self, now: float) -> Turn:
        """Plan over every pending task and claim this worker's part: up to its free slots, or all
        of it for an early-binding reference (EFT); it looks again at every change (as if polling)."""
        free = self.slots - self.held
        late = binds_late(self.policy)
        if late and free <= 0:
            return Turn([], False, None, False)
        snapshot = self.redis.snapshot(self.redis.pending_count(), 0, len(self.redis.workers) + 1, self.id, now)
        tasks = task_window(snapshot)
        won: list[ClaimedTask] = []
        if len(tasks):
            table = worker_table(snapshot, self.id, max(free, 0))
            me = table.ids.index(self.id)
            mine = [tasks.ids[i] for i in np.flatnonzero(self.policy.assign(table, tasks, me) == me)]
            won = self.redis.claim(self.id, mine[:free] if late else mine, len(mine), now)
        self.held += len(won)
        return Turn(won, not won, None, True)

    def flush(self, now: float, until_empty: bool = True) -> None:
        """Nothing to send: completions reach the queue as tasks end."""


SimWorker = CycleWorker | CentralWorker
