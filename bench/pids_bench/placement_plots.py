"""Plots for `pids bench placement`, and the grid search that justifies gravity's defaults."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pids.physics import Gravity

from .policies import make_policy
from .simulator import SimResult, simulate
from .workloads import make_workload

GRID_G = [0.01, 0.03, 0.1, 0.3, 1.0]
GRID_EPS = [0.5, 1.0, 2.0, 4.0, 8.0]
GRID_WINDOW = [16, 32, 64]  # a worker of 10 one-slot workers reads at most 64 (pids.cycle.claim_window)


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def grid_cells() -> int:
    """Simulations per seed in the grid search (for progress bars)."""
    return len(GRID_WINDOW) * (1 + len(GRID_G) + len(GRID_EPS)) + 2 * len(HEAVY_WINDOWS)


HEAVY_WINDOWS = [16, 32, 64]


def grid_search(seeds: int, *, tasks: int, workers: int, heavy: int, progress: Callable[[], None]) -> dict[str, Any]:
    """G x window scored on online waits (e-poisson, p99 wait / central pull's), distance
    offset x window on locality (d-locality, makespan / LB), and window with and without
    the heaviest-tasks part on heavy tails with exact hints (c-lognormal, makespan / LB)."""
    poisson = [make_workload("e-poisson", s, tasks, workers) for s in range(seeds)]
    local = [make_workload("d-locality", s, tasks, workers) for s in range(seeds)]
    heavy_tail = [make_workload("c-lognormal", s, tasks, workers) for s in range(seeds)]

    def mean_of(metric: str, runs: list[Any], policy: Any, window: int, part: int) -> float:
        values = []
        for w in runs:
            values.append(simulate(w, policy, window=window, heavy=min(part, window // 4)).metrics()[metric])
            progress()
        return _mean(values)

    pull = {k: mean_of("wait_p99", poisson, make_policy("pull_fifo"), k, heavy) for k in GRID_WINDOW}
    wait = np.array(
        [[mean_of("wait_p99", poisson, Gravity(G=g), k, heavy) / pull[k] for k in GRID_WINDOW] for g in GRID_G]
    )
    span = np.array(
        [[mean_of("makespan_lb", local, Gravity(distance_offset=e), k, heavy) for k in GRID_WINDOW] for e in GRID_EPS]
    )
    head_only = [mean_of("makespan_lb", heavy_tail, Gravity(), k, 0) for k in HEAVY_WINDOWS]
    with_heavy = [mean_of("makespan_lb", heavy_tail, Gravity(), k, heavy) for k in HEAVY_WINDOWS]
    return {
        "seeds": seeds,
        "heavy": heavy,
        "G": GRID_G,
        "distance_offset": GRID_EPS,
        "window": GRID_WINDOW,
        "poisson_p99_vs_pull": wait.tolist(),
        "locality_makespan_lb": span.tolist(),
        "heavy_windows": HEAVY_WINDOWS,
        "heavy_makespan_lb_head_only": head_only,
        "heavy_makespan_lb_with_heavy": with_heavy,
    }


def write_all(results: list[SimResult], table: dict[str, Any], grid: dict[str, Any] | None, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    written = [work_bars(results, out), wait_cdf(results, out), makespan_bars(table, out)]
    if grid is not None:
        written.append(grid_heatmap(grid, out))
    return written


def work_bars(results: list[SimResult], out: Path) -> Path:
    import matplotlib.pyplot as plt

    workload = "a-origin" if any(r.workload == "a-origin" for r in results) else results[0].workload
    runs = [r for r in results if r.workload == workload and r.seed == 0]
    cols = 5
    rows = (len(runs) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), sharey=True, squeeze=False)
    for ax, r in zip(axes.flat, runs):
        ax.bar(range(len(r.busy)), r.busy, color=["tab:blue" if ok else "tab:gray" for ok in r.survived])
        ax.set_title(f"{r.policy}  balance {r.metrics()['balance']:.2f}", fontsize=9)
        ax.set_xlabel("worker", fontsize=8)
    for ax in list(axes.flat)[len(runs) :]:
        ax.axis("off")
    axes[0][0].set_ylabel("busy time (s)")
    fig.suptitle(f"Per-worker busy time, {workload}, seed 0")
    fig.tight_layout()
    path = out / "work_bars.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def wait_cdf(results: list[SimResult], out: Path) -> Path:
    import matplotlib.pyplot as plt

    workload = "e-poisson" if any(r.workload == "e-poisson" for r in results) else results[0].workload
    fig, ax = plt.subplots(figsize=(7, 4.5))
    by_policy: dict[str, list[np.ndarray]] = {}
    for r in results:
        if r.workload == workload:
            by_policy.setdefault(r.policy, []).append(r.wait)
    for policy, waits in by_policy.items():
        x = np.sort(np.concatenate(waits))
        ax.plot(x, np.arange(1, len(x) + 1) / len(x), label=policy, lw=2.2 if policy == "gravity" else 1.2)
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlabel("queue wait (s)")
    ax.set_ylabel("fraction of tasks")
    ax.set_title(f"Wait-time CDF, {workload}, all seeds")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / "wait_cdf.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def makespan_bars(table: dict[str, Any], out: Path) -> Path:
    import matplotlib.pyplot as plt

    workloads = list(table)
    policies = list(dict.fromkeys(p for w in workloads for p in table[w]))
    fig, ax = plt.subplots(figsize=(max(8, 1.3 * len(workloads)), 4.8))
    width = 0.8 / len(policies)
    for i, policy in enumerate(policies):
        means = [table[w][policy]["makespan_lb"]["mean"] if policy in table[w] else np.nan for w in workloads]
        ax.bar(
            np.arange(len(workloads)) + i * width,
            means,
            width,
            label=policy,
            edgecolor="black" if policy == "gravity" else None,
        )
    ax.axhline(1.0, color="black", lw=0.8)
    ax.set_xticks(np.arange(len(workloads)) + 0.4 - width / 2, workloads, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("makespan / lower bound")
    ax.set_ylim(0.9, None)
    ax.legend(fontsize=7, ncol=5)
    ax.set_title("Makespan over lower bound, mean over seeds")
    fig.tight_layout()
    path = out / "makespan_lb.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _heat(ax: Any, values: np.ndarray, rows: list[float], cols: list[int], title: str, ylabel: str) -> None:
    im = ax.imshow(values, cmap="viridis_r", aspect="auto")
    ax.set_xticks(range(len(cols)), [str(c) for c in cols])
    ax.set_yticks(range(len(rows)), [str(r) for r in rows])
    ax.set_xlabel("window K")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", color="white", fontsize=8)
    ax.figure.colorbar(im, ax=ax, shrink=0.8)


def grid_heatmap(grid: dict[str, Any], out: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    _heat(
        axes[0],
        np.array(grid["poisson_p99_vs_pull"]),
        grid["G"],
        grid["window"],
        "e-poisson: p99 wait / central pull's",
        "G",
    )
    _heat(
        axes[1],
        np.array(grid["locality_makespan_lb"]),
        grid["distance_offset"],
        grid["window"],
        "d-locality: makespan / LB",
        "distance offset (eps)",
    )
    axes[2].plot(grid["heavy_windows"], grid["heavy_makespan_lb_head_only"], marker="o", label="first K pending")
    axes[2].plot(
        grid["heavy_windows"],
        grid["heavy_makespan_lb_with_heavy"],
        marker="s",
        label=f"first K - {grid['heavy']} + {grid['heavy']} heaviest (K/4 at most)",
    )
    axes[2].legend(fontsize=8)
    axes[2].set_xscale("log", base=2)
    axes[2].set_xlabel("window K")
    axes[2].set_ylabel("makespan / LB")
    axes[2].set_title("c-lognormal (exact hints): gravity vs window", fontsize=9)
    fig.suptitle(f"Gravity grid search ({grid['seeds']} seeds per cell; heaviest part {grid['heavy']})")
    fig.tight_layout()
    path = out / "grid_heatmap.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
