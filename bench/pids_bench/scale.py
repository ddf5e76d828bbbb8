"""`pids bench scale`: does the per-task cost of PIDS stay flat as the worker count W grows?

Against one real redis-server started here, W simulated workers (hosted by a
few driver processes, see scale_sim.py) run the real claim cycle and
heartbeat duties on no-op tasks submitted one by one at a fixed rate, while W
real subscriptions listen to the new-work channel as real workers do.
Measured per task, for each W: claim-cycle CPU of the workers, redis-server
CPU, Redis commands (Lua-internal calls included), bytes, and pub/sub
messages delivered (fan-out).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from pids.client import Client
from pids.embedded import EmbeddedRedis
from pids.keys import Keys

from .runner import Snapshot, group_cpu_s

CLUSTER = "scale"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", default="10,100,1000", help="comma-separated simulated worker counts W")
    parser.add_argument("--tasks", type=int, default=2000, help="no-op tasks per W")
    parser.add_argument("--rate", type=float, default=500.0, help="tasks/s submitted one by one")
    parser.add_argument("--drivers", type=int, default=2, help="processes hosting the simulated workers")
    parser.add_argument("--prefetch", type=int, default=0, help="claim up to 1 + prefetch tasks per cycle")
    parser.add_argument(
        "--idle",
        type=float,
        default=3.0,
        help="seconds of idle workers measured first: background cost, subtracted for net per-task",
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="bound per W, seconds")
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    parser.add_argument("--out", type=Path, default=None, help="write scale.md, scale.json and scale.png here")


def _popen(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pids_bench.scale_sim", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        process_group=0,
    )


def _finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
    proc.terminate()
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"scale_sim exited {proc.returncode} without a report:\n{err[-2000:]}")
    return dict(json.loads(lines[-1]))


def one_w(server: EmbeddedRedis, w: int, args: argparse.Namespace) -> dict[str, Any]:
    r = server.client()
    r.flushall()
    keys = Keys(CLUSTER)
    procs: list[subprocess.Popen[str]] = []
    try:
        sub = _popen(["subscribe", server.url, keys.new_work_channel, str(w)])
        procs.append(sub)
        if sub.stdout is None or sub.stdout.readline().strip() != "ready":
            raise RuntimeError(f"subscriber failed: {sub.stderr.read() if sub.stderr else ''}")
        share = [w // args.drivers + (1 if i < w % args.drivers else 0) for i in range(args.drivers)]
        first = 0
        for n in share:
            if n:
                procs.append(_popen(["driver", server.url, CLUSTER, str(first), str(n), str(args.prefetch)]))
                first += n
        deadline = time.monotonic() + args.timeout
        while r.hlen(keys.workers) < w and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        pgids = {p.pid for p in procs[1:]}
        sa, cpu_a, ta = Snapshot.take(r), group_cpu_s(pgids), time.monotonic()
        time.sleep(args.idle)
        s0, cpu0, t0 = Snapshot.take(r), group_cpu_s(pgids), time.monotonic()
        feeder = threading.Thread(target=_feed, args=(server.url, args.tasks, args.rate), daemon=True)
        feeder.start()
        done = 0
        while time.monotonic() < deadline:
            done = int(r.hget(keys.stats, "succeeded") or 0)
            if done >= args.tasks:
                break
            time.sleep(0.05)
        elapsed = time.monotonic() - t0
        s1, cpu1 = Snapshot.take(r), group_cpu_s(pgids)
        reports = [_finish(p) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    d, idle, idle_s = s1 - s0, s0 - sa, t0 - ta
    per = 1.0 / max(done, 1)
    drivers = reports[1:]
    k = elapsed / idle_s  # background of idle workers, scaled to the busy phase
    return {
        "W": w,
        "tasks": args.tasks,
        "done": done,
        "seconds": elapsed,
        "tasks_per_s": done / elapsed,
        "worker_cpu_us_per_task": (cpu1 - cpu0) * 1e6 * per,
        "redis_cpu_us_per_task": d.cpu_s * 1e6 * per,
        "commands_per_task": d.commands * per,
        "bytes_per_task": d.net_bytes * per,
        "fanout_per_task": reports[0]["messages"] * per,
        "net_worker_cpu_us_per_task": (cpu1 - cpu0 - k * (cpu0 - cpu_a)) * 1e6 * per,
        "net_redis_cpu_us_per_task": (d.cpu_s - k * idle.cpu_s) * 1e6 * per,
        "net_commands_per_task": (d.commands - k * idle.commands) * per,
        "net_bytes_per_task": (d.net_bytes - k * idle.net_bytes) * per,
        "idle_commands_per_worker_s": idle.commands / idle_s / w,
        "idle_redis_cpu_us_per_worker_s": idle.cpu_s * 1e6 / idle_s / w,
        "cycles_per_task": sum(x["cycles"] for x in drivers) * per,
        "timed_out": done < args.tasks,
    }


def _feed(url: str, n: int, rate: float) -> None:
    client = Client(url, cluster=CLUSTER)
    t0 = time.perf_counter()
    for i in range(n):
        delay = t0 + i / rate - time.perf_counter() if rate > 0 else 0
        if delay > 0:
            time.sleep(delay)
        client.submit("pids.tasks:noop")


COLUMNS = [
    ("tasks_per_s", "tasks/s", 0),
    ("worker_cpu_us_per_task", "worker CPU µs/task", 0),
    ("net_worker_cpu_us_per_task", "net", 0),
    ("redis_cpu_us_per_task", "Redis CPU µs/task", 0),
    ("net_redis_cpu_us_per_task", "net", 0),
    ("commands_per_task", "cmds/task", 1),
    ("net_commands_per_task", "net", 1),
    ("bytes_per_task", "bytes/task", 0),
    ("net_bytes_per_task", "net", 0),
    ("fanout_per_task", "pub/sub msgs/task", 1),
    ("cycles_per_task", "claim cycles/task", 1),
    ("idle_commands_per_worker_s", "idle cmds/worker/s", 1),
    ("idle_redis_cpu_us_per_worker_s", "idle Redis CPU µs/worker/s", 0),
]


def _saturated(row: dict[str, Any], rate: float) -> bool:
    """Workers could not keep up with the offered rate: idle background is not additive, no net figure."""
    return rate > 0 and row["tasks_per_s"] < 0.9 * rate


def _value(row: dict[str, Any], key: str, rate: float) -> float | None:
    return None if key.startswith("net_") and _saturated(row, rate) else float(row[key])


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"{result['tasks']:,} no-op tasks per W, submitted one by one at {result['rate']:g}/s; "
        f'claim size {1 + result["prefetch"]}; {result["drivers"]} driver processes. "net" subtracts the '
        f"background of the same W idle workers (heartbeats, reaping), measured for {result['idle']:g} s first.",
        "",
        "| W | " + " | ".join(c[1] for c in COLUMNS) + " |",
        "|---:|" + "---:|" * len(COLUMNS),
    ]
    for row in result["rows"]:
        values = [(_value(row, k, result["rate"]), d) for k, _, d in COLUMNS]
        cells = ["–" if v is None else f"{v:,.{d}f}" for v, d in values]
        flag = " (timeout)" if row["timed_out"] else " (saturated)" if _saturated(row, result["rate"]) else ""
        lines.append(f"| {row['W']:,}{flag} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def chart(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        (
            [
                "worker_cpu_us_per_task",
                "net_worker_cpu_us_per_task",
                "redis_cpu_us_per_task",
                "net_redis_cpu_us_per_task",
            ],
            "CPU µs per task",
        ),
        (["commands_per_task", "net_commands_per_task"], "Redis commands per task"),
        (["bytes_per_task", "net_bytes_per_task"], "bytes per task"),
        (["fanout_per_task"], "pub/sub messages delivered per task"),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.8))
    for ax, (keys_, title) in zip(axes, panels):
        for k in keys_:
            pts = [(row["W"], _value(row, k, result["rate"])) for row in result["rows"]]
            pts = [(x, y) for x, y in pts if y is not None and y > 0]
            ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o", label=k.replace("_per_task", ""))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("simulated workers W")
        ax.set_title(title, fontsize=9)
        if len(keys_) > 1:
            ax.legend(fontsize=7)
    fig.suptitle(
        f"PIDS per-task cost vs W ({result['tasks']:,} tasks at {result['rate']:g}/s per W; "
        "net = minus idle background, omitted when saturated)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: stop every worker and the redis-server
    result: dict[str, Any] = {
        "tasks": args.tasks,
        "rate": args.rate,
        "drivers": args.drivers,
        "prefetch": args.prefetch,
        "idle": args.idle,
        "loadavg_start": os.getloadavg(),
        "rows": [],
    }
    with EmbeddedRedis() as server:
        for w in [int(x) for x in args.workers.split(",")]:
            console.log(f"W = {w}: {args.tasks} tasks at {args.rate:g}/s")
            row = one_w(server, w, args)
            result["rows"].append(row)
            console.log("  " + ", ".join(f"{label} {row[k]:,.{d}f}" for k, label, d in COLUMNS))
    result["loadavg_end"] = os.getloadavg()
    text = markdown(result)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "scale.json").write_text(json.dumps(result, indent=2) + "\n")
        (args.out / "scale.md").write_text(text)
        chart(result, args.out / "scale.png")
    print(json.dumps(result, indent=2) if args.json else text)
    return 0


def main(argv: list[str], prog: str = "pids bench scale") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=(__doc__ or "").splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))
