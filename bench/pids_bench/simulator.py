"""A deterministic discrete-event simulator of PIDS workers claiming tasks.

It drives the very policy objects the real workers use. At each instant, after
arrivals, completions and crashes are applied, workers run claim cycles in id
order, each on a fresh snapshot (the atomic claim returns the fresh table):
read the first K pending tasks and the live-worker table, call
``policy.assign(workers, tasks, me)``, claim the tasks planned for ``me``. A
late-binding policy's worker claims only up to its free slots, and with batched
claims (k > 1) it claims, when it has nothing left to start, up to k tasks in one
round trip; an early-binding worker claims its whole share and queues it
locally. Centralised references (LPT, EFT) see the whole queue and never batch.
Claims and announcements take no time; only the placement's CPU time is measured
(process CPU time, the one non-deterministic output). Every tie is broken by an
explicit key, so a seed gives the same run on every CPU.
"""

from __future__ import annotations

import bisect
import heapq
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from pids.errors import PidsError
from pids.physics import path_distance
from pids.placement import Placement, TaskWindow, WorkerTable, binds_late
from pids.scoring import balance_score, jain_index, makespan_lower_bound, max_over_mean, percentile
from .policies import wants_whole_queue
from .workloads import Workload

COMPLETE, CRASH, RELEASE, WAKE = 0, 1, 2, 3


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
    def __init__(self, workload: Workload, policy: Placement, window: int, batch: int, poll: float, heavy: int = 0) -> None:
        self.w = workload
        self.policy = policy
        self.late = binds_late(policy)
        whole = wants_whole_queue(policy)
        self.window: int | None = None if whole else window
        self.batch = 1 if whole else batch  # centralised references place one task per free slot
        self.poll = poll
        self.heavy = 0 if whole else min(heavy, window)
        n, n_workers = workload.n_tasks, len(workload.workers)
        self.slots = np.array([s.slots for s in workload.workers], dtype=np.int64)
        self.speed = np.array([s.speed for s in workload.workers], dtype=np.float64)
        self.wpos = [s.position for s in workload.workers]
        self.ids = [s.id for s in workload.workers]
        self.task_ids = workload.ids
        self.seq = np.arange(n, dtype=np.int64) if workload.seq is None else np.asarray(workload.seq, dtype=np.int64)
        self.heavy_rank = heaviest_first(workload.hint, workload.ids)
        self.alive = np.ones(n_workers, dtype=bool)
        self.load = np.zeros(n_workers)
        self.held = np.zeros(n_workers, dtype=np.int64)
        self.running = np.zeros(n_workers, dtype=np.int64)
        self.queued: list[deque[int]] = [deque() for _ in range(n_workers)]
        self.in_flight: list[dict[int, float]] = [{} for _ in range(n_workers)]  # task -> start
        self.busy = np.zeros(n_workers)
        self.pending: list[int] = []
        self.attempt = np.zeros(n, dtype=np.int64)
        self.start = np.full(n, np.nan)
        self.finish = np.full(n, np.nan)
        self.worker_of = np.full(n, -1, dtype=np.int64)
        self.remote = np.zeros(n, dtype=bool)
        self.events: list[tuple[float, int, int, int, int]] = []
        self.counter = 0
        self.wake_at = np.inf
        self.done = 0
        self.assign_seconds = 0.0
        self.assign_calls = 0

    # --- events ---------------------------------------------------------------

    def push(self, at: float, kind: int, a: int = 0, b: int = 0) -> None:
        self.counter += 1
        heapq.heappush(self.events, (at, kind, self.counter, a, b))

    def run(self) -> None:
        arrival = self.w.arrival
        for w, spec in enumerate(self.w.workers):
            if spec.crash_at is not None:
                self.push(spec.crash_at, CRASH, w)
        nxt, n = 0, self.w.n_tasks
        while self.done < n:
            at = min(self.events[0][0] if self.events else np.inf, arrival[nxt] if nxt < n else np.inf)
            if at == np.inf:
                raise SimulationStuck(f"{len(self.pending)} tasks pending and no event left")
            while nxt < n and arrival[nxt] <= at:
                self.pending.append(nxt)  # arrivals come in task order
                nxt += 1
            while self.events and self.events[0][0] <= at:
                _, kind, _, a, b = heapq.heappop(self.events)
                self.handle(at, kind, a, b)
            self.claim_round(at)

    def handle(self, now: float, kind: int, a: int, b: int) -> None:
        if kind == COMPLETE:
            task, w = a, b >> 16
            if not self.alive[w] or self.attempt[task] != (b & 0xFFFF):
                return
            self.busy[w] += now - self.in_flight[w].pop(task)
            self.finish[task] = now
            self.worker_of[task] = w
            self.release_slot(w, task)
            self.done += 1
            self.start_tasks(w, now)
        elif kind == CRASH:
            self.crash(a, now)
        elif kind == RELEASE:
            bisect.insort(self.pending, a)
        elif kind == WAKE:
            self.wake_at = np.inf

    def release_slot(self, w: int, task: int) -> None:
        self.running[w] -= 1
        self.held[w] -= 1
        self.load[w] -= self.w.hint[task]

    def crash(self, w: int, now: float) -> None:
        self.alive[w] = False
        lost = list(self.in_flight[w]) + list(self.queued[w])
        for task, started in self.in_flight[w].items():
            self.busy[w] += now - started
        for task in lost:
            self.attempt[task] += 1
            self.push(now + self.w.release_delay, RELEASE, task)
        self.in_flight[w].clear()
        self.queued[w].clear()
        self.load[w] = 0.0
        self.held[w] = self.running[w] = 0

    # --- claims ---------------------------------------------------------------

    def free_slots(self, w: int) -> int:
        if self.late:
            return max(0, int(self.slots[w]) + self.batch - 1 - int(self.held[w]))
        return max(0, int(self.slots[w]) - int(self.held[w]))

    def eligible(self, w: int) -> bool:
        if not self.alive[w]:
            return False
        if not self.late:
            return True
        return self.running[w] < self.slots[w] and not self.queued[w]

    def snapshot(self, now: float, live: np.ndarray, window: list[int]) -> tuple[WorkerTable, TaskWindow]:
        # whole_cluster stays False: ties between equal workers go to the lowest id. Real workers
        # that see the whole cluster follow the task's sequence number instead, so that plans made
        # from windows a few tasks apart agree; here claims are instantaneous and never race.
        workers = WorkerTable(
            ids=[self.ids[w] for w in live],
            capacity=self.slots[live] * self.speed[live],
            load=self.load[live].copy(),
            free_slots=np.array([self.free_slots(int(w)) for w in live], dtype=np.int64),
            speed=self.speed[live],
            position=[self.wpos[w] for w in live],
            held=self.held[live].astype(np.float64),
        )
        idx = np.array(window, dtype=np.int64)
        tasks = TaskWindow(
            ids=[self.task_ids[t] for t in window],
            weight=self.w.hint[idx],
            priority=np.zeros(len(window)),
            position=[self.w.position[t] for t in window],
            age=now - self.w.arrival[idx],
            seq=self.seq[idx],
        )
        return workers, tasks

    def claim_round(self, now: float) -> None:
        idle_left = False
        progress = True
        while progress and self.pending:
            progress, idle_left = False, False
            live = np.flatnonzero(self.alive)
            for me, w in enumerate(live.tolist()):
                if not self.pending:
                    break
                if not self.eligible(w):
                    continue
                window = self.current_window()
                workers, tasks = self.snapshot(now, live, window)
                began = time.process_time()
                plan = self.policy.assign(workers, tasks, me)
                self.assign_seconds += time.process_time() - began
                self.assign_calls += 1
                mine = [window[i] for i in np.flatnonzero(np.asarray(plan) == me).tolist()]
                if self.late:
                    mine = mine[: self.free_slots(w)]
                if not mine:
                    idle_left = idle_left or self.late
                    continue
                progress = True
                self.claim(w, mine, now)
        if idle_left and self.pending and self.wake_at == np.inf:
            self.wake_at = now + self.poll
            self.push(self.wake_at, WAKE)

    def current_window(self) -> list[int]:
        """K pending tasks as snapshot.lua reads them: with `heavy`, up to `heavy` of the heaviest
        pending tasks of those hinted heavier than the default 1 (the pending-by-weight index
        holds only these), the rest of the K from the front of the queue."""
        if self.window is None:
            return self.pending
        if not self.heavy or len(self.pending) <= self.window:
            return self.pending[: self.window]
        pending = np.array(self.pending, dtype=np.int64)
        heavier = pending[self.w.hint[pending] > 1]
        take = min(self.heavy, len(heavier))
        heaviest = heavier[np.argsort(self.heavy_rank[heavier], kind="stable")[:take]].tolist()
        head = self.pending[: self.window - take]
        return head + sorted(set(heaviest).difference(head))

    def claim(self, w: int, mine: list[int], now: float) -> None:
        taken = set(mine)
        cut = len(self.pending) if self.window is None or self.heavy else self.window
        self.pending = [t for t in self.pending[:cut] if t not in taken] + self.pending[cut:]
        for task in mine:
            self.queued[w].append(task)
            self.held[w] += 1
            self.load[w] += self.w.hint[task]
        self.start_tasks(w, now)

    def start_tasks(self, w: int, now: float) -> None:
        while self.running[w] < self.slots[w] and self.queued[w]:
            task = self.queued[w].popleft()
            hops = path_distance(self.wpos[w], self.w.position[task])
            duration = self.w.size[task] / self.speed[w] + self.w.transfer * hops
            self.start[task] = now
            self.remote[task] = hops > 0
            self.in_flight[w][task] = now
            self.running[w] += 1
            self.push(now + duration, COMPLETE, task, (w << 16) | int(self.attempt[task]))


def heaviest_first(hint: np.ndarray, ids: list[str]) -> np.ndarray:
    """Each task's rank in the order snapshot.lua reads the heaviest pending tasks (ZREVRANGE):
    heaviest first, equal weights by id, the greater first. A total order, so the window is the
    same on every CPU (a partial sort leaves ties to the instruction set)."""
    by_id = np.empty(len(ids), dtype=np.int64)
    by_id[sorted(range(len(ids)), key=ids.__getitem__)] = np.arange(len(ids))
    rank = np.empty(len(ids), dtype=np.int64)
    rank[np.lexsort((-by_id, -np.asarray(hint, dtype=np.float64)))] = np.arange(len(ids))
    return rank


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
    """Run `workload` to completion under `policy`; `batch` overrides the workload's k;
    `heavy` of the K window places show the heaviest pending tasks instead of the head."""
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
        assign_seconds=sim.assign_seconds,
        assign_calls=sim.assign_calls,
    )
