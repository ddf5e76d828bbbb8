"""A deterministic discrete-event simulator of PIDS workers claiming tasks.

Each simulated worker runs the worker's real claim cycle (`pids.cycle.ClaimCycle`, with its
`DEPTH`-deep shares claimed a few tasks at a time, its window sizing, idle and wake rules) on an
in-memory model of the queue's Lua scripts (sim_redis), through the policy object a real
worker is given (sim_workers.CycleWorker). The centralised references (LPT, EFT) plan over the
whole queue instead, outside the cycle (sim_workers.CentralWorker).

At each instant, after arrivals (one enqueue: it wakes the workers idle longest, one per task),
task ends (the worker's loop wakes) and crashes, the workers due take their turns in id order,
again and again until none is due. A worker that won tasks goes again at once; one whose plan
left the pending work to others looks again whenever the queue or a load changes, and at least
every `poll` s (a real one every 20 ms at most: in between only the tasks' ages change); one
that found no pending task sleeps until woken (enqueue, another worker's plan, a release) or
IDLE_WAIT; one whose slots and prefetch are all taken waits for a task to end. A crashed worker
stops beating at once and its claims go back to pending `release_delay` later. Claims and
announcements take no time; only the placement's CPU time is measured (process CPU time, the
one non-deterministic output). Every tie is broken by an explicit key, so a seed gives the same
run on every CPU.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass

import numpy as np

from pids.claim_loop import IDLE_WAIT
from pids.errors import PidsError
from pids.physics import path_distance
from pids.placement import Placement
from pids.scoring import balance_score, jain_index, makespan_lower_bound, max_over_mean, percentile
from pids.wire import ClaimedTask

from .policies import wants_whole_queue
from .sim_redis import SimRedis, SimTask
from .sim_workers import CentralWorker, CycleWorker, SimWorker, Timed, Turn
from .workloads import Workload

COMPLETE, CRASH, RELEASE = 0, 1, 2
STUCK_SECONDS = 3600.0  # simulated time with tasks pending, nothing running and no claim: stuck


class SimulationStuck(PidsError):
    """Tasks are pending, nothing is running and no worker will claim them."""


@dataclass
class SimResult:
    workload: str
    policy: str
    seed: int
    busy: np.ndarray  # (W,) seconds each worker spent running tasks
    survived: np.ndarray  # (W,) bool: alive at the end
    worker_of: np.ndarray  # (N,) worker that completed each task
    start: np.ndarray  # (N,) last start time
    finish: np.ndarray
    wait: np.ndarray  # (N,) last start - arrival
    remote: np.ndarray  # (N,) bool: ran away from its data
    lower_bound: float
    assign_seconds: float
    assign_calls: int

    @property
    def makespan(self) -> float:
        return float(self.finish.max()) if self.finish.size else 0.0

    def metrics(self) -> dict[str, float]:
        """The DESIGN.md measures; balance is over the busy time of the workers that survived."""
        busy = self.busy[self.survived]
        n = max(len(self.finish), 1)
        return {
            "balance": balance_score(busy),
            "jain": jain_index(busy),
            "max_mean": max_over_mean(busy),
            "makespan_lb": self.makespan / self.lower_bound if self.lower_bound > 0 else 0.0,
            "wait_mean": float(self.wait.mean()) if self.wait.size else 0.0,
            "wait_p99": percentile(self.wait, 99),
            "remote": float(self.remote.mean()) if self.remote.size else 0.0,
            "cpu_us": 1e6 * self.assign_seconds / n,
        }


class _Simulation:
    def __init__(self, workload: Workload, policy: Placement, window: int, batch: int, poll: float, heavy: int) -> None:
        self.w = workload
        self.poll = poll
        self.timed = Timed(policy)
        self.redis = SimRedis()
        central = wants_whole_queue(policy)
        self.workers: list[SimWorker] = [
            CentralWorker(s, self.timed, self.redis)
            if central
            else CycleWorker(s, self.timed, self.redis, prefetch=batch - 1, window=window, heaviest=heavy)
            for s in workload.workers
        ]
        n, n_workers = workload.n_tasks, len(workload.workers)
        self.index = {task_id: i for i, task_id in enumerate(workload.ids)}
        self.slots = np.array([s.slots for s in workload.workers], dtype=np.int64)
        self.speed = np.array([s.speed for s in workload.workers], dtype=np.float64)
        self.wpos = [s.position for s in workload.workers]
        self.by_id = {s.id: w for w, s in enumerate(workload.workers)}
        self.seq = np.arange(n, dtype=np.int64) if workload.seq is None else np.asarray(workload.seq, dtype=np.int64)
        self.alive = np.ones(n_workers, dtype=bool)
        self.running = np.zeros(n_workers, dtype=np.int64)
        self.queued: list[deque[ClaimedTask]] = [deque() for _ in range(n_workers)]
        self.in_flight: list[dict[int, tuple[float, ClaimedTask]]] = [{} for _ in range(n_workers)]  # task -> start
        self.busy = np.zeros(n_workers)
        self.attempt = np.zeros(n, dtype=np.int64)
        self.start = np.full(n, np.nan)
        self.finish = np.full(n, np.nan)
        self.worker_of = np.full(n, -1, dtype=np.int64)
        self.remote = np.zeros(n, dtype=bool)
        self.events: list[tuple[float, int, int, int, int]] = []
        self.counter = 0
        self.done = 0
        self.progress_at = 0.0  # the last claim or task end
        self.due = [0.0] * n_workers  # the next turn; every worker starts with one
        self.polling = [False] * n_workers  # its plan left work to others: it also turns at every change
        self.looked: list[tuple[float, int] | None] = [None] * n_workers  # (time, queue version) of a turn
        self.rest = [np.inf] * n_workers  # the next turn its last turn asked for, if it won nothing

    # --- events ---------------------------------------------------------------

    def push(self, at: float, kind: int, a: int = 0, b: int = 0) -> None:
        self.counter += 1
        heapq.heappush(self.events, (at, kind, self.counter, a, b))

    def run(self) -> None:
        arrival = self.w.arrival
        for worker in self.workers:
            self.redis.heartbeat(worker.id, worker.info, 0.0)
        for w, spec in enumerate(self.w.workers):
            if spec.crash_at is not None:
                self.push(spec.crash_at, CRASH, w)
        nxt, n = 0, self.w.n_tasks
        while self.done < n:
            due = min((self.due[w] for w in np.flatnonzero(self.alive)), default=np.inf)
            at = min(self.events[0][0] if self.events else np.inf, arrival[nxt] if nxt < n else np.inf, due)
            if at == np.inf or (
                at - self.progress_at > STUCK_SECONDS and nxt == n and not self.events and not self.running.any()
            ):
                raise SimulationStuck(f"{self.redis.pending_count()} tasks pending and no worker claims them")
            first = nxt
            while nxt < n and arrival[nxt] <= at:  # arrivals come in task order, one enqueue per instant
                nxt += 1
            if nxt > first:
                arrived = [
                    SimTask(self.w.ids[t], float(self.w.hint[t]), 0, self.w.position[t], int(self.seq[t]))
                    for t in range(first, nxt)
                ]
                for worker_id in self.redis.enqueue(arrived, at):
                    self.wake(self.by_id[worker_id], at)
            while self.events and self.events[0][0] <= at:
                _, kind, _, a, b = heapq.heappop(self.events)
                self.handle(at, kind, a, b)
            self.turns(at)

    def handle(self, now: float, kind: int, a: int, b: int) -> None:
        if kind == COMPLETE:
            task, w = a, b >> 16
            if not self.alive[w] or self.attempt[task] != (b & 0xFFFF):
                return
            started, claimed = self.in_flight[w].pop(task)
            self.busy[w] += now - started
            self.finish[task] = now
            self.worker_of[task] = w
            self.running[w] -= 1
            self.done += 1
            self.progress_at = now
            self.workers[w].finished(claimed, now - started, now)
            self.start_tasks(w, now)
            self.wake(w, now)  # a task's end wakes its worker's loop
        elif kind == CRASH:
            self.crash(a, now)
        elif kind == RELEASE:
            worker_id = self.workers[a].id
            requeued = self.redis.release_worker(worker_id)
            self.redis.forget_worker(worker_id)
            if requeued:  # release.lua announces new work to every worker
                for w in np.flatnonzero(self.alive).tolist():
                    self.wake(w, now)

    def crash(self, w: int, now: float) -> None:
        self.workers[w].flush(now)  # what ended at this instant was sent in the same turn
        self.alive[w] = False
        for task, (started, _) in self.in_flight[w].items():
            self.busy[w] += now - started
            self.attempt[task] += 1
        for claimed in self.queued[w]:
            self.attempt[self.index[claimed.id]] += 1
        self.in_flight[w].clear()
        self.queued[w].clear()
        self.running[w] = 0
        self.redis.lapse(self.workers[w].id, now)
        self.push(now + self.w.release_delay, RELEASE, w)

    # --- turns ----------------------------------------------------------------

    def wake(self, w: int, now: float) -> None:
        self.due[w] = min(self.due[w], now)

    def turns(self, now: float) -> None:
        """Every worker due takes its turn, in id order, until none is due at `now`."""
        while True:
            took = False
            for w in np.flatnonzero(self.alive).tolist():
                looked = self.looked[w]
                changed = looked is None or looked[1] != self.redis.version
                if not (self.due[w] <= now or (self.polling[w] and changed)):
                    continue
                if not changed and looked is not None and looked[0] == now:  # it saw this very queue just now
                    self.due[w] = self.rest[w]
                    continue
                took = True
                self.settle(w, self.workers[w].turn(now), now)
            if not took:
                return

    def settle(self, w: int, turn: Turn, now: float) -> None:
        """What the worker does after a turn: run what it won, and when to look again."""
        if turn.won:
            for claimed in turn.won:
                self.queued[w].append(claimed)
            self.start_tasks(w, now)
            self.progress_at = now
            self.due[w], self.polling[w], self.looked[w] = now, False, None  # straight on
        else:
            self.polling[w] = turn.waiting
            self.rest[w] = now + self.poll if turn.waiting else now + IDLE_WAIT if turn.may_claim else np.inf
            self.due[w], self.looked[w] = self.rest[w], (now, self.redis.version)
        if turn.wake is not None and turn.wake in self.by_id:
            self.wake(self.by_id[turn.wake], now)

    def start_tasks(self, w: int, now: float) -> None:
        while self.running[w] < self.slots[w] and self.queued[w]:
            claimed = self.queued[w].popleft()
            task = self.index[claimed.id]
            hops = path_distance(self.wpos[w], self.w.position[task])
            duration = self.w.size[task] / self.speed[w] + self.w.transfer * hops
            self.start[task] = now
            self.remote[task] = hops > 0
            self.in_flight[w][task] = (now, claimed)
            self.running[w] += 1
            self.push(now + duration, COMPLETE, task, (w << 16) | int(self.attempt[task]))


def simulate(
    workload: Workload,
    policy: Placement,
    *,
    seed: int = 0,
    window: int = 64,
    batch: int | None = None,
    poll: float = 1.0,
    heavy: int = 0,
) -> SimResult:
    """Run `workload` to completion under `policy`. The workers' settings: `window` and `heavy`
    (K and the heaviest part; each worker then sizes its window as pids.cycle.claim_window does)
    and prefetch `batch` - 1 (default the workload's k); `poll` is how long a worker whose plan
    left the work to others waits at most before it looks again."""
    sim = _Simulation(workload, policy, window, workload.batch if batch is None else batch, poll, heavy)
    sim.run()
    lb = makespan_lower_bound(workload.size, sim.speed, sim.slots, workload.arrival)
    return SimResult(
        workload=workload.name,
        policy=policy.name,
        seed=seed,
        busy=sim.busy,
        survived=sim.alive.copy(),
        worker_of=sim.worker_of,
        start=sim.start,
        finish=sim.finish,
        wait=sim.start - workload.arrival,
        remote=sim.remote,
        lower_bound=lb,
        assign_seconds=sim.timed.seconds,
        assign_calls=sim.timed.calls,
    )
