"""Start peer workers, feed them, and read what they recorded.

Workers are started each in its own session (process group) so a whole
worker, pool children included, can be stopped or killed -9 at once. Records
come from bench/peers/benchrec.py: per-process mmap counters for no-op runs,
append-only files for latency and recovery runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import struct
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import redis

from pids.errors import PidsError

from .peerdefs import Launch, Peer

_CNT = struct.Struct("<qdd")  # bench/peers/benchrec.py: count, first start, last end, then checkpoints
CHECK_EVERY = 100  # benchrec.CHECK_EVERY (the peers' venvs run it, so it does not import pids)


class BenchError(PidsError):
    """A benchmark step failed (a worker died, a phase timed out)."""


@dataclass
class Snapshot:
    """Server counters at one moment: commands (INFO commandstats, Lua-internal calls included) and bytes."""

    commands: int
    net_bytes: int
    cpu_s: float
    """redis-server CPU time, user + system."""

    @classmethod
    def take(cls, r: redis.Redis) -> Snapshot:
        stats = r.info("commandstats")
        calls = sum(int(v["calls"]) for k, v in stats.items() if k not in ("cmdstat_info", "cmdstat_flushall"))
        net, cpu = r.info("stats"), r.info("cpu")
        return cls(
            calls,
            int(net["total_net_input_bytes"]) + int(net["total_net_output_bytes"]),
            float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]),
        )

    def __sub__(self, other: Snapshot) -> Snapshot:
        return Snapshot(self.commands - other.commands, self.net_bytes - other.net_bytes, self.cpu_s - other.cpu_s)


def group_cpu_s(pgids: set[int]) -> float:
    """CPU seconds (user + system) used so far by every live process in these process groups."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) in pgids:  # pgrp; utime and stime follow at 11 and 12
            total += int(fields[11]) + int(fields[12])
    return total / tick


@dataclass
class Workers:
    """The worker instances of one run; stops them all, whatever happens."""

    peer: Peer
    launch: Launch
    out: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(
        self, processes: int, threads: int, label: str = "w", extra_env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "PYTHONPATH": str(self.launch.peers_dir),
            "BENCH_REDIS_URL": self.launch.redis_url,
            "BENCH_OUT": str(self.out),
            "BENCH_WORKER": label,
            **self.peer.env,
            **(extra_env or {}),
        }
        # Its own process group (stopped whole with killpg) in this session: under the kernel's
        # autogroup scheduling each session is a scheduling group, and round trips between groups
        # are slower, unequally for peers that make more of them per task (BENCHMARKS.md).
        with open(self.out / f"worker-{label}-{len(self.procs)}.log", "ab") as log:
            proc = subprocess.Popen(
                self.peer.cmd(self.launch, processes, threads),
                env=env,
                cwd=self.launch.peers_dir,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                process_group=0,
            )
        self.procs.append(proc)
        return proc

    def start_pool(self, processes: int) -> None:
        """`processes` worker processes, each with the peer's default number of slots."""
        if self.peer.multi:
            self.start(processes, 0)
        else:
            for i in range(processes):
                self.start(1, 0, label=f"w{i}")

    def check_alive(self) -> None:
        for p in self.procs:
            if p.poll() is not None:
                log = sorted(self.out.glob("worker-*.log"))
                tail = b"".join(f.read_bytes()[-1500:] for f in log).decode(errors="replace")
                raise BenchError(f"{self.peer.name} worker exited with {p.returncode}:\n{tail}")

    @staticmethod
    def kill(proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def cpu_s(self) -> float:
        return group_cpu_s({p.pid for p in self.procs})

    def stop_all(self) -> None:
        for p in self.procs:
            self.kill(p)
        self.procs.clear()


def enqueue(
    peer: Peer,
    launch: Launch,
    out: Path,
    kind: str,
    n: int,
    rate: float = 0.0,
    sleep: float = 0.0,
    timeout: float = 600.0,
) -> float:
    """Run bench/peers/enqueue.py in the peer's interpreter; returns the seconds it took."""
    env = {
        **os.environ,
        "PYTHONPATH": str(launch.peers_dir),
        "BENCH_REDIS_URL": launch.redis_url,
        "BENCH_OUT": str(out),
        **peer.env,
    }
    cmd = [
        str(launch.python),
        str(launch.peers_dir / "enqueue.py"),
        peer.module or peer.name,
        kind,
        str(n),
        str(rate),
        str(sleep),
    ]
    try:
        proc = subprocess.run(cmd, env=env, cwd=launch.peers_dir, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{peer.name}: enqueue of {n} {kind} tasks took over {timeout}s") from exc
    if proc.returncode != 0:
        raise BenchError(f"{peer.name}: enqueue failed:\n{proc.stderr.decode(errors='replace')[-2000:]}")
    return float(json.loads(proc.stdout.decode().strip().splitlines()[-1])["seconds"])


@dataclass
class Progress:
    """One worker process's no-op counter: tasks done, when the first started and the last ended,
    and when every CHECK_EVERY-th ended."""

    count: int
    first: float
    last: float
    checkpoints: list[float]

    def done_by(self, t: float) -> float:
        """Tasks this process had done at time t, interpolated between its checkpoints."""
        counts = [0, *(CHECK_EVERY * (k + 1) for k in range(len(self.checkpoints))), self.count]
        return float(np.interp(t, [self.first, *self.checkpoints, self.last], counts))


def read_progress(out: Path) -> list[Progress]:
    """Every process's no-op counter that counted a task (bench/peers/benchrec.py writes them)."""
    found = []
    for f in out.glob("cnt-*"):
        data = f.read_bytes()
        if len(data) < _CNT.size:
            continue
        count, first, last = _CNT.unpack_from(data)
        if count:
            n_checks = min(count // CHECK_EVERY, (len(data) - _CNT.size) // 8)
            checkpoints = list(struct.unpack_from(f"<{n_checks}d", data, _CNT.size))
            found.append(Progress(count, first, last, checkpoints))
    return found


def read_counters(out: Path) -> tuple[int, float, float]:
    """(tasks done, first start, last end) over every process's no-op counter: their headers
    only, as the harness polls this while the workers drain."""
    total, first, last = 0, float("inf"), 0.0
    for f in out.glob("cnt-*"):
        with f.open("rb") as counter:
            data = counter.read(_CNT.size)
        if len(data) < _CNT.size:
            continue
        count, t_first, t_last = _CNT.unpack(data)
        if count:
            total += count
            first, last = min(first, t_first), max(last, t_last)
    return total, first, last


def all_busy_rate(found: list[Progress], processes: int, least_share: float = 0.1) -> float | None:
    """Tasks/s while every worker process was taking tasks: from the first task of the process that
    started last to the last task of the one that ended first. A drain's whole rate also holds the
    start-up, when the first process works while the others still import and connect, and that
    weighs on short drains of fast rows. None when fewer than `processes` processes ran a task or
    that stretch held less than `least_share` of the tasks (the last process started when the
    queue was nearly empty)."""
    if len(found) < processes:
        return None
    start, end = max(p.first for p in found), min(p.last for p in found)
    if end <= start:
        return None
    done = sum(p.done_by(end) - p.done_by(start) for p in found)
    if done < least_share * sum(p.count for p in found):
        return None
    return done / (end - start)


def read_latencies(out: Path) -> tuple[int, list[float]]:
    """(warm-up tasks done, latencies in seconds of measured tasks)."""
    warm, lats = 0, []
    for f in out.glob("lat-*"):
        for line in f.read_bytes().splitlines():
            if line == b"W":
                warm += 1
            elif line:
                lats.append(float(line))
    return warm, lats


def read_records(out: Path) -> list[tuple[str, int, str, float]]:
    """Recovery records: (S|E, task index, worker label, time), complete lines only."""
    rows = []
    for f in out.glob("rec-*"):
        for line in f.read_bytes().split(b"\n")[:-1]:
            tag, i, who, _pid, ts = line.split()
            rows.append((tag.decode(), int(i), who.decode(), float(ts)))
    return rows


def wait_until(cond: Callable[[], bool], timeout: float, workers: Workers | None = None, poll: float = 0.02) -> bool:
    """Poll `cond` until true or timeout; raise early if a worker died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        if workers is not None:
            workers.check_alive()
        time.sleep(poll)
    return cond()


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def fresh_dir(base: Path, name: str) -> Path:
    d = base / name
    d.mkdir(parents=True, exist_ok=True)
    for f in d.iterdir():
        if f.is_file():
            f.unlink()
    return d
