"""Placement quality on the real system, against the simulator on the same task set.

`pids bench placement --real`: one embedded redis-server; per policy, N `python -m
pids_bench.worker --policy P` processes (1 slot each) on a fresh cluster; per workload, the simulator's
task set (same generator, seed and size) submitted as one batch of `pids.tasks:sleep`
tasks that sleep their true size x `--unit` seconds, with the size hint as weight.
Per-worker busy time comes from the workers' own totals (cluster_stats), makespan
from the task records (last finished_at - first enqueued_at), LB from the true sizes.

The simulator then runs the same policy object (built as the worker builds it, with
the worker's window and heaviest settings, in the worker's own claim cycle) on the same
tasks, under the real task ids and enqueue sequence numbers (which order its queue, as
they order the real one), so random, power-of-two and round-robin make the same choices
in both.

Only workloads the real data plane can reproduce with plain sleeping tasks are offered:
tasks at t = 0 on equal workers with no data positions. The centralised references
(lpt, eft) want the whole queue; they are shown from the simulator only.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import redis

from pids.client import Client
from pids.cluster_state import INFO_FIELDS
from pids.cycle import CycleConfig, claim_window
from pids.demo import start_workers, stop_workers, wait_for_workers
from pids.embedded import EmbeddedRedis
from pids.errors import ConfigError
from pids.scoring import balance_score, jain_index, makespan_lower_bound, max_over_mean
from pids.settings import HEAVIEST, WorkerSettings
from pids.task import TaskInfo, TaskState

from .policies import REFERENCES, make_policy, online_policy
from .simulator import simulate
from .workloads import Workload, make_workload

WORKLOADS = ["a-origin", "c-lognormal", "c-pareto", "c-lognormal-noisy", "c-pareto-noisy"]
DEFAULT_WORKLOADS = ["a-origin", "c-lognormal", "c-pareto"]
POLICIES = ["gravity", "pull_fifo", "round_robin", "random", "least_loaded", "least_work", "power_of_two", "delay"]
DEFAULT_POLICIES = POLICIES[:-1]
METRICS = ["balance", "jain", "max_mean", "makespan_lb"]
DEFAULT_TASKS = 300
DEFAULT_UNIT = 0.02
BENCH_WORKER = ("-m", "pids_bench.worker")  # a pids worker under any online policy


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--unit",
        type=float,
        default=DEFAULT_UNIT,
        help=f"--real: seconds a task sleeps per unit of size (default {DEFAULT_UNIT})",
    )
    parser.add_argument("--redis-url", default=None, help="--real: use this Redis instead of an embedded one")
    parser.add_argument(
        "--batch-timeout", type=float, default=600.0, help="--real: give up on a batch after this many seconds"
    )


@dataclass
class RealRun:
    """One policy on one task set on the real system, and the simulator on the same set."""

    workload: str
    policy: str
    seed: int
    tasks: int
    succeeded: int
    attempts_over_one: int  # tasks claimed more than once (lost leases, conflicts)
    seconds: float  # wall time of the batch
    real: dict[str, float]
    sim: dict[str, float]


def sleep_items(workload: Workload, unit: float) -> list[dict[str, Any]]:
    """One task per simulated task: sleep its true size x unit, weighed by its hint."""
    return [{"args": [float(size) * unit], "weight": float(hint)} for size, hint in zip(workload.size, workload.hint)]


def task_records(redis_url: str, client: Client, ids: list[str]) -> tuple[list[TaskInfo], list[int]]:
    """Task records and enqueue sequence numbers, in one pipelined read."""
    with redis.Redis.from_url(redis_url, decode_responses=True) as texts:
        pipe = texts.pipeline(transaction=False)
        for task_id in ids:
            pipe.hmget(client.keys.task(task_id), [*INFO_FIELDS, "seq"])
        rows = pipe.execute()
    infos = [TaskInfo.from_hash({f: v for f, v in zip(INFO_FIELDS, row) if v is not None}) for row in rows]
    return infos, [int(row[-1] or 0) for row in rows]


def real_metrics(
    workload: Workload, unit: float, infos: list[TaskInfo], busy: np.ndarray, lower_bound: float
) -> dict[str, float]:
    """Balance on the workers' busy time; makespan over the true-size LB; overheads per task;
    when the last task was first claimed (all at once in the simulator)."""
    enqueued = min(i.enqueued_at for i in infos)
    makespan = max(i.finished_at or 0.0 for i in infos) - enqueued
    sleep = workload.size * unit
    by_worker: dict[str, list[int]] = {}
    for t, info in enumerate(infos):
        by_worker.setdefault(info.worker, []).append(t)
    # each worker's span, from its first claim to its last completion
    span = sum(
        max(infos[t].finished_at or 0.0 for t in ts) - min(infos[t].claimed_at or 0.0 for t in ts)
        for ts in by_worker.values()
    )
    return {
        "balance": balance_score(busy),
        "jain": jain_index(busy),
        "max_mean": max_over_mean(busy),
        "makespan_lb": makespan / (lower_bound * unit),
        "makespan_s": makespan,
        "lb_s": lower_bound * unit,
        # per task: in the slot beyond the sleep (thread hand-off, oversleeping), and between tasks (claim cycle)
        "run_overhead_ms": 1e3 * (float(busy.sum()) - float(sleep.sum())) / len(infos),
        "cycle_overhead_ms": 1e3 * (span - float(busy.sum())) / len(infos),
        "last_claim_s": max(i.first_claimed_at or 0.0 for i in infos) - enqueued,
    }


def sim_metrics(workload: Workload, policy: str, settings: WorkerSettings, overhead: float = 0.0) -> dict[str, float]:
    """The simulator on `workload` with the worker's policy and window settings (1-slot workers, each
    sizing its window as a real one does); with `overhead` (in size units) added to every task's run
    time as well, only its makespan / true LB."""
    placement = make_policy(policy) if policy in REFERENCES else online_policy(settings)
    window, heavy = settings.window, HEAVIEST
    result = simulate(workload, placement, window=window, heavy=heavy)
    metrics = {m: v for m, v in result.metrics().items() if m in METRICS}
    if overhead > 0:
        slower = simulate(replace(workload, size=workload.size + overhead), placement, window=window, heavy=heavy)
        metrics["makespan_lb_overhead"] = slower.makespan / result.lower_bound
    return metrics


def run_policy(
    redis_url: str,
    policy: str,
    task_sets: list[tuple[int, Workload]],
    workers: int,
    unit: float,
    batch_timeout: float,
    advance: Any,
) -> list[RealRun]:
    """Start `workers` processes under `policy` on a fresh cluster, run every task set in turn."""
    settings = WorkerSettings.from_env(policy=policy)
    cluster = f"placement-{policy}-{uuid.uuid4().hex[:6]}"
    client = Client(redis_url, cluster)
    runs = []
    with ExitStack() as stack:
        processes = start_workers(
            workers, redis_url, cluster, "--policy", policy, "--pool", "thread", command=BENCH_WORKER
        )
        stack.callback(stop_workers, processes)
        wait_for_workers(client, workers, processes)
        for seed, workload in task_sets:
            before_stats = client.cluster_stats().workers
            before = {w.id: w.busy_seconds for w in before_stats}
            started = time.monotonic()
            handles = client.submit_batch(
                f"{workload.name}-s{seed}", "pids.tasks:sleep", sleep_items(workload, unit), max_attempts=1
            )
            states = client.wait(handles, timeout=batch_timeout)
            seconds = time.monotonic() - started
            succeeded = sum(state is TaskState.SUCCEEDED for state in states.values())
            stats = client.wait_for_worker_totals(sum(w.tasks_done for w in before_stats) + succeeded).workers
            busy = np.array([w.busy_seconds - before.get(w.id, 0.0) for w in stats])
            ids = [h.id for h in handles]
            infos, seqs = task_records(redis_url, client, ids)
            lower_bound = makespan_lower_bound(workload.size, np.ones(len(workload.workers)))
            order = sorted(range(len(ids)), key=seqs.__getitem__)  # the real queue's order (enqueue.lua)
            same_tasks = workload.in_queue_order(order, ids, seqs)
            real = real_metrics(workload, unit, infos, busy, lower_bound)
            overhead = (real["run_overhead_ms"] + real["cycle_overhead_ms"]) / 1e3 / unit
            runs.append(
                RealRun(
                    workload=workload.name,
                    policy=policy,
                    seed=seed,
                    tasks=len(ids),
                    succeeded=sum(s is TaskState.SUCCEEDED for s in states.values()),
                    attempts_over_one=sum(i.attempt > 1 for i in infos),
                    seconds=seconds,
                    real=real,
                    sim=sim_metrics(same_tasks, policy, settings, overhead),
                )
            )
            advance()
    return runs


def references(task_sets: list[tuple[int, Workload]], names: list[str]) -> list[RealRun]:
    """LPT and EFT from the simulator only (they want the whole queue, which no worker sees)."""
    settings = WorkerSettings.from_env()
    return [
        RealRun(
            workload=w.name,
            policy=p,
            seed=seed,
            tasks=w.n_tasks,
            succeeded=0,
            attempts_over_one=0,
            seconds=0.0,
            real={},
            sim=sim_metrics(w, p, settings),
        )
        for seed, w in task_sets
        for p in names
    ]


def summarise(runs: list[RealRun]) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """workload -> policy -> {real, sim} -> metric mean over seeds."""
    grouped: dict[tuple[str, str], list[RealRun]] = {}
    for r in runs:
        grouped.setdefault((r.workload, r.policy), []).append(r)
    table: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for (workload, policy), rs in grouped.items():
        table.setdefault(workload, {})[policy] = {
            side: {m: float(np.mean([getattr(r, side)[m] for r in rs])) for m in getattr(rs[0], side)}
            for side in ("real", "sim")
        }
    return table


def markdown(table: dict[str, Any], config: dict[str, Any]) -> str:
    lines = [
        f"{config['tasks']} tasks, {config['workers']} workers x 1 slot, {config['unit'] * 1000:g} ms per unit "
        f"of size, seeds {config['seeds']} (means); window K = {config['window']} ({config['heaviest']} heaviest). "
        "*sim + overhead*: the simulator with the real run's overhead per task (in the slot beyond the sleep, "
        "plus between tasks on the same worker) added to every task's run time.",
        "",
    ]
    for workload, by_policy in table.items():
        lines += [
            f"#### {workload}",
            "",
            "| policy | balance real / sim | Δ | makespan/LB real / sim | Δ | sim + overhead "
            "| overhead ms/task (in slot / between) | last task claimed at | real makespan (LB) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for policy, s in by_policy.items():
            real, sim = s["real"], s["sim"]
            if not real:
                lines.append(
                    f"| {policy} (ref, sim only) | - / {sim['balance']:.3f} | | - / {sim['makespan_lb']:.3f} "
                    "| | | | | |"
                )
                continue
            lines.append(
                f"| {policy} | {real['balance']:.3f} / {sim['balance']:.3f} | {real['balance'] - sim['balance']:+.3f} "
                f"| {real['makespan_lb']:.3f} / {sim['makespan_lb']:.3f} | {real['makespan_lb'] - sim['makespan_lb']:+.3f} "
                f"| {sim.get('makespan_lb_overhead', sim['makespan_lb']):.3f} "
                f"| {real['run_overhead_ms']:.1f} / {real['cycle_overhead_ms']:.1f} | {real['last_claim_s']:.2f} s "
                f"| {real['makespan_s']:.2f} s ({real['lb_s']:.2f} s) |"
            )
        lines.append("")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: stop every worker and the redis-server
    workloads = args.workload or DEFAULT_WORKLOADS
    policies = args.policy or DEFAULT_POLICIES
    bad = sorted(set(workloads) - set(WORKLOADS)) + sorted(set(policies) - set(POLICIES) - set(REFERENCES))
    if bad:
        raise ConfigError(
            f"--real runs workloads {', '.join(WORKLOADS)} and policies {', '.join(POLICIES + REFERENCES)}; "
            f"not {', '.join(bad)}"
        )
    if args.unit <= 0 or args.workers < 1 or (args.tasks or DEFAULT_TASKS) < 1:
        raise ConfigError("--unit, --workers and --tasks must be positive")
    tasks, seeds = args.tasks or DEFAULT_TASKS, args.seeds or 1
    task_sets = [(seed, make_workload(name, seed, tasks, args.workers)) for name in workloads for seed in range(seeds)]
    live = [p for p in policies if p not in REFERENCES]
    settings = WorkerSettings.from_env()
    runs: list[RealRun] = []
    with ExitStack() as stack:
        redis_url = args.redis_url or stack.enter_context(EmbeddedRedis()).url
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            transient=True,
            disable=args.json or not sys.stderr.isatty(),
        ) as bar:
            progress = bar.add_task("real runs", total=len(live) * len(task_sets))
            for policy in live:
                bar.update(progress, description=f"{policy}: {args.workers} workers")
                runs += run_policy(
                    redis_url,
                    policy,
                    task_sets,
                    args.workers,
                    args.unit,
                    args.batch_timeout,
                    lambda: bar.advance(progress),
                )
    runs += references(task_sets, [p for p in REFERENCES if p in policies or not args.policy])
    table = summarise(runs)
    window, heaviest = claim_window(CycleConfig.of(settings), args.workers)
    config = {
        "tasks": tasks,
        "workers": args.workers,
        "unit": args.unit,
        "seeds": seeds,
        "workloads": workloads,
        "policies": live,
        "window": window,
        "heaviest": heaviest,
    }
    document = {"config": config, "results": table, "runs": [r.__dict__ for r in runs]}
    text = markdown(table, config)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "real.json").write_text(json.dumps(document, indent=1))
    (args.out / "real.md").write_text(text)
    print(json.dumps(document, indent=1) if args.json else text)
    failed = sum(r.tasks - r.succeeded for r in runs if r.real)
    return 0 if failed == 0 else 1
