"""The placement contract shared by real workers and the simulator (pids_bench).

A policy sees one snapshot -- the live workers and a window of pending tasks --
and returns, for every task in the window, the index of the worker that should
take it (or -1 to leave it pending). Every worker computes the same plan from
the same snapshot and claims only its own share, so plans rarely conflict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

UNASSIGNED = -1


@dataclass
class WorkerTable:
    """Live workers, sorted by id so ties break the same way everywhere."""

    ids: list[str]
    capacity: np.ndarray  # (W,) slots x speed, in weight units
    load: np.ndarray  # (W,) sum of weights of the tasks each worker holds
    free_slots: np.ndarray  # (W,) tasks each worker may still take now (0 when draining)
    speed: np.ndarray  # (W,) relative speed, 1.0 = reference
    position: list[str] = field(default_factory=list)  # "zone/node" paths, "" = unknown
    held: np.ndarray | None = None  # (W,) tasks each worker holds (running + prefetched); None = unknown
    whole_cluster: bool = False
    """Every live worker is in the table, so every worker planning sees the same one (a
    partial view, e.g. the top-V workers plus the planner, differs from planner to planner)."""

    def __post_init__(self) -> None:
        if not self.position:
            self.position = [""] * len(self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    def held_counts(self) -> np.ndarray:
        """Tasks held per worker; when not reported, estimated from load (unit weights)."""
        if self.held is not None:
            return np.asarray(self.held, dtype=np.float64)
        return np.asarray(self.load, dtype=np.float64)


@dataclass
class TaskWindow:
    """The first K pending tasks, in queue order (priority, then age)."""

    ids: list[str]
    weight: np.ndarray  # (K,) expected cost (size hint), default 1
    priority: np.ndarray  # (K,) higher runs first
    position: list[str] = field(default_factory=list)  # where the task's data is, "" = anywhere
    age: np.ndarray | None = None  # (K,) seconds since enqueue; None = unknown (treated as 0)
    seq: np.ndarray | None = None  # (K,) enqueue sequence numbers; None = unknown

    def __post_init__(self) -> None:
        if not self.position:
            self.position = [""] * len(self.ids)

    def __len__(self) -> int:
        return len(self.ids)


class Placement(Protocol):
    """A placement policy: one plan per snapshot, computed by the worker `me` (an index)."""

    @property
    def name(self) -> str:
        """What results and logs call it (a frozen dataclass field satisfies this)."""
        ...

    def assign(self, workers: WorkerTable, tasks: TaskWindow, me: int) -> np.ndarray:
        """Return an int array of len(tasks): worker index per task, or UNASSIGNED."""
        ...


def binds_late(policy: Placement) -> bool:
    """True (the default) when the policy only fills free slots: the worker claims its share
    up to free_slots. False for early-binding (push) policies such as round-robin, whose
    every task is bound at once and queued locally by the worker it names."""
    return bool(getattr(policy, "late_binding", True))


def claim_order(policy: Placement, workers: WorkerTable, tasks: TaskWindow, me: int, share: np.ndarray) -> np.ndarray:
    """The window indices of worker `me`'s share in the order it should claim them: the policy's
    own order where it has one (gravity: the order it placed them in), else queue order. A worker
    claims its share a few tasks at a time, so this order is what it actually runs first."""
    order = getattr(policy, "claim_order", None)
    return share if order is None else np.asarray(order(workers, tasks, me, share))


WORKER_POLICIES = ("gravity",)
"""The policies a worker runs faithfully from its window of pending tasks (physics.worker_policy)."""


def policy_names() -> list[str]:
    return list(WORKER_POLICIES)
