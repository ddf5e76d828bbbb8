"""Every placement rule the benchmarks compare, by name, and which of them a real worker can run.

The table is written out here, not filled by imports: the simulator and the bench worker
build policies from it and pass them explicitly (the simulator as an argument, a worker
through `Worker(settings, policy=...)`).
"""

from __future__ import annotations

from collections.abc import Callable

from pids.errors import ConfigError
from pids.physics import Gravity, worker_policy
from pids.placement import Placement
from pids.settings import WorkerSettings

from .baselines import (
    DelayScheduling,
    EarliestFinish,
    LeastLoaded,
    LeastWorkLeft,
    LongestFirst,
    PowerOfTwo,
    PullFifo,
    Random,
    RoundRobin,
)

POLICIES: dict[str, Callable[..., Placement]] = {
    "round_robin": RoundRobin,
    "random": Random,
    "least_loaded": LeastLoaded,
    "least_work": LeastWorkLeft,
    "power_of_two": PowerOfTwo,
    "pull_fifo": PullFifo,
    "delay": DelayScheduling,
    "gravity": Gravity,
    "lpt": LongestFirst,
    "eft": EarliestFinish,
}
REFERENCES = ["lpt", "eft"]
"""Centralised references: they plan over the whole pending queue, which no worker's window holds."""
ONLINE = [name for name in POLICIES if name not in REFERENCES]
"""The rules a real worker runs from its window: the baselines and gravity."""


def make_policy(name: str, **params: float) -> Placement:
    """The policy called `name`, with its parameters (seed, delay, transfer, G, distance_offset)."""
    try:
        factory = POLICIES[name]
    except KeyError:
        raise ConfigError(f"unknown placement policy {name!r}; choose one of {', '.join(POLICIES)}") from None
    return factory(**params)


def wants_whole_queue(policy: Placement) -> bool:
    """True for the centralised references (LPT, EFT), which must see every pending task, not a window."""
    return bool(getattr(policy, "whole_queue", False))


def online_policy(settings: WorkerSettings) -> Placement:
    """The policy a bench worker runs (`python -m pids_bench.worker --policy NAME`): gravity as
    `pids worker` builds it from the settings, or a baseline with its defaults. A centralised
    reference is refused: on a worker's window it would not be the rule it names."""
    if settings.policy == "gravity":
        return worker_policy(settings)
    if settings.policy in REFERENCES:
        raise ConfigError(
            f"policy {settings.policy!r} plans over the whole pending queue, which no worker sees: "
            f"it runs in the simulator only; a worker runs one of {', '.join(ONLINE)}"
        )
    if settings.policy not in ONLINE:
        raise ConfigError(f"unknown placement policy {settings.policy!r}; a worker runs one of {', '.join(ONLINE)}")
    return make_policy(settings.policy)
