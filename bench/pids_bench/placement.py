"""Placement quality: every policy on every simulated workload, several seeds, table and plots.

The simulator (pids_bench.simulator) drives the same policy objects the workers use.
Balance score = 1 - CV (std/mean) of per-worker busy time; makespan / LB with
LB = max(total work / total capacity, largest task / fastest worker, latest
arrival + its run time on the fastest worker).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pids.placement import Placement

from . import placement_real
from .policies import ONLINE, POLICIES, REFERENCES, make_policy
from .simulator import SimResult, simulate
from .workloads import WORKLOADS, Workload, make_workload

METRICS = ["balance", "jain", "max_mean", "makespan_lb", "wait_mean", "wait_p99", "remote", "cpu_us"]
DEFAULT_OUT = Path("bench/results/placement")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workload", action="append", choices=list(WORKLOADS), help="repeatable; default all")
    parser.add_argument("--policy", action="append", choices=list(POLICIES), help="repeatable; default all")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per workload (default 10; 1 with --real)")
    parser.add_argument("--tasks", type=int, default=None, help="tasks per workload (default 1000; 300 with --real)")
    parser.add_argument("--workers", type=int, default=10, help="workers (default 10)")
    parser.add_argument("--window", type=int, default=64, help="pending window K (default 64)")
    parser.add_argument(
        "--heavy",
        type=int,
        default=16,
        help="window places given to the heaviest pending tasks instead of the head (default 16)",
    )
    parser.add_argument("--G", type=float, default=None, help="gravity G (default: the policy's)")
    parser.add_argument("--distance-offset", type=float, default=None, help="gravity eps (default: the policy's)")
    parser.add_argument("--grid-seeds", type=int, default=3, help="seeds per grid-search cell; 0 skips the grid")
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory for results.json, table.md, PNGs")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument(
        "--real",
        action="store_true",
        help="worker processes on a real Redis under each policy, against the simulator on the same "
        "tasks (workloads a and c; writes real.md and real.json)",
    )
    placement_real.add_arguments(parser)


def policy_for(name: str, workload: Workload, seed: int, gravity: dict[str, float]) -> Placement:
    """Each policy with the parameters a workload gives it (delay's D, the EFT oracle's transfer cost)."""
    if name == "gravity":
        return make_policy("gravity", **gravity)
    if name == "delay":
        return make_policy("delay", delay=workload.delay)
    if name == "eft":
        return make_policy("eft", transfer=workload.transfer)
    if name in ("random", "power_of_two"):
        return make_policy(name, seed=seed)
    return make_policy(name)


def run_matrix(
    workloads: list[str],
    policies: list[str],
    seeds: int,
    *,
    tasks: int,
    workers: int,
    window: int,
    gravity: dict[str, float],
    heavy: int = 0,
    progress: Any = None,
) -> Iterator[SimResult]:
    for name in workloads:
        for seed in range(seeds):
            workload = make_workload(name, seed, tasks, workers)
            for policy in policies:
                yield simulate(
                    workload, policy_for(policy, workload, seed, gravity), seed=seed, window=window, heavy=heavy
                )
                if progress is not None:
                    progress()


def aggregate(results: list[SimResult]) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """workload -> policy -> metric -> {mean, std}, plus wait ratios to central pull (pull_fifo)."""
    per: dict[str, dict[str, list[dict[str, float]]]] = {}
    for r in results:
        per.setdefault(r.workload, {}).setdefault(r.policy, []).append(r.metrics())
    table: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for workload, by_policy in per.items():
        table[workload] = {}
        for policy, runs in by_policy.items():
            table[workload][policy] = {
                m: {"mean": float(np.mean([x[m] for x in runs])), "std": float(np.std([x[m] for x in runs]))}
                for m in METRICS
            }
        pull = table[workload].get("pull_fifo")
        for stats in table[workload].values():
            for m in ("wait_mean", "wait_p99"):
                base = pull[m]["mean"] if pull else 0.0
                stats[m + "_vs_pull"] = {"mean": stats[m]["mean"] / base if base > 0 else float("nan"), "std": 0.0}
    return table


def markdown(table: dict[str, Any], descriptions: dict[str, str]) -> str:
    lines: list[str] = []
    for workload, by_policy in table.items():
        lines += [
            f"#### {workload}",
            "",
            descriptions.get(workload, ""),
            "",
            "| policy | balance | Jain | max/mean | makespan/LB | wait mean | wait p99 | "
            "wait vs pull (mean / p99) | remote | CPU µs/task |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for policy, s in by_policy.items():
            ref = " (ref)" if policy in REFERENCES else ""
            lines.append(
                f"| {policy}{ref} | {s['balance']['mean']:.3f} ± {s['balance']['std']:.3f} | {s['jain']['mean']:.3f} "
                f"| {s['max_mean']['mean']:.3f} | {s['makespan_lb']['mean']:.3f} ± {s['makespan_lb']['std']:.3f} "
                f"| {s['wait_mean']['mean']:.1f} | {s['wait_p99']['mean']:.1f} "
                f"| {s['wait_mean_vs_pull']['mean']:.2f} / {s['wait_p99_vs_pull']['mean']:.2f} "
                f"| {s['remote']['mean']:.0%} | {s['cpu_us']['mean']:.0f} |"
            )
        lines.append("")
    return "\n".join(lines)


def headline(table: dict[str, Any]) -> str:
    """One row per workload: gravity against central pull, the best other online rule, and the references."""
    lines = [
        "| workload | gravity balance | gravity makespan/LB | pull_fifo makespan/LB | best other online (makespan/LB) "
        "| LPT / EFT (ref) | gravity wait p99 vs pull |",
        "|---|---|---|---|---|---|---|",
    ]
    for workload, s in table.items():
        if "gravity" not in s:
            continue
        others = {
            p: v["makespan_lb"]["mean"] for p, v in s.items() if p in ONLINE and p not in ("gravity", "pull_fifo")
        }
        best = min(others, key=others.__getitem__) if others else "-"
        ref = " / ".join(f"{s[p]['makespan_lb']['mean']:.3f}" for p in REFERENCES if p in s)
        pull = f"{s['pull_fifo']['makespan_lb']['mean']:.3f}" if "pull_fifo" in s else "-"
        best_text = f"{best} {others[best]:.3f}" if others else "-"
        lines.append(
            f"| {workload} | {s['gravity']['balance']['mean']:.3f} | {s['gravity']['makespan_lb']['mean']:.3f} "
            f"| {pull} | {best_text} | {ref} | {s['gravity']['wait_p99_vs_pull']['mean']:.2f} |"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from . import placement_plots as plots

    if args.real:
        return placement_real.run(args)
    args.seeds = 10 if args.seeds is None else args.seeds
    args.tasks = 1000 if args.tasks is None else args.tasks
    workloads = args.workload or list(WORKLOADS)
    policies = args.policy or list(POLICIES)
    gravity = {k: v for k, v in (("G", args.G), ("distance_offset", args.distance_offset)) if v is not None}
    total = len(workloads) * args.seeds * len(policies)
    results: list[SimResult] = []
    with Progress(transient=True, disable=args.json or not sys.stderr.isatty()) as bar:
        task = bar.add_task("simulating", total=total)
        results = list(
            run_matrix(
                workloads,
                policies,
                args.seeds,
                tasks=args.tasks,
                workers=args.workers,
                window=args.window,
                gravity=gravity,
                heavy=args.heavy,
                progress=lambda: bar.advance(task),
            )
        )
        grid = None
        if args.grid_seeds > 0:
            cells = plots.grid_cells()
            grid_task = bar.add_task("grid search", total=cells * args.grid_seeds)
            grid = plots.grid_search(
                args.grid_seeds,
                tasks=args.tasks,
                workers=args.workers,
                heavy=args.heavy,
                progress=lambda: bar.advance(grid_task),
            )
    table = aggregate(results)
    descriptions = {name: make_workload(name, 0, args.tasks, args.workers).description for name in workloads}
    config = {
        "seeds": args.seeds,
        "tasks": args.tasks,
        "workers": args.workers,
        "window": args.window,
        "heavy": args.heavy,
        "gravity": gravity or "defaults",
        "workloads": workloads,
        "policies": policies,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    document = {"config": config, "descriptions": descriptions, "results": table, "grid": grid}
    (args.out / "results.json").write_text(json.dumps(document, indent=1, allow_nan=True))
    text = "## Headline\n\n" + headline(table) + "\n\n## Per workload\n\n" + markdown(table, descriptions)
    (args.out / "table.md").write_text(text)
    if not args.no_plots:
        plots.write_all(results, table, grid, args.out)
    print(json.dumps(document, indent=1) if args.json else text)
    return 0


def main(argv: list[str], prog: str = "pids bench placement") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))
