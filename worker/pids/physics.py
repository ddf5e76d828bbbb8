"""Gravity: free capacity attracts a task, load repels it, distance weakens the pull.

Load is measured in time, so fast and slow workers compare fairly. With
``E(w, t) = (L_w + m_t) / C_w`` the time at which worker w would finish task t,
and the water level ``H = (sum L + sum m) / sum C`` (when the snapshot's work
would end if it were spread perfectly), the pull is

    F(w, t) = G * m_t * (falloff(d) - E(w, t) / H)  +  priority_t
    falloff(d) = (eps / (d + eps)) ** 2            (1 next to the data)

Next to the data, F is G * m * (1 - E/H): positive below the water line (free
capacity attracts), negative above it (load repels). Distance subtracts up to
one water level, so a remote worker wins only when the local one is backlogged
by more than (1 - falloff) * H. With no positions the rule is weighted
least-loaded (earliest finish time); eps sets the locality trade-off.

A plan places the heaviest bodies first -- mass ``G * m_t + age_t + priority_t``,
so G converts a weight into seconds of waiting -- each on the worker pulling it
hardest, updating the loads as it goes. Workers without free slots take part
too (their share waits for them), but only a worker's first `free_slots`
placements -- its nearest ones when tasks have positions -- are returned, so
every worker computes the same plan and claims only what it can start.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from functools import lru_cache
from operator import sub

import numpy as np

from .errors import ConfigError
from .placement import UNASSIGNED, WORKER_POLICIES, TaskWindow, WorkerTable
from .settings import WorkerSettings


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
    """(W, K) distances, computed once per distinct set of positions."""
    worker_codes = sorted(set(worker_positions))
    task_codes = sorted(set(task_positions))
    worker_index = dict(zip(worker_codes, range(len(worker_codes))))
    task_index = dict(zip(task_codes, range(len(task_codes))))
    distinct = _distinct_distances(tuple(worker_codes), tuple(task_codes))
    return distinct[np.ix_([worker_index[p] for p in worker_positions], [task_index[p] for p in task_positions])]


@lru_cache(maxsize=256)
def _distinct_distances(worker_codes: tuple[str, ...], task_codes: tuple[str, ...]) -> np.ndarray:
    distances = np.array([[path_distance(w, t) for t in task_codes] for w in worker_codes], dtype=np.float64)
    distances = distances.reshape(len(worker_codes), len(task_codes))
    distances.flags.writeable = False
    return distances


@dataclass(frozen=True)
class Gravity:
    """The gravity policy. `G` weighs a task's size against its age and priority; `distance_offset` is eps."""

    G: float = 0.03  # a 40 s task counts as 1.2 s of waiting: near-FIFO online, LPT within a burst
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
        closeness_minus_load = self.falloff(workers, tasks) - finish / level
        pull: np.ndarray = self.G * weight[np.newaxis, :] * closeness_minus_load
        return pull + np.asarray(tasks.priority, dtype=np.float64)[np.newaxis, :]

    def mass(self, tasks: TaskWindow) -> np.ndarray:
        """Placement order key: heavier, older and higher-priority tasks settle first."""
        age = np.zeros(len(tasks)) if tasks.age is None else np.asarray(tasks.age, dtype=np.float64)
        return self.G * np.asarray(tasks.weight, dtype=np.float64) + age + np.asarray(tasks.priority, dtype=np.float64)

    def claim_order(self, workers: WorkerTable, tasks: TaskWindow, me: int, share: np.ndarray) -> np.ndarray:
        """Worker `me`'s share in the order it placed them: heaviest (by mass) first, then queue
        order; with positions, the nearest first, as `assign` gives a worker its free slots."""
        if len(share) < 2:
            return share
        mass = self.mass(tasks)[share]
        if any(tasks.position[i] for i in share.tolist()):
            nearness = self.falloff(workers, tasks)[me, share]
            return share[np.lexsort((share, -mass, -nearness))]
        return share[np.lexsort((share, -mass))]

    def assign(self, workers: WorkerTable, tasks: TaskWindow, me: int = 0) -> np.ndarray:
        n_tasks = len(tasks)
        plan = np.full(n_tasks, UNASSIGNED, dtype=np.int64)
        claimable = np.maximum(np.asarray(workers.free_slots, dtype=np.int64), 0)
        if len(workers) == 0 or n_tasks == 0 or claimable.sum() == 0:
            return plan
        capacity = _positive(workers.capacity)
        weight = np.asarray(tasks.weight, dtype=np.float64)
        load = np.asarray(workers.load, dtype=np.float64)
        # F / (G m) = falloff - (L + m) / (C H): a fixed part per (task, worker) and a load part.
        scale = 1.0 / (capacity * water_level(load, weight, capacity))
        order = np.lexsort((np.arange(n_tasks), -self.mass(tasks)))  # heaviest first, then queue order
        tie_starts = _tie_starts(tasks, len(workers)) if workers.whole_cluster else None
        located = any(tasks.position)
        if not located and bool((weight == weight[0]).all()):
            plan[:] = _place_equal_weights(
                order.tolist(), load.tolist(), scale.tolist(), float(weight[0]), claimable.tolist(), tie_starts
            )
            return plan
        falloff = self.falloff(workers, tasks)
        fixed = (falloff - weight[np.newaxis, :] * scale[:, np.newaxis]).T.copy()  # (K, W)
        planned, owner = _place_by_pull(
            order.tolist(),
            fixed.tolist(),
            load.tolist(),
            scale.tolist(),
            weight.tolist(),
            claimable.tolist(),
            tie_starts,
            falloff.tolist() if located else None,
        )
        plan[:] = planned
        if located:
            # Each worker starts with the nearest tasks of its share: local work before remote work.
            owners = np.array(owner)
            rank = np.empty(n_tasks, dtype=np.int64)
            rank[order] = np.arange(n_tasks)
            for w in np.flatnonzero(claimable).tolist():
                share = np.flatnonzero(owners == w)
                nearest = share[np.lexsort((rank[share], -falloff[w, share]))]
                plan[nearest[: claimable[w]]] = w
        return plan


def _place_by_pull(
    order: list[int],
    fixed_rows: list[list[float]],
    load: list[float],
    scale: list[float],
    weight: list[float],
    open_slots: list[int],
    tie_starts: list[int] | None,
    falloff_rows: list[list[float]] | None,
) -> tuple[list[int], list[int]]:
    """`Gravity.assign`'s placement loop: each task in `order` to the worker pulling it hardest,
    the pulls being the fixed part of task t's row minus each worker's load part, kept up to date.
    Returns (the plan's claimable placements, every task's owner). Without positions
    (`falloff_rows` None) it stops once every claimer's open slots are filled; with them, once
    every claimer has enough local work (later tasks cannot displace it)."""
    # one task at a time over a view of at most a few dozen workers: Python floats and lists
    # beat a numpy call (or a numpy scalar read or write) per task
    repel = [held * s for held, s in zip(load, scale)]
    local_needed = list(open_slots)  # with positions: local tasks a claimer still lacks
    open_workers = sum(1 for c in open_slots if c > 0)
    owner = [UNASSIGNED] * len(order)
    planned = [UNASSIGNED] * len(order)
    for t in order:
        pull = list(map(sub, fixed_rows[t], repel))
        strongest = max(pull)
        w = pull.index(strongest)
        if tie_starts is not None and w < tie_starts[t]:
            w = _first_tied_from(pull, strongest, tie_starts[t], w)
        load[w] += weight[t]
        repel[w] = load[w] * scale[w]
        owner[t] = w
        if falloff_rows is not None:
            if local_needed[w] > 0 and falloff_rows[w][t] >= 1.0:
                local_needed[w] -= 1
                if local_needed[w] == 0:
                    open_workers -= 1
                    if open_workers == 0:
                        break
        elif open_slots[w] > 0:
            planned[t] = w
            open_slots[w] -= 1
            if open_slots[w] == 0:
                open_workers -= 1
                if open_workers == 0:
                    break
    return planned, owner


def _place_equal_weights(
    order: list[int],
    load: list[float],
    scale: list[float],
    weight: float,
    open_slots: list[int],
    tie_starts: list[int] | None,
) -> list[int]:
    """`Gravity.assign` for a window of equally heavy tasks without positions, the common case.

    A worker's pull is then the same for every task, G m (1 - (L + m) / (C H)), and changes only
    when it is given a task. So instead of every worker's pull per task this keeps the workers
    whose pull is the strongest (in index order) and gives each task to the first of them at or
    after its tie-break start, with the same float operations as the general loop: both plan alike.
    """
    fixed = [1.0 - weight * s for s in scale]
    pull = [f - held * s for f, held, s in zip(fixed, load, scale)]
    strongest = max(pull)
    tied = [w for w, p in enumerate(pull) if p == strongest]
    open_workers = sum(1 for c in open_slots if c > 0)
    planned = [UNASSIGNED] * len(order)
    for t in order:
        i = 0 if tie_starts is None else bisect_left(tied, tie_starts[t])
        if i == len(tied):
            i = 0
        w = tied[i]
        load[w] += weight
        pull[w] = fixed[w] - load[w] * scale[w]
        if pull[w] != strongest:  # weaker now: the others keep the strongest pull
            del tied[i]
            if not tied:
                strongest = max(pull)
                tied = [v for v, p in enumerate(pull) if p == strongest]
        if open_slots[w] > 0:
            planned[t] = w
            open_slots[w] -= 1
            if open_slots[w] == 0:
                open_workers -= 1
                if open_workers == 0:
                    break
    return planned


def _tie_starts(tasks: TaskWindow, n_workers: int) -> list[int] | None:
    """Where each task's tie-break starts among the workers: its enqueue sequence number modulo
    the number of workers. Equal workers then take equal tasks in turn by sequence number, not by
    position in the window, so two workers planning from windows that start a task apart still
    agree on who takes what (ties going to the lowest index made their shares coincide half the
    time). Only when the table holds the whole cluster: planners with partial views count and
    index workers differently, and at W = 1,000 their disagreeing plans chained wake-ups until
    the scale sweep timed out. None without sequence numbers: ties go to the lowest index."""
    if tasks.seq is None or n_workers < 2:
        return None
    starts: list[int] = (np.asarray(tasks.seq, dtype=np.int64) % n_workers).tolist()
    return starts


def _first_tied_from(pull: list[float], strongest: float, start: int, first: int) -> int:
    """The first worker at or after `start`, cyclically, whose pull equals the strongest;
    `first` is the first one from 0, which is the answer when none comes at or after `start`."""
    for w in range(start, len(pull)):
        if pull[w] == strongest:
            return w
    return first


def water_level(load: np.ndarray, weight: np.ndarray, capacity: np.ndarray) -> float:
    """Time at which the snapshot's work (held plus window) would end if spread perfectly."""
    return max(float((load.sum() + weight.sum()) / capacity.sum()), 1e-9)


def _positive(capacity: np.ndarray) -> np.ndarray:
    return np.maximum(np.asarray(capacity, dtype=np.float64), 1e-9)


def worker_policy(settings: WorkerSettings) -> Gravity:
    """The policy `pids worker` runs: gravity with the settings' G and distance offset. Other rules
    are refused: the baselines live in the pids-bench package, and the centralised references
    (LPT, EFT) need the whole queue, which no worker's window holds."""
    if settings.policy not in WORKER_POLICIES:
        raise ConfigError(
            f"placement policy {settings.policy!r} is not one a worker runs; choose one of: "
            f"{', '.join(WORKER_POLICIES)} (the baselines run from the pids-bench package: "
            "python -m pids_bench.worker --policy NAME)"
        )
    return Gravity(G=settings.G, distance_offset=settings.distance_offset)
