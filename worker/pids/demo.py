"""`pids demo`: an embedded Redis, N local worker processes, M tasks of mixed weights,
a live progress bar, then the work per worker and the balance score."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
import uuid
from contextlib import ExitStack

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .client import Client
from .embedded import EmbeddedRedis
from .errors import ConfigError, PidsError
from .report import balance_summary, balance_table, worker_rows

SECONDS_PER_WEIGHT = 0.02
WEIGHTS = np.array([1, 2, 3, 5, 8, 13])


WORKER_COMMAND = ("-m", "pids", "worker")


def start_workers(
    count: int, redis_url: str, cluster: str, *extra: str, command: tuple[str, ...] = WORKER_COMMAND
) -> list[subprocess.Popen[bytes]]:
    """Start `count` worker processes (`python -m pids worker`, or `python` + `command`), each in its own session."""
    return [
        subprocess.Popen(
            [
                sys.executable,
                *command,
                "--redis-url",
                redis_url,
                "--cluster",
                cluster,
                "--worker-id",
                f"worker-{i + 1}",
                "--concurrency",
                "1",
                "--log-level",
                "WARNING",
                *extra,
            ],
            start_new_session=True,
        )
        for i in range(count)
    ]


def stop_workers(processes: list[subprocess.Popen[bytes]], timeout: float = 10.0) -> None:
    """SIGTERM (drain) every worker, then SIGKILL what is still there after `timeout`."""
    for p in processes:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for p in processes:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def wait_for_workers(
    client: Client, count: int, processes: list[subprocess.Popen[bytes]], timeout: float = 60.0
) -> None:
    deadline = time.monotonic() + timeout
    while sum(w.alive for w in client.cluster_stats().workers) < count:
        dead = [p.args for p in processes if p.poll() is not None]
        if dead:
            raise PidsError(f"a worker process exited at start: {dead[0]!r}")
        if time.monotonic() > deadline:
            raise PidsError(f"workers did not register within {timeout:.0f}s")
        time.sleep(0.1)


def run(args: argparse.Namespace) -> int:
    if args.workers < 1 or args.tasks < 1:
        raise ConfigError("--workers and --tasks must be >= 1")
    console = Console(stderr=args.json)
    rng = np.random.default_rng(args.seed)
    weights = rng.choice(WEIGHTS, size=args.tasks, p=[0.3, 0.25, 0.2, 0.12, 0.08, 0.05])
    cluster = f"demo-{uuid.uuid4().hex[:8]}"
    with ExitStack() as stack:
        redis_url = args.redis_url
        if redis_url is None:
            redis_url = stack.enter_context(EmbeddedRedis()).url
            console.print(f"started an embedded redis-server at {redis_url}")
        client = Client(redis_url, cluster)
        processes = start_workers(args.workers, redis_url, cluster)
        stack.callback(stop_workers, processes)
        with console.status(f"starting {args.workers} workers"):
            wait_for_workers(client, args.workers, processes)
        started = time.monotonic()
        items = [{"args": [float(w) * SECONDS_PER_WEIGHT], "weight": float(w)} for w in weights]
        handles = client.submit_batch(cluster, "pids.tasks:sleep", items)
        with Progress(
            TextColumn("tasks"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=args.json,
        ) as progress:
            bar = progress.add_task("tasks", total=len(handles))
            while True:
                status = client.batch_status(cluster)
                finished = status.counts.get("succeeded", 0) + status.failed + status.counts.get("cancelled", 0)
                progress.update(bar, completed=finished)
                if status.done:
                    break
                time.sleep(0.1)
        elapsed = time.monotonic() - started
        stats = client.wait_for_worker_totals(status.counts.get("succeeded", 0))
        workers = [w for w in stats.workers if w.tasks_done or w.alive]
        summary = balance_summary(workers)
        if args.json:
            print(
                json.dumps(
                    {
                        "workers": worker_rows(workers),
                        "tasks": args.tasks,
                        "failed": status.failed,
                        "seconds": round(elapsed, 3),
                        **summary,
                    }
                )
            )
        else:
            console.print(
                balance_table(workers, title=f"{args.tasks} tasks on {args.workers} workers in {elapsed:.1f}s")
            )
            console.print(f"jain index: {summary['jain_index']:.3f}   max/mean: {summary['max_over_mean']:.2f}")
            print(f"balance score: {summary['balance_score']:.2f}")
    return 0 if status.failed == 0 else 1
