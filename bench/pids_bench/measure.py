"""The three measurements per peer: drain throughput, latency under load, recovery after kill -9."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import redis

from .peerdefs import Launch, Peer
from .runner import (
    BenchError,
    Snapshot,
    Workers,
    all_busy_rate,
    enqueue,
    fresh_dir,
    percentile,
    read_counters,
    read_latencies,
    read_progress,
    read_records,
    wait_until,
)


@dataclass
class Throughput:
    processes: int
    tasks: int
    done: int
    enqueue_per_s: float
    processed_per_s: float
    """Tasks / (last completion - first dequeue), measured in the worker processes: the whole drain."""
    all_busy_per_s: float | None
    """Tasks/s while every worker process was taking tasks (runner.all_busy_rate); None: no such stretch."""
    commands_per_task: float
    """Enqueue + processing, Lua-internal calls included."""
    bytes_per_task: float
    enqueue_commands_per_task: float
    worker_cpu_us_per_task: float
    """CPU of all worker processes (startup included) over the tasks done."""
    redis_cpu_us_per_task: float
    """redis-server CPU during the drain over the tasks done."""
    timed_out: bool


def throughput(
    peer: Peer, lc: Launch, r: redis.Redis, work: Path, tasks: int, processes: int, timeout: float
) -> Throughput:
    """Pre-fill the queue with `tasks` no-ops, then start `processes` workers and time the drain."""
    out = fresh_dir(work, f"{peer.name}-tp{processes}")
    r.flushall()
    s0 = Snapshot.take(r)
    enq_s = enqueue(peer, lc, out, "noop", tasks, timeout=timeout)
    s1 = Snapshot.take(r)
    workers = Workers(peer, lc, out)
    try:
        workers.start_pool(processes)
        ok = wait_until(lambda: read_counters(out)[0] >= tasks, timeout, workers)
        time.sleep(0.05)  # let a torn last mmap write settle before the final read
        s2 = Snapshot.take(r)
        cpu = workers.cpu_s()
    finally:
        workers.stop_all()
    found = read_progress(out)
    done, first, last = read_counters(out)
    total, enq, drain = s2 - s0, s1 - s0, s2 - s1
    per = 1e6 / max(done, 1)
    return Throughput(
        processes,
        tasks,
        done,
        tasks / enq_s,
        done / (last - first) if done > 1 else 0.0,
        all_busy_rate(found, processes),
        total.commands / tasks,
        total.net_bytes / tasks,
        enq.commands / tasks,
        cpu * per,
        drain.cpu_s * per,
        not ok,
    )


@dataclass
class Latency:
    rate: float
    tasks: int
    done: int
    p50_ms: float
    p99_ms: float


def latency(
    peer: Peer, lc: Launch, r: redis.Redis, work: Path, tasks: int, rate: float, processes: int, timeout: float
) -> Latency:
    """End-to-end latency (enqueue call to task start) at a fixed offered load, workers already warm."""
    out = fresh_dir(work, f"{peer.name}-lat")
    r.flushall()
    workers = Workers(peer, lc, out)
    try:
        workers.start_pool(processes)
        warm = 10 * processes
        enqueue(peer, lc, out, "warm", warm, timeout=timeout)
        if not wait_until(lambda: read_latencies(out)[0] >= warm, timeout, workers):
            raise BenchError(f"{peer.name}: workers did not process {warm} warm-up tasks in {timeout}s")
        time.sleep(1.0)  # the slower-starting processes get ready too
        enqueue(peer, lc, out, "lat", tasks, rate=rate, timeout=timeout)
        wait_until(lambda: len(read_latencies(out)[1]) >= tasks, timeout, workers)
    finally:
        workers.stop_all()
    lats = read_latencies(out)[1]
    if not lats:
        raise BenchError(f"{peer.name}: no latency recorded")
    return Latency(rate, tasks, len(lats), percentile(lats, 50) * 1e3, percentile(lats, 99) * 1e3)


@dataclass
class Recovery:
    tasks: int
    in_flight_at_kill: int
    lost: int
    """Tasks never completed by the end of the wait (cap)."""
    duplicated: int
    """Completions beyond one per task."""
    rerun_s: float | None
    """Kill -> last of the killed worker's in-flight tasks started again; None: not within the cap."""
    all_done_s: float | None
    cap_s: float


def recovery(
    peer: Peer,
    lc: Launch,
    r: redis.Redis,
    work: Path,
    tasks: int,
    sleep: float,
    cap: float,
    kill_after: float,
    timeout: float,
) -> Recovery:
    """Two workers of 2 slots each; kill -9 the one with tasks in flight; watch who re-runs what."""
    out = fresh_dir(work, f"{peer.name}-rec")
    r.flushall()
    enqueue(peer, lc, out, "rec", tasks, sleep=sleep, timeout=timeout)
    workers = Workers(peer, lc, out)
    slots = {"processes": 1, "threads": peer.recovery_slots}
    extra = {"BENCH_SLOTS": str(peer.recovery_slots)}
    procs: dict[str, Any] = {}
    chosen: list[str] = []
    try:
        procs["A"] = workers.start(label="A", extra_env=extra, **slots)
        procs["B"] = workers.start(label="B", extra_env=extra, **slots)

        def someone_busy() -> bool:
            """After kill_after, pick the worker with the most tasks in flight (A on ties)."""
            rows = read_records(out)
            if len({i for tag, i, _, _ in rows if tag == "E"}) >= tasks:
                raise BenchError(f"{peer.name}: all {tasks} tasks finished before the kill: use more tasks")
            starts = [ts for tag, _, _, ts in rows if tag == "S"]
            if not starts or time.time() - min(starts) < kill_after:
                return False
            open_ = {
                who: len(
                    {i for tag, i, w, _ in rows if tag == "S" and w == who}
                    - {i for tag, i, w, _ in rows if tag == "E" and w == who}
                )
                for who in ("A", "B")
            }
            best = max(open_, key=lambda who: (open_[who], who == "A"))
            if open_[best]:
                chosen.append(best)
            return bool(open_[best])

        if not wait_until(someone_busy, timeout, workers, poll=0.005):
            raise BenchError(f"{peer.name}: no worker ever held a task in flight")
        victim = procs[chosen[-1]]
        workers.kill(victim)
        workers.procs.remove(victim)
        t_kill = time.time()
        wait_until(
            lambda: len({i for tag, i, _, _ in read_records(out) if tag == "E"}) >= tasks, cap, workers, poll=0.05
        )
    finally:
        workers.stop_all()
    return _score(read_records(out), tasks, t_kill, cap, chosen[-1])


def _score(rows: list[tuple[str, int, str, float]], tasks: int, t_kill: float, cap: float, victim: str) -> Recovery:
    ends: dict[int, int] = {}
    for tag, i, _, _ in rows:
        if tag == "E":
            ends[i] = ends.get(i, 0) + 1
    a_started = {i for tag, i, who, ts in rows if tag == "S" and who == victim and ts <= t_kill}
    a_ended = {i for tag, i, who, ts in rows if tag == "E" and who == victim and ts <= t_kill}
    in_flight = a_started - a_ended
    restarts: dict[int, float] = {}
    for tag, i, _, ts in sorted(rows, key=lambda row: row[3]):
        if tag == "S" and i in in_flight and ts > t_kill and i not in restarts:
            restarts[i] = ts - t_kill
    rerun = max(restarts.values()) if in_flight and len(restarts) == len(in_flight) else None
    last_end = max((ts for tag, _, _, ts in rows if tag == "E"), default=t_kill)
    all_done = last_end - t_kill if len(ends) >= tasks else None
    return Recovery(tasks, len(in_flight), tasks - len(ends), sum(n - 1 for n in ends.values()), rerun, all_done, cap)


def as_dict(obj: Any) -> dict[str, Any]:
    return asdict(obj)
