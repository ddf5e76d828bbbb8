"""Seeded workloads for the placement simulator: workers (slots, speed, position,
crash time) and a task stream (true sizes, size hints, data positions, arrivals).

Sizes are in seconds at reference speed 1. "Mixed" sizes are the origin's kind
of workload: 60% of size 1, 30% of size 5, 10% of size 40 (coefficient of
variation about 1.9), which reproduces its round-robin and random balance scores.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from pids.errors import ConfigError


@dataclass(frozen=True)
class WorkerSpec:
    id: str
    slots: int = 1
    speed: float = 1.0
    position: str = ""
    crash_at: float | None = None


@dataclass
class Workload:
    name: str
    description: str
    workers: list[WorkerSpec]
    size: np.ndarray  # true run time at speed 1
    hint: np.ndarray  # the weight the placement sees
    arrival: np.ndarray  # non-decreasing
    position: list[str] = field(default_factory=list)  # where each task's data is
    transfer: float = 0.0  # extra seconds per unit of distance when run away from the data
    batch: int = 1  # tasks a worker holds at most, its slot and prefetch (claimed up to this many per round trip)
    delay: float = 5.0  # delay scheduling's wait for a local slot
    release_delay: float = 0.0  # crash -> claims back to pending
    ids: list[str] = field(default_factory=list)  # task ids; default t000000, t000001, ...
    seq: np.ndarray | None = None  # enqueue sequence numbers (round-robin's key); default the task index

    def __post_init__(self) -> None:
        if not self.position:
            self.position = [""] * len(self.size)
        if not self.ids:
            self.ids = [f"t{i:06d}" for i in range(len(self.size))]

    @property
    def n_tasks(self) -> int:
        return len(self.size)

    def in_queue_order(self, order: Sequence[int], ids: Sequence[str], seq: Sequence[int]) -> Workload:
        """The same tasks listed in `order` (e.g. the order a real queue served them), under the
        given ids and enqueue sequence numbers (indexed by the original task index)."""
        idx = np.asarray(order, dtype=np.int64)
        return replace(
            self,
            size=self.size[idx],
            hint=self.hint[idx],
            arrival=self.arrival[idx],
            position=[self.position[i] for i in idx],
            ids=[ids[i] for i in idx],
            seq=np.asarray(seq, dtype=np.int64)[idx],
        )


MIXED_SIZES = np.array([1.0, 5.0, 40.0])
MIXED_PROBS = np.array([0.6, 0.3, 0.1])
MIXED_MEAN = float(MIXED_SIZES @ MIXED_PROBS)


def rng_for(name: str, seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def plain_workers(n: int = 10, speeds: np.ndarray | None = None) -> list[WorkerSpec]:
    speeds = np.ones(n) if speeds is None else speeds
    return [WorkerSpec(id=f"w{i:02d}", speed=float(speeds[i])) for i in range(n)]


def mixed_sizes(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.choice(MIXED_SIZES, size=n, p=MIXED_PROBS)


def noisy(rng: np.random.Generator, size: np.ndarray, error: float) -> np.ndarray:
    """Hints off by a uniform factor in [1 - error, 1 + error]."""
    if error <= 0:
        return size.copy()
    return size * rng.uniform(1.0 - error, 1.0 + error, size=len(size))


def _burst(n: int) -> np.ndarray:
    return np.zeros(n)


def origin(name: str, seed: int, n: int = 1000, workers: int = 10) -> Workload:
    rng = rng_for(name, seed)
    size = mixed_sizes(rng, n)
    return Workload(
        name,
        "1,000 mixed tasks (1/5/40 s) at t=0 on 10 equal workers, exact hints",
        plain_workers(workers),
        size,
        size.copy(),
        _burst(n),
    )


def speeds(name: str, seed: int, n: int = 1000, workers: int = 10) -> Workload:
    rng = rng_for(name, seed)
    size = mixed_sizes(rng, n)
    return Workload(
        name,
        "as (a) on workers of speed 1x..4x (evenly spread), exact hints",
        plain_workers(workers, np.linspace(1.0, 4.0, workers)),
        size,
        size.copy(),
        _burst(n),
    )


def heavy_tail(dist: str, hint_error: float) -> Callable[[str, int], Workload]:
    def build(name: str, seed: int, n: int = 1000, workers: int = 10) -> Workload:
        rng = rng_for(name, seed)
        if dist == "lognormal":
            size = rng.lognormal(0.0, 1.5, size=n)
            what = "lognormal sigma 1.5"
        else:
            size = rng.pareto(1.5, size=n) + 1.0
            what = "Pareto alpha 1.5"
        hints = "exact hints" if hint_error == 0 else f"hints off by up to +-{hint_error:.0%}"
        return Workload(
            name,
            f"1,000 {what} tasks at t=0 on 10 equal workers, {hints}",
            plain_workers(workers),
            size,
            noisy(rng, size, hint_error),
            _burst(n),
        )

    return build


def locality(name: str, seed: int, n: int = 1000, workers: int = 10) -> Workload:
    """Two zones of five nodes; data on a Zipf-skewed node; 2 s per hop away from it."""
    rng = rng_for(name, seed)
    size = mixed_sizes(rng, n)
    nodes = [f"z{i * 2 // workers}/n{i}" for i in range(workers)]
    popularity = 1.0 / np.arange(1, workers + 1)
    home = rng.permutation(workers)[rng.choice(workers, size=n, p=popularity / popularity.sum())]
    spec = [WorkerSpec(id=f"w{i:02d}", position=nodes[i]) for i in range(workers)]
    return Workload(
        name,
        "as (a) with each task's data on one node (Zipf-skewed); 2 s per hop "
        "(same zone 1 hop, other zone 2) to run it elsewhere",
        spec,
        size,
        size.copy(),
        _burst(n),
        position=[nodes[h] for h in home],
        transfer=2.0,
        delay=10.0,
    )


def poisson(name: str, seed: int, n: int = 1000, workers: int = 10) -> Workload:
    rng = rng_for(name, seed)
    size = mixed_sizes(rng, n)
    rate = 0.9 * workers / MIXED_MEAN
    arrival = np.cumsum(rng.exponential(1.0 / rate, size=n))
    return Workload(
        name,
        "mixed tasks arriving as a Poisson stream at 90% utilisation, exact hints",
        plain_workers(workers),
        size,
        size.copy(),
        arrival,
    )


def burst_crash(name: str, seed: int, n: int = 1000, workers: int = 10) -> Workload:
    rng = rng_for(name, seed)
    size = mixed_sizes(rng, n)
    bursts = 5
    period = (n / bursts) * MIXED_MEAN / workers
    arrival = np.repeat(np.arange(bursts) * period, n // bursts).astype(np.float64)
    arrival = np.concatenate([arrival, np.full(n - len(arrival), arrival[-1])])
    spec = plain_workers(workers)
    spec[3] = WorkerSpec(id=spec[3].id, crash_at=2.5 * period)
    return Workload(
        name,
        "5 bursts of 200 mixed tasks, one per drain period; worker w03 crashes "
        "mid-run and its claims go back to pending at once",
        spec,
        size,
        size.copy(),
        arrival,
    )


def batched(k: int) -> Callable[[str, int], Workload]:
    def build(name: str, seed: int, n: int = 1000, workers: int = 10) -> Workload:
        base = origin(name, seed, n, workers)
        base.description = f"as (a), workers with prefetch k-1: each holds up to k={k} tasks (claims up to k at once)"
        base.batch = k
        return base

    return build


WORKLOADS: dict[str, Callable[..., Workload]] = {
    "a-origin": origin,
    "b-speeds": speeds,
    "c-lognormal": heavy_tail("lognormal", 0.0),
    "c-lognormal-noisy": heavy_tail("lognormal", 0.5),
    "c-pareto": heavy_tail("pareto", 0.0),
    "c-pareto-noisy": heavy_tail("pareto", 0.5),
    "d-locality": locality,
    "e-poisson": poisson,
    "f-burst-crash": burst_crash,
    "g-batch-k1": batched(1),
    "g-batch-k8": batched(8),
    "g-batch-k32": batched(32),
}


def make_workload(name: str, seed: int, n: int = 1000, workers: int = 10) -> Workload:
    try:
        build = WORKLOADS[name]
    except KeyError:
        raise ConfigError(f"unknown workload {name!r}; choose one of {', '.join(WORKLOADS)}") from None
    return build(name, seed, n, workers)
