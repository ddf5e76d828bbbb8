"""How evenly work was spread, and how close a schedule came to the best possible.

balance score = max(0, 1 - std/mean) of per-worker work (1 - coefficient of
variation); Jain's index = (sum x)^2 / (n * sum x^2); max/mean; and makespan
over the lower bound max(total work / total capacity, largest task / fastest worker).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def balance_score(per_worker_work: npt.ArrayLike) -> float:
    x = np.asarray(per_worker_work, dtype=np.float64)
    if x.size == 0 or x.mean() <= 0:
        return 0.0
    return float(max(0.0, 1.0 - x.std() / x.mean()))


def jain_index(per_worker_work: npt.ArrayLike) -> float:
    x = np.asarray(per_worker_work, dtype=np.float64)
    squares = float((x**2).sum())
    if x.size == 0 or squares == 0:
        return 0.0
    return float(x.sum() ** 2 / (x.size * squares))


def max_over_mean(per_worker_work: npt.ArrayLike) -> float:
    x = np.asarray(per_worker_work, dtype=np.float64)
    if x.size == 0 or x.mean() <= 0:
        return 0.0
    return float(x.max() / x.mean())


def makespan_lower_bound(
    task_sizes: npt.ArrayLike,
    worker_speeds: npt.ArrayLike,
    slots: npt.ArrayLike | None = None,
    arrivals: npt.ArrayLike | None = None,
) -> float:
    """max(total work / total capacity, largest task / fastest worker); with arrival
    times also no task can end before it arrives plus its run time on the fastest worker."""
    sizes = np.asarray(task_sizes, dtype=np.float64)
    speeds = np.asarray(worker_speeds, dtype=np.float64)
    capacity = speeds if slots is None else speeds * np.asarray(slots, dtype=np.float64)
    if sizes.size == 0:
        return 0.0
    bound = max(sizes.sum() / capacity.sum(), sizes.max() / speeds.max())
    if arrivals is not None:
        bound = max(bound, float((np.asarray(arrivals, dtype=np.float64) + sizes / speeds.max()).max()))
    return float(bound)


def percentile(values: npt.ArrayLike, q: float) -> float:
    """The q-th percentile (0..100), 0 for no values."""
    x = np.asarray(values, dtype=np.float64)
    return float(np.percentile(x, q)) if x.size else 0.0
