"""Redis CPU per task of cycle.lua, two source trees of PIDS side by side, no worker process:
one client fills a fresh embedded Redis with batched no-op tasks, then completes and claims
them `--batch` at a time, one cycle call each, until all are done. Pairs alternate which tree
goes first; the median of the per-pair ratios (old / new: above 1 the new tree costs less) is
what BENCHMARKS.md reports. The peers benchmark drifts by tens of percent on a small host; this
isolates the scripts' own cost. `--instructions` counts instead what Redis executes per task
(valgrind's callgrind: the same on every run, blind to cache misses; fill and cycles together,
the difference of two drain sizes, so start-up cancels out).

    python3 -m pids_bench.cycle_ab OLD_TREE NEW_TREE [--pairs 10] [--tasks 20000] [--batch 100] [--keep]
    python3 -m pids_bench.cycle_ab OLD_TREE NEW_TREE --instructions [--tasks 6000] [--batch 100] [--keep]
    ... [--single] [--snapshot-every N]: tasks submitted one by one; a snapshot every N cycles
    ... --instructions --cycles-only: the cycles' instructions alone (what a pre-filled drain runs)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

from pids.embedded import find_redis_server

# Run in a child process per tree with that tree's worker/ first on sys.path; the trees' APIs differ.
CHILD = r"""
import inspect, json, sys, uuid
from pids.client import Client
from pids.embedded import EmbeddedRedis
import pids.protocol as P
tasks, batch, keep = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
single, every = sys.argv[4] == "1", int(sys.argv[5])  # submits one by one; a snapshot every N cycles (0: none)
cycles_only = sys.argv[6] == "1"  # under callgrind: its counters zeroed after the fill
with EmbeddedRedis() as server:
    options = {"retention": None} if keep and "retention" in inspect.signature(Client).parameters else {}
    client = Client(server.url, cluster="bench", **options)
    ids = []
    for _ in range(tasks // 1000):
        if single:
            ids += [client.submit("p_noop:noop").id for _ in range(1000)]
            continue
        batch_id = uuid.uuid4().hex
        client.submit_batch(batch_id, "p_noop:noop", [[] for _ in range(1000)])
        ids += [f"{batch_id}-{i}" for i in range(1000)]
    p, worker, r = client.protocol, "w", client.redis
    if "list_retention_ms" in inspect.signature(P.Protocol).parameters:  # as a worker does: lists its retention's tasks
        from pids.settings import WorkerSettings
        p = P.Protocol(r, client.keys, list_retention_ms=None if keep else WorkerSettings().retention_ms)
    p.heartbeat(worker, {"slots": batch, "speed": 1.0, "capacity": float(batch)}, 60000, 60000)
    if cycles_only:
        import subprocess
        subprocess.run(["callgrind_control", "-z", str(r.info("server")["process_id"])], check=True, capture_output=True)
    before = r.info("cpu")
    held = []
    if "request" in inspect.signature(P.Protocol.cycle).parameters:
        from pids.wire import Completion, CycleRequest
        for s in range(0, tasks + batch, batch):
            done = [Completion(t.id, t.token, "null", 0.0, t.weight, t.batch) for t in held]
            wanted = ids[s : s + batch]
            window = 64 if every and s // batch % every == 0 else 0
            request = CycleRequest(worker, done, claim_ids=wanted, wanted=len(wanted), maybe_idle=False, window=window, heaviest=16)
            held = p.cycle(request).won
    else:  # the cycle before CycleRequest (0cf5f80)
        for s in range(0, tasks + batch, batch):
            done = [P.Completion(t.id, t.attempt, "null", 0.0, t.weight) for t in held]
            wanted = ids[s : s + batch]
            snap = bool(every) and s // batch % every == 0
            _, held, _ = p.cycle(worker, done, wanted, 30000, 64, 16, wanted=len(wanted), read_snapshot=snap, maybe_idle=False)
    after = r.info("cpu")
    assert int(r.hget(client.keys.stats, "succeeded")) == tasks
    cpu = sum(after[k] - before[k] for k in ("used_cpu_user", "used_cpu_sys"))
    print(json.dumps({"redis_cpu_us_per_task": cpu * 1e6 / tasks}))
"""


class Mode(NamedTuple):
    """How a drain submits and cycles: tasks per cycle call, retention off, submits one by one
    (as the `pids` row of the peers benchmark does), a snapshot every N cycles (0: none), and
    under callgrind whether the fill's instructions are left out."""

    batch: int = 100
    keep: bool = False
    single: bool = False
    snapshot_every: int = 0
    cycles_only: bool = False


def drain(tree: Path, tasks: int, mode: Mode, env: dict[str, str] | None = None) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(tree / 'worker')!r})\n{CHILD}",
         str(tasks), str(mode.batch), "1" if mode.keep else "0", "1" if mode.single else "0", str(mode.snapshot_every),
         "1" if mode.cycles_only else "0"],
        capture_output=True, text=True, check=True, env=env,
    )  # fmt: skip
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def redis_instructions(tree: Path, tasks: int, mode: Mode) -> int:
    """Instructions the redis-server executed in one drain, counted by callgrind."""
    if not shutil.which("valgrind"):
        raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="cycle-ab-") as work:
        wrapper = Path(work) / "redis-server"
        out = Path(work) / "callgrind.out"
        wrapper.write_text(
            f'#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file={out} {find_redis_server()} "$@"\n'
        )
        wrapper.chmod(0o755)
        drain(tree, tasks, mode, env={**os.environ, "PIDS_REDIS_SERVER": str(wrapper)})
        for line in out.read_text().splitlines():
            if line.startswith(("totals:", "summary:")):
                return int(line.split()[1])
    raise RuntimeError("callgrind wrote no totals")


def instructions_per_task(tree: Path, tasks: int, mode: Mode) -> float:
    """From two drains, a third of `tasks` and all: Redis's start-up and stop cancel out."""
    small = max(1000, tasks // 3 // 1000 * 1000)
    big = redis_instructions(tree, tasks, mode)
    return (big - redis_instructions(tree, small, mode)) / (tasks - small)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--tasks", type=int, help="a multiple of 1000 (default 20000; 6000 with --instructions)")
    parser.add_argument("--batch", type=int, default=100, help="tasks completed and claimed per cycle call")
    parser.add_argument(
        "--keep", action="store_true", help="tasks without retention (no expiry), where the tree has it"
    )
    parser.add_argument("--single", action="store_true", help="submit tasks one by one (as the pids row does)")
    parser.add_argument("--snapshot-every", type=int, default=0, help="read a snapshot every N cycle calls (0: none)")
    parser.add_argument(
        "--instructions", action="store_true", help="count Redis's instructions per task (valgrind) instead of timing"
    )
    parser.add_argument(
        "--cycles-only", action="store_true", help="with --instructions: count the cycles, not the fill before them"
    )
    args = parser.parse_args(argv)
    if args.cycles_only and not args.instructions:
        parser.error("--cycles-only counts instructions: add --instructions")
    mode = Mode(args.batch, args.keep, args.single, args.snapshot_every, args.cycles_only)
    if args.instructions:
        tasks = args.tasks or 6000
        counts = {tree: instructions_per_task(tree, tasks, mode) for tree in (args.old, args.new)}
        print(
            f"Redis instructions per task, {'cycles only' if args.cycles_only else 'enqueue and cycles'}: "
            f"old {counts[args.old]:,.0f}, new {counts[args.new]:,.0f}, "
            f"old/new {counts[args.old] / counts[args.new]:.3f}"
        )
        return
    ratios = []
    for i in range(args.pairs):
        trees = (args.old, args.new) if i % 2 == 0 else (args.new, args.old)
        cost = {tree: drain(tree, args.tasks or 20000, mode)["redis_cpu_us_per_task"] for tree in trees}
        ratios.append(cost[args.old] / cost[args.new])
        print(f"pair {i + 1}: old {cost[args.old]:.2f}, new {cost[args.new]:.2f} µs/task, old/new {ratios[-1]:.3f}")
    print(f"median old/new {statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})")


if __name__ == "__main__":
    main()
