"""The rules gravity is measured against, in the same distributed form as gravity.

Every policy turns one snapshot into one plan that does not depend on who
computes it, so each worker can compute it and claim its own share. Two kinds:

- early binding (``late_binding = False``): every task of the window is bound at
  once and the worker it names queues it locally -- round-robin, random,
  least-loaded, least-work-left, power-of-two-choices, and EFT;
- late binding: tasks only go to free slots -- central pull (FIFO), delay
  scheduling, LPT, and gravity (pids.physics).

Round-robin and random derive their choice from the task's enqueue sequence
number or id and a seed, so all workers agree without shared state. LPT and EFT
are centralised references: they want the whole queue (``whole_queue = True``).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from pids.errors import ConfigError
from pids.physics import distance_matrix
from pids.placement import UNASSIGNED, TaskWindow, WorkerTable


def task_hash(task_id: str, seed: int, salt: int = 0) -> int:
    """A stable 32-bit hash of (seed, salt, task id): every worker gets the same number."""
    return zlib.crc32(f"{seed}:{salt}:{task_id}".encode())


def _sequence(tasks: TaskWindow) -> np.ndarray:
    if tasks.seq is not None:
        return np.asarray(tasks.seq, dtype=np.int64)
    return np.array([task_hash(task_id, 0) for task_id in tasks.ids], dtype=np.int64)


def _finish_time(workers: WorkerTable) -> tuple[np.ndarray, np.ndarray]:
    capacity = np.maximum(np.asarray(workers.capacity, dtype=np.float64), 1e-9)
    return np.asarray(workers.load, dtype=np.float64).copy(), capacity


# --- early binding --------------------------------------------------------------


@dataclass(frozen=True)
class RoundRobin:
    """Task with enqueue number s goes to live worker s mod W."""

    name: str = "round_robin"
    late_binding: bool = False

    def assign(self, workers: WorkerTable, tasks: TaskWindow, me: int = 0) -> np.ndarray:
        if len(workers) == 0:
            return np.full(len(tasks), UNASSIGNED, dtype=np.int64)
        return _sequence(tasks) % len(workers)


@dataclass(frozen=True)
class Random:
    """Uniformly random worker, drawn from a hash of (seed, task id)."""

    seed: int = 0
    name: str = "random"
    late_binding: bool = False

    def assign(self, workers: WorkerTable, tasks: TaskWindow, me: int = 0) -> np.ndarray:
        if len(workers) == 0:
            return np.full(len(tasks), UNASSIGNED, dtype=np.int64)
        return np.array([task_hash(task_id, self.seed) % len(workers) for task_id in tasks.ids], dtype=np.int64)


@dataclass(frozen=True)
class LeastLoaded:
    """Each task, in queue order, to the worker holding the fewest tasks (ties: lowest id)."""

    name: str = "least_loaded"
    late_binding: bool = False

    def assign(self, workers: WorkerTable, tasks: TaskWindow, me: int = 0) -> np.ndarray:
        plan = np.full(len(tasks), UNASSIGNED, dtype=np.int64)
        if len(workers) == 0:
            return plan
        held = workers.held_counts().copy()
        for t in range(len(tasks)):
            w = int(np.argmin(held))
            plan[t] = w
            held[w] += 1
        return plan


@dataclass(frozen=True)
class LeastWorkLeft:
    """Each task, in queue order, to the worker whose backlog drains first (load / capacity)."""

    name: str = "least_work"
    late_binding: bool = False

    def assign(self, workers: WorkerTable, tasks: TaskWindow, me: int = 0) -> np.ndarray:
        plan = np.full(len(tasks), UNASSIGNED, dtype=np.int64)
        if len(workers) == 0:
            return plan
        load, capacity = _finish_time(workers)
        for t, weight in enumerate(np.asarray(tasks.weight, dtype=np.float64).tolist()):
            w = int(np.argmin(load / capacity))
            plan[t] = w
            load[w] += weight
        return plan


@dataclass(frozen=True)
class PowerOfTwo:
    """Two workers drawn from a hash of the task id; the one holding fewer tasks wins."""

    seed: int = 0
    name: str = "power_of_two"
    late_binding: bool = False

    def assign(self, workers: WorkerTable, tasks: TaskWindow, me: int = 0) -> np.ndarray:
        plan = np.full(len(tasks), UNASSIGNED, dtype=np.int64)
        n = len(workers)
        if n == 0:
            return plan
        held = workers.held_counts().copy()
        for t, task_id in enumerate(tasks.ids):
            a = task_hash(task_id, self.seed, 1) % n
            b = task_hash(task_id, self.seed, 2) % n
            w = a if (held[a], a) <= (held[b], b) else b
            plan[t] = w
            held[w] += 1
        return plan


@dataclass(frozen=True)
class EarliestFinish:
    """Centralised reference: heaviest hint first, each to the worker that would finish it first.

    `transfer` is the cost (in weight units) of one unit of distance, known only to an oracle.
    """

    transfer: float = 0.0
    name: str = "eft"
    late_binding: bool = False
    whole_queue: bool = True

    def assign(self, workers: WorkerTable, tasks: TaskWindow, me: int = 0) -> np.ndarray:
        plan = np.full(len(tasks), UNASSIGNED, dtype=np.int64)
        if len(workers) == 0 or len(tasks) == 0:
            return plan
        load, capacity = _finish_time(workers)
        weight = np.asarray(tasks.weight, dtype=np.float64)
        extra = np.zeros((len(tasks), len(workers)))
        if self.transfer > 0 and any(tasks.position):
            extra = self.transfer * distance_matrix(workers.position, tasks.position).T
        for t in np.lexsort((np.arange(len(tasks)), -weight)).tolist():
            w = int(np.argmin((load + weight[t] + extra[t]) / capacity))
            plan[t] = w
            load[w] += weight[t] + extra[t, w]
        return plan


# --- late binding ---------------------------------------------------------------


def _slot_order(workers: WorkerTable) -> list[int]:
    """Free slots, one entry per slot: least-loaded worker (in time) first, round-robin over workers."""
    free = np.maximum(np.asarray(workers.free_slots, dtype=np.int64), 0)
    if free.sum() == 0:
        return []
    load, capacity = _finish_time(workers)
    by_load = [int(w) for w in np.lexsort((np.arange(len(workers)), load / capacity)) if free[w] > 0]
    slots: list[int] = []
    for level in range(int(free.max())):
        slots.extend(w for w in by_load if free[w] > level)
    return slots


@dataclass(frozen=True)
class PullFifo:
    """Late binding from one central FIFO: the head of the queue goes to the next free slot."""

    name: str = "pull_fifo"

    def assign(self, workers: WorkerTable, tasks: TaskWindow, me: int = 0) -> np.ndarray:
        plan = np.full(len(tasks), UNASSIGNED, dtype=np.int64)
        slots = _slot_order(workers)[: len(tasks)]
        plan[: len(slots)] = slots
        return plan


@dataclass(frozen=True)
class DelayScheduling:
    """Locality by waiting: a free slot takes the first local task; a task may run remote
    only after waiting `delay` seconds (Zaharia et al., 2010)."""

    delay: float = 5.0
    name: str = "delay"

    def __post_init__(self) -> None:
        if self.delay < 0:
            raise ConfigError(f"delay must be >= 0, got {self.delay}")

    def assign(self, workers: WorkerTable, tasks: TaskWindow, me: int = 0) -> np.ndarray:
        plan = np.full(len(tasks), UNASSIGNED, dtype=np.int64)
        slots = _slot_order(workers)
        if not slots or len(tasks) == 0:
            return plan
        if not any(tasks.position):
            plan[: min(len(slots), len(tasks))] = slots[: len(tasks)]
            return plan
        local = distance_matrix(workers.position, tasks.position) == 0
        age = np.zeros(len(tasks)) if tasks.age is None else np.asarray(tasks.age, dtype=np.float64)
        may_go_remote = (age >= self.delay) | ~local.any(axis=0)
        for w in slots:
            open_tasks = plan == UNASSIGNED
            choices = np.flatnonzero(open_tasks & local[w])
            if choices.size == 0:
                choices = np.flatnonzero(open_tasks & may_go_remote)
            if choices.size:
                plan[choices[0]] = w
        return plan


@dataclass(frozen=True)
class LongestFirst:
    """Centralised reference (LPT): free slots take the heaviest pending tasks, fastest worker first."""

    name: str = "lpt"
    whole_queue: bool = True

    def assign(self, workers: WorkerTable, tasks: TaskWindow, me: int = 0) -> np.ndarray:
        plan = np.full(len(tasks), UNASSIGNED, dtype=np.int64)
        free = np.maximum(np.asarray(workers.free_slots, dtype=np.int64), 0)
        if free.sum() == 0 or len(tasks) == 0:
            return plan
        speed = np.asarray(workers.speed, dtype=np.float64)
        fastest_first = np.lexsort((np.arange(len(workers)), -speed))
        slots = [int(w) for w in fastest_first for _ in range(int(free[w]))]
        heaviest = np.lexsort((np.arange(len(tasks)), -np.asarray(tasks.weight, dtype=np.float64)))
        n = min(len(slots), len(tasks))
        plan[heaviest[:n]] = slots[:n]
        return plan
