"""Gravity: free capacity attracts a task, load repels it, distance weakens the pull.

    F(w, t) = G * m_t * (C_w - L_w) / (d(x_w, x_t) + eps) ** 2  +  priority_t

computed for a whole window at once as a W x K matrix, then assigned greedily,
strongest pull first, updating the simulated loads as tasks are placed.
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
    """The gravity policy. `G` weighs load against priority; `distance_offset` is eps."""

    G: float = 1.0
    distance_offset: float = 1.0
    name: str = "gravity"

    def __post_init__(self) -> None:
        if self.G <= 0:
            raise ConfigError(f"G must be > 0, got {self.G}")
        if self.distance_offset <= 0:
            raise ConfigError(f"distance offset must be > 0, got {self.distance_offset}")

    def falloff(self, workers: WorkerTable, tasks: TaskWindow) -> np.ndarray:
        """(W, K) factor 1 / (d + eps)^2; all ones-times-constant when nothing has a position."""
        if not any(tasks.position):
            return np.full((len(workers), len(tasks)), 1.0 / self.distance_offset**2)
        d = distance_matrix(workers.position, tasks.position)
        return 1.0 / (d + self.distance_offset) ** 2

    def pull_matrix(self, workers: WorkerTable, tasks: TaskWindow) -> np.ndarray:
        """F(w, t) for every live worker and every task of the window."""
        free_capacity = workers.capacity - workers.load
        force = self.G * np.outer(free_capacity, tasks.weight) * self.falloff(workers, tasks)
        return force + tasks.priority[np.newaxis, :]

    def assign(self, workers: WorkerTable, tasks: TaskWindow, me: int = 0) -> np.ndarray:
        plan = np.full(len(tasks), UNASSIGNED, dtype=np.int64)
        if len(workers) == 0 or len(tasks) == 0:
            return plan
        falloff = self.falloff(workers, tasks)
        weight_row = self.G * tasks.weight[np.newaxis, :]
        priority_row = tasks.priority[np.newaxis, :]
        load = workers.load.astype(np.float64).copy()
        free_slots = workers.free_slots.astype(np.int64).copy()
        force = weight_row * (workers.capacity - load)[:, np.newaxis] * falloff + priority_row
        force[free_slots <= 0, :] = -np.inf
        for _ in range(min(len(tasks), int(free_slots.sum()))):
            flat = int(np.argmax(force))  # first maximum: lowest worker index, then earliest task
            w, t = divmod(flat, len(tasks))
            if force[w, t] == -np.inf:
                break
            plan[t] = w
            load[w] += tasks.weight[t]
            free_slots[w] -= 1
            force[:, t] = -np.inf
            if free_slots[w] <= 0:
                force[w, :] = -np.inf
            else:
                open_tasks = plan == UNASSIGNED
                force[w, open_tasks] = (
                    weight_row[0, open_tasks] * (workers.capacity[w] - load[w]) * falloff[w, open_tasks]
                    + priority_row[0, open_tasks]
                )
        return plan


@register("gravity")
def make_gravity(G: float = 1.0, distance_offset: float = 1.0) -> Gravity:
    return Gravity(G=G, distance_offset=distance_offset)
