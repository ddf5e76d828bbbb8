"""Gravity: free capacity attracts a task, load repels it, distance weakens the pull.

Free capacity is measured in time, so a fast worker and a slow one compare
fairly: with ``E(w, t) = (L_w + m_t) / C_w`` the time at which w would finish t,
and the water level ``H = (sum L + sum m) / sum C`` (when the snapshot's work
would end if spread perfectly), ``free(w, t) = 1 - E(w, t) / H`` is positive
for a worker below the water line and negative for one above it. The pull is

    F(w, t) = G * m_t * free(w, t) * falloff(d)   if free >= 0
    F(w, t) = G * m_t * free(w, t) / falloff(d)   if free <  0      (+ priority_t)

with ``falloff(d) = (eps / (d + eps)) ** 2``: distance weakens an attraction and
strengthens a repulsion, so a larger distance never pulls harder. With no
positions the rule is weighted least-loaded (earliest finish time).

A plan places the heaviest bodies first -- mass ``G * m_t + age_t + priority_t``,
so G converts a weight into seconds of waiting -- each on the worker that pulls
it hardest, updating the loads as it goes. Workers without free slots still
take part (their share waits for them); only a worker's first `free_slots`
placements are returned, so every worker computes the same plan and claims
only what it can start.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .errors import ConfigError
from .placement import UNASSIGNED, TaskWindow, WorkerTable, register


@lru_cache(maxsize=4096)
def path_distance(worker_position: str, task_position: str) -> int:
    """Tree distance between two "zone/node" paths: levels below their common prefix.

    A task with no position is equally near to everyone (0); a worker with no
    position is as far as possible from a task that has one.
    """
    if not task_position:
        return 0
    task_path = task_position.split("/")
    worker_path = worker_position.split("/") if worker_position else []
    common = 0
    for a, b in zip(worker_path, task_path):
        if a != b:
            break
        common += 1
    return max(len(worker_path), len(task_path)) - common


def distance_matrix(worker_positions: list[str], task_positions: list[str]) -> np.ndarray:
    """(W, K) distances, computed once per distinct pair of positions."""
    worker_codes, worker_index = np.unique(np.asarray(worker_positions, dtype=object), return_inverse=True)
    task_codes, task_index = np.unique(np.asarray(task_positions, dtype=object), return_inverse=True)
    distinct = np.array(
        [[path_distance(w, t) for t in task_codes] for w in worker_codes], dtype=np.float64
    ).reshape(len(worker_codes), len(task_codes))
    return distinct[np.ix_(worker_index.ravel(), task_index.ravel())]


@dataclass(frozen=True)
class Gravity:
    """The gravity policy. `G` weighs a task's size against its age and priority; `distance_offset` is eps."""

    G: float = 1.0
    distance_offset: float = 1.0
    name: str = "gravity"

    def __post_init__(self) -> None:
        if self.G <= 0:
            raise ConfigError(f"G must be > 0, got {self.G}")
        if self.distance_offset <= 0:
            raise ConfigError(f"distance offset must be > 0, got {self.distance_offset}")

    def falloff(self, workers: WorkerTable, tasks: TaskWindow) -> np.ndarray:
        """(W, K) factor (eps / (d + eps))^2, 1 where the task is local or has no position."""
        if not any(tasks.position):
            return np.ones((len(workers), len(tasks)))
        d = distance_matrix(workers.position, tasks.position)
        return (self.distance_offset / (d + self.distance_offset)) ** 2

    def pull_matrix(self, workers: WorkerTable, tasks: TaskWindow) -> np.ndarray:
        """F(w, t) for every live worker and every task of the window, from the current loads."""
        capacity = _positive(workers.capacity)
        load = np.asarray(workers.load, dtype=np.float64)
        weight = np.asarray(tasks.weight, dtype=np.float64)
        level = water_level(load, weight, capacity)
        finish = (load[:, np.newaxis] + weight[np.newaxis, :]) / capacity[:, np.newaxis]
        free = 1.0 - finish / level
        falloff = self.falloff(workers, tasks)
        scaled = np.where(free >= 0, free * falloff, free / falloff)
        return self.G * weight[np.newaxis, :] * scaled + np.asarray(tasks.priority, dtype=np.float64)[np.newaxis, :]

    def mass(self, tasks: TaskWindow) -> np.ndarray:
        """Placement order key: heavier, older and higher-priority tasks settle first."""
        age = np.zeros(len(tasks)) if tasks.age is None else np.asarray(tasks.age, dtype=np.float64)
        return self.G * np.asarray(tasks.weight, dtype=np.float64) + age + np.asarray(tasks.priority, dtype=np.float64)

    def assign(self, workers: WorkerTable, tasks: TaskWindow, me: int = 0) -> np.ndarray:
        n_tasks = len(tasks)
        plan = np.full(n_tasks, UNASSIGNED, dtype=np.int64)
        claimable = np.maximum(np.asarray(workers.free_slots, dtype=np.int64), 0)
        if len(workers) == 0 or n_tasks == 0 or claimable.sum() == 0:
            return plan
        capacity = _positive(workers.capacity)
        weight = np.asarray(tasks.weight, dtype=np.float64)
        falloff = self.falloff(workers, tasks)
        # One column per task: free = 1 - (L + m) / C, scaled by falloff (attraction) or
        # 1/falloff (repulsion). The column scales are fixed; only the loads move.
        load = np.asarray(workers.load, dtype=np.float64).copy()
        level_capacity = water_level(load, weight, capacity) * capacity  # free * level * C = this - L - m
        near = (falloff / capacity[:, np.newaxis]).T.copy()  # (K, W)
        far = (1.0 / (falloff * capacity[:, np.newaxis])).T.copy()
        order = np.lexsort((np.arange(n_tasks), -self.mass(tasks)))  # heaviest first, then queue order
        open_workers = int(np.count_nonzero(claimable))
        for t in order.tolist():
            room = level_capacity - load - weight[t]  # same sign as free
            pull = np.where(room >= 0, room * near[t], room * far[t])
            w = int(np.argmax(pull))  # first maximum: ties go to the lowest worker index
            load[w] += weight[t]
            if claimable[w] > 0:
                plan[t] = w
                claimable[w] -= 1
                if claimable[w] == 0:
                    open_workers -= 1
                    if open_workers == 0:
                        break
        return plan


def water_level(load: np.ndarray, weight: np.ndarray, capacity: np.ndarray) -> float:
    """Time at which the snapshot's work (held plus window) would end if spread perfectly."""
    return max(float((load.sum() + weight.sum()) / capacity.sum()), 1e-9)


def _positive(capacity: np.ndarray) -> np.ndarray:
    return np.maximum(np.asarray(capacity, dtype=np.float64), 1e-9)


@register("gravity")
def make_gravity(G: float = 1.0, distance_offset: float = 1.0) -> Gravity:
    return Gravity(G=G, distance_offset=distance_offset)
