"""The placement contract shared by real workers and the simulator.

A policy sees one snapshot -- the live workers and a window of pending tasks --
and returns, for every task in the window, the index of the worker that should
take it (or -1 to leave it pending). Every worker computes the same plan from
the same snapshot and claims only its own share, so plans rarely conflict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from .errors import ConfigError

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

    def __post_init__(self) -> None:
        if not self.position:
            self.position = [""] * len(self.ids)

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class TaskWindow:
    """The first K pending tasks, in queue order (priority, then age)."""

    ids: list[str]
    weight: np.ndarray  # (K,) expected cost (size hint), default 1
    priority: np.ndarray  # (K,) higher runs first
    position: list[str] = field(default_factory=list)  # where the task's data is, "" = anywhere

    def __post_init__(self) -> None:
        if not self.position:
            self.position = [""] * len(self.ids)

    def __len__(self) -> int:
        return len(self.ids)


class Placement(Protocol):
    """A placement policy: one plan per snapshot, computed by the worker `me` (an index)."""

    name: str

    def assign(self, workers: WorkerTable, tasks: TaskWindow, me: int) -> np.ndarray:
        """Return an int array of len(tasks): worker index per task, or UNASSIGNED."""
        ...


PolicyFactory = Callable[..., Placement]
_REGISTRY: dict[str, PolicyFactory] = {}


def register(name: str) -> Callable[[PolicyFactory], PolicyFactory]:
    """Class decorator adding a policy to the registry under `name`."""

    def add(factory: PolicyFactory) -> PolicyFactory:
        _REGISTRY[name] = factory
        return factory

    return add


def policy_names() -> list[str]:
    _load_builtin_policies()
    return sorted(_REGISTRY)


def make_policy(name: str, **params: float) -> Placement:
    """Build a registered policy by name; unknown names raise ConfigError."""
    _load_builtin_policies()
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown placement policy {name!r}; choose one of {', '.join(sorted(_REGISTRY))}") from None
    return factory(**params)


def _load_builtin_policies() -> None:
    from . import physics  # noqa: F401  (registers "gravity")

    try:
        from . import baselines  # noqa: F401  (registers the baselines)
    except ImportError:
        pass
