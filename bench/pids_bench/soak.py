"""Redis memory under an endless stream: small batches of no-op tasks submitted without pause,
workers draining them, final tasks expiring after a short retention; used memory is sampled
every second and plotted against tasks done. Flat means retention keeps up."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from pids.client import Client
from pids.embedded import EmbeddedRedis

RESULTS = Path("bench/results/soak")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", type=int, default=2_000_000, help="no-op tasks in all")
    parser.add_argument("--batch", type=int, default=100, help="tasks per submitted batch")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--prefetch", type=int, default=99, help="each worker's batched claims")
    parser.add_argument("--retention", type=float, default=5.0, help="seconds a final task stays")
    parser.add_argument("--backlog", type=int, default=20_000, help="the producer pauses above this many pending")
    parser.add_argument("--out", type=Path, default=RESULTS)


def produce(client: Client, args: argparse.Namespace, stop: threading.Event) -> None:
    submitted = 0
    while submitted < args.tasks and not stop.is_set():
        if client.redis.zcard(client.keys.pending) > args.backlog:
            time.sleep(0.01)
            continue
        size = min(args.batch, args.tasks - submitted)
        client.submit_batch(f"soak-{submitted}", "pids.tasks:noop", [[]] * size, max_attempts=1)
        submitted += size


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    samples: list[dict[str, Any]] = []
    with EmbeddedRedis() as server:
        client = Client(server.url, "soak", retention=args.retention)
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pids",
                    "worker",
                    "--redis-url",
                    server.url,
                    "--cluster",
                    "soak",
                    "--worker-id",
                    f"soak-{i}",
                    "--pool",
                    "thread",
                    "--concurrency",
                    "1",
                    "--prefetch",
                    str(args.prefetch),
                    "--retention-seconds",  # the tasks' own: completed tasks are listed and swept
                    str(args.retention),
                    "--log-level",
                    "WARNING",
                ]
            )
            for i in range(args.workers)
        ]
        stop = threading.Event()
        producer = threading.Thread(target=produce, args=(client, args, stop), daemon=True)
        started = time.monotonic()
        producer.start()
        try:
            done = 0
            while done < args.tasks:
                time.sleep(1.0)
                stats = client.cluster_stats()
                done = stats.succeeded + stats.failed
                memory = client.redis.info("memory")
                samples.append(
                    {
                        "seconds": round(time.monotonic() - started, 2),
                        "done": done,
                        "pending": stats.backlog,
                        "used_memory": int(memory["used_memory"]),
                        "keys": int(client.redis.dbsize()),
                    }
                )
                console.print(
                    f"{done:>9} done  {stats.backlog:>6} pending  "
                    f"{samples[-1]['used_memory'] / 2**20:7.1f} MiB  {samples[-1]['keys']:>7} keys"
                )
        finally:
            stop.set()
            for worker in workers:
                worker.terminate()
            for worker in workers:
                worker.wait()
    args.out.mkdir(parents=True, exist_ok=True)
    summary = summarise(samples, args)
    (args.out / "soak.json").write_text(
        json.dumps(
            {"config": {k: str(v) for k, v in vars(args).items()}, "summary": summary, "samples": samples}, indent=1
        )
    )
    plot(samples, args, args.out / "soak.png")
    print(json.dumps(summary))
    return 0


def summarise(samples: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """Used memory over the first and the last quarter of the run, once the retention window has
    filled (after 3 retention periods)."""
    steady = [s for s in samples if s["seconds"] > 3 * args.retention]
    quarter = max(1, len(steady) // 4)
    first, last = steady[:quarter], steady[-quarter:]

    def mean_mib(part: list[dict[str, Any]]) -> float:
        return round(sum(s["used_memory"] for s in part) / max(1, len(part)) / 2**20, 2)

    seconds = samples[-1]["seconds"] if samples else 0.0
    return {
        "tasks": samples[-1]["done"] if samples else 0,
        "seconds": seconds,
        "tasks_per_second": round(samples[-1]["done"] / seconds, 1) if seconds else 0.0,
        "memory_first_quarter_mib": mean_mib(first),
        "memory_last_quarter_mib": mean_mib(last),
        "peak_mib": round(max((s["used_memory"] for s in samples), default=0) / 2**20, 2),
    }


def plot(samples: list[dict[str, Any]], args: argparse.Namespace, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot([s["done"] / 1e6 for s in samples], [s["used_memory"] / 2**20 for s in samples], label="used memory")
    ax.set_xlabel("tasks done (millions)")
    ax.set_ylabel("Redis used memory (MiB)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"Soak: batches of {args.batch} no-op tasks, retention {args.retention:g} s, {args.workers} workers")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str], prog: str = "pids bench soak") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=(__doc__ or "").splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))
