"""`pids bench peers`: PIDS next to the Redis task queues users would pick instead.

One run, one redis-server started here on loopback: each peer from its own
venv (created on demand), the same no-op work, the same measurements:
enqueue rate, processed rate with 2 and 8 worker processes (drain of a
pre-filled queue, first dequeue to last completion, counted in the workers
through an mmap so counting costs no Redis command), the time per task of one
worker process alone (Redis to itself, as for the PING), end-to-end latency at a
fixed offered load, Redis commands and bytes per task, and recovery after
kill -9. Floors: a bare Lua claim+ack loop and Redis Streams.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis
from rich.console import Console

from pids.embedded import EmbeddedRedis
from pids.errors import ConfigError, PidsError

from . import measure, report
from .peerdefs import BASELINE_SUFFIX, FLOORS, PEERS, Launch, Peer, baseline_peers, this_python
from .runner import percentile
from .venvs import DEFAULT_DIR, venv_python

PEERS_DIR = Path(__file__).resolve().parents[1] / "peers"  # bench/peers/ beside this package
DEFAULT_PEERS = [*FLOORS, "pids", "pids-batch", "dramatiq", "celery", "huey", "rq", "arq"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", type=int, default=20_000, help="no-op tasks per throughput run")
    parser.add_argument(
        "--peers", default=",".join(DEFAULT_PEERS), help=f"comma-separated rows to run, from: {', '.join(PEERS)}"
    )
    parser.add_argument("--processes", default="2,8", help="worker process counts for the throughput runs")
    parser.add_argument(
        "--alone-tasks",
        type=int,
        default=5000,
        help="tasks in the run with one worker process, Redis to itself, like the PING (0: skip)",
    )
    parser.add_argument("--latency-tasks", type=int, default=1000, help="tasks in the latency run (0: skip)")
    parser.add_argument("--rate", type=float, default=200.0, help="offered load of the latency run, tasks/s")
    parser.add_argument("--recovery-tasks", type=int, default=60, help="tasks in the kill -9 run (0: skip)")
    parser.add_argument("--recovery-sleep", type=float, default=0.2, help="seconds each recovery task sleeps")
    parser.add_argument(
        "--recovery-cap",
        type=float,
        default=70.0,
        help="seconds to wait after the kill for the killed worker's tasks to run again",
    )
    parser.add_argument("--kill-after", type=float, default=0.5, help="seconds into the recovery run to kill")
    parser.add_argument("--phase-timeout", type=float, default=300.0, help="bound on any single phase, seconds")
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of markdown")
    parser.add_argument("--out", type=Path, default=None, help="write peers.md, peers.json and peers.png here")
    parser.add_argument("--venv-dir", type=Path, default=DEFAULT_DIR, help="where the peers' venvs are cached")
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        metavar="TREE",
        help="also run the chosen PIDS rows from this earlier source tree (rows pids@base, pids-batch@base)",
    )
    parser.add_argument(
        "--peers-dir",
        type=Path,
        default=None,
        help="the repo's bench/peers directory (default: found beside the pids_bench source)",
    )


def find_peers_dir(explicit: Path | None) -> Path:
    d = (explicit or PEERS_DIR).resolve()
    if not (d / "enqueue.py").is_file():
        raise ConfigError(
            f"peer scripts not found in {d}: install pids-bench in editable mode from the repository "
            "(pip install -e ./bench) or pass --peers-dir <repo>/bench/peers"
        )
    return d


def ping_us(r: redis.Redis, server_pid: int | None = None, n: int = 2000) -> dict[str, float]:
    """Round trip of one PING from a Python client: the unit scheduling overhead is compared with.
    p50/p99 with this client and the redis-server pinned to two different vCPUs, same_core_* to one:
    on a VM these differ by more than 2x (waking the other vCPU), and an unpinned client gets
    either, depending on where the scheduler last put the two."""

    def sample() -> dict[str, float]:
        for _ in range(200):
            r.ping()
        samples = []
        for _ in range(n):
            t0 = time.perf_counter()
            r.ping()
            samples.append((time.perf_counter() - t0) * 1e6)
        return {"p50": percentile(samples, 50), "p99": percentile(samples, 99)}

    cpus = sorted(os.sched_getaffinity(0))
    if server_pid is None or len(cpus) < 2:
        return sample()
    server_cpus = os.sched_getaffinity(server_pid)
    try:
        os.sched_setaffinity(server_pid, {cpus[0]})
        os.sched_setaffinity(0, {cpus[1]})
        across = sample()
        os.sched_setaffinity(0, {cpus[0]})
        same = sample()
    finally:
        os.sched_setaffinity(0, cpus)
        os.sched_setaffinity(server_pid, server_cpus)
    return {**across, "same_core_p50": same["p50"], "same_core_p99": same["p99"]}


def _pings(ping: dict[str, float]) -> str:
    same = f", {ping['same_core_p50']:.0f} µs on one" if "same_core_p50" in ping else ""
    return f"{ping['p50']:.0f} µs with client and server on two vCPUs{same}"


def machine(r: redis.Redis) -> dict[str, Any]:
    cpu = (
        next(
            (
                ln.split(":", 1)[1].strip()
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else ""
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "os": platform.platform(),
        "redis": r.info("server")["redis_version"],
        "loadavg_start": os.getloadavg(),
    }


def run_peer(
    peer: Peer,
    lc: Launch,
    r: redis.Redis,
    server_pid: int | None,
    work: Path,
    args: argparse.Namespace,
    procs: list[int],
    console: Console,
) -> dict[str, Any]:
    # a PING before each row: the run's PING, which the overheads are compared with, is their median
    # (report.reference_ping), so it follows the host's speed through a run that lasts minutes
    row: dict[str, Any] = {"mode": peer.mode, "ping_us": ping_us(r, server_pid), "throughput": {}}
    console.log(f"{peer.name}: PING p50 {_pings(row['ping_us'])}")
    if args.alone_tasks > 0:
        console.log(f"{peer.name}: {args.alone_tasks} no-op tasks, one worker process alone")
        alone = measure.throughput(peer, lc, r, work, args.alone_tasks, 1, args.phase_timeout)
        row["alone"] = measure.as_dict(alone)
        if alone.processed_per_s > 0:
            console.log(f"  processed {alone.processed_per_s:,.0f}/s: {1e6 / alone.processed_per_s:,.0f} µs/task")
    for p in procs:
        console.log(f"{peer.name}: {args.tasks} no-op tasks, {p} worker processes")
        tp = measure.throughput(peer, lc, r, work, args.tasks, p, args.phase_timeout)
        row["throughput"][str(p)] = measure.as_dict(tp)
        busy = "no stretch with all busy" if tp.all_busy_per_s is None else f"{tp.all_busy_per_s:,.0f}/s all busy"
        console.log(
            f"  enqueue {tp.enqueue_per_s:,.0f}/s, processed {busy}, {tp.processed_per_s:,.0f}/s whole drain, "
            f"{tp.commands_per_task:.1f} cmds/task, {tp.bytes_per_task:,.0f} B/task"
        )
    if args.latency_tasks > 0:
        console.log(f"{peer.name}: latency at {args.rate:g}/s")
        lat = measure.latency(peer, lc, r, work, args.latency_tasks, args.rate, procs[0], args.phase_timeout)
        row["latency"] = measure.as_dict(lat)
        console.log(f"  p50 {lat.p50_ms:.1f} ms, p99 {lat.p99_ms:.1f} ms")
    if args.recovery_tasks > 0 and not peer.floor:
        console.log(f"{peer.name}: kill -9 one of two workers (cap {args.recovery_cap:g} s)")
        rec = measure.recovery(
            peer,
            lc,
            r,
            work,
            args.recovery_tasks,
            args.recovery_sleep,
            args.recovery_cap,
            args.kill_after,
            args.phase_timeout,
        )
        row["recovery"] = measure.as_dict(rec)
        console.log(f"  {rec}")
    return row


def with_baseline_rows(names: list[str], known: list[str]) -> list[str]:
    """The rows asked for, then the @base rows of those (all of them if none has one)."""
    base_rows = [n for n in known if n.endswith(BASELINE_SUFFIX)]
    chosen = [n for n in base_rows if n.removesuffix(BASELINE_SUFFIX) in names or n in names]
    return names + [n for n in chosen or base_rows if n not in names]


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: stop every worker and the redis-server
    names = [n.strip() for n in args.peers.split(",") if n.strip()]
    peers_dir = find_peers_dir(args.peers_dir)
    peers = dict(PEERS)
    if args.baseline:
        peers.update(baseline_peers(args.baseline.resolve(), peers_dir))
        names = with_baseline_rows(names, list(peers))
    unknown = [n for n in names if n not in peers]
    if unknown:
        raise ConfigError(f"unknown peers {unknown}; choose from {', '.join(peers)}")
    procs = [int(p) for p in args.processes.split(",")]
    pythons = {
        n: venv_python(args.venv_dir, peers[n].venv_name, peers[n].requirements)
        if peers[n].requirements
        else this_python()
        for n in names
    }
    result: dict[str, Any] = {
        "tasks": args.tasks,
        "processes": procs,
        "alone_tasks": args.alone_tasks,
        "rate": args.rate,
        "rows": {},
        "command": args.command_line,
    }
    with EmbeddedRedis() as server, tempfile.TemporaryDirectory(prefix="pids-bench-peers-") as tmp:
        r = server.client()
        result["machine"] = machine(r)
        result["ping_us"] = ping_us(r, server.pid)
        console.log(f"redis {result['machine']['redis']} on {server.url}; PING p50 {_pings(result['ping_us'])}")
        for name in names:
            lc = Launch(pythons[name], peers_dir, server.url)
            try:
                result["rows"][name] = run_peer(peers[name], lc, r, server.pid, Path(tmp), args, procs, console)
            except PidsError as exc:
                console.log(f"[red]{name}: {exc}")
                result["rows"][name] = {"mode": peers[name].mode, "error": str(exc)}
        result["machine"]["loadavg_end"] = os.getloadavg()
    text = report.markdown(result)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "peers.json").write_text(json.dumps(result, indent=2) + "\n")
        (args.out / "peers.md").write_text(text)
        report.chart(result, args.out / "peers.png")
        console.log(f"wrote {args.out}/peers.md, peers.json, peers.png")
    print(json.dumps(result, indent=2) if args.json else text)
    return 0


def main(argv: list[str], prog: str = "pids bench peers") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.set_defaults(command_line=" ".join([prog, *argv]))  # recorded with the results
    return run(parser.parse_args(argv))
