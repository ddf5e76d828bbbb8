"""The task queues PIDS is measured against, and the floors, as launch recipes.

Each peer runs from its own venv (or this interpreter for the floors and PIDS)
with bench/peers/ on PYTHONPATH: `p_<name>.py` there holds its tasks and its
enqueue side; `cmd()` here builds one worker instance's command line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REDIS_PY = "redis[hiredis]==8.1.0"


@dataclass(frozen=True)
class Launch:
    """What a command builder gets: where the peer's executables are, and the Redis URL."""

    python: Path
    peers_dir: Path
    redis_url: str

    def bin(self, name: str) -> str:
        return str(self.python.parent / name)


@dataclass(frozen=True)
class Peer:
    name: str
    mode: str
    """Delivery semantics as configured here, in a few words."""
    cmd: Callable[[Launch, int, int], list[str]]
    """(launch, processes, slots per process; 0 = the peer's default) -> one worker instance's argv."""
    requirements: tuple[str, ...] = ()
    """Empty: run in this interpreter (floors, PIDS)."""
    multi: bool = True
    """One instance can run several processes (else: start one instance per process)."""
    floor: bool = False
    env: dict[str, str] = field(default_factory=dict)
    module: str = ""
    """Name of its bench/peers/p_<module>.py, when not the peer's own name."""

    recovery_slots: int = 2
    """Execution slots of each of the two workers in the kill -9 run."""

    @property
    def venv_name(self) -> str:
        return "-".join([self.name, *(r.split("==")[-1] for r in self.requirements[:1])])


def _dramatiq(lc: Launch, procs: int, threads: int) -> list[str]:
    return [
        lc.bin("dramatiq"),
        "p_dramatiq",
        "--processes",
        str(procs),
        "--queues",
        "bench",
        *(["--threads", str(threads)] if threads else []),
    ]  # default: 8 threads per process


def _celery(lc: Launch, procs: int, threads: int) -> list[str]:
    return [
        lc.bin("celery"),
        "-A",
        "p_celery",
        "worker",
        "--pool",
        "prefork",
        "--concurrency",
        str(procs * max(threads, 1)),
        "--queues",
        "bench",
        "--loglevel",
        "WARNING",
    ]


def _huey(lc: Launch, procs: int, threads: int) -> list[str]:
    if threads > 1:  # one consumer process, `threads` worker threads
        return [lc.bin("huey_consumer"), "p_huey.huey", "--workers", str(threads), "--worker-type", "thread", "--quiet"]
    return [lc.bin("huey_consumer"), "p_huey.huey", "--workers", str(procs), "--worker-type", "process", "--quiet"]


def _rq(lc: Launch, procs: int, threads: int) -> list[str]:
    return [
        lc.bin("rq"),
        "worker",
        "--url",
        lc.redis_url,
        "--worker-class",
        "rq.worker.SimpleWorker",
        "--quiet",
        "bench",
    ]


def _arq(lc: Launch, procs: int, threads: int) -> list[str]:
    return [lc.bin("arq"), "p_arq.WorkerSettings"]


def _luafloor(batch: int) -> Callable[[Launch, int, int], list[str]]:
    def cmd(lc: Launch, procs: int, threads: int) -> list[str]:
        return [str(lc.python), str(lc.peers_dir / "p_luafloor.py"), "worker", str(batch)]

    return cmd


def _pids(prefetch: int, pool: str | None = "thread") -> Callable[[Launch, int, int], list[str]]:
    """pool None: the worker's own default (an earlier tree, which knew no pools, ran thread slots)."""

    def cmd(lc: Launch, procs: int, threads: int) -> list[str]:
        return [
            str(lc.python),
            "-m",
            "pids",
            "worker",
            "--redis-url",
            lc.redis_url,
            "--cluster",
            "bench",
            "--concurrency",
            str(max(threads, 1)),
            "--prefetch",
            str(prefetch),
            "--allowed-modules",
            "p_pids",
            *(["--pool", pool] if pool else []),
            "--log-level",
            "WARNING",
        ]

    return cmd


def _streams(lc: Launch, procs: int, threads: int) -> list[str]:
    return [str(lc.python), str(lc.peers_dir / "p_streams.py"), "worker"]


PEERS: dict[str, Peer] = {
    p.name: p
    for p in [
        Peer("luafloor", "floor: EVALSHA claim 1 + EVALSHA ack", _luafloor(1), multi=False, floor=True),
        Peer(
            "luafloor100",
            "floor: EVALSHA claim 100 + ack 100",
            _luafloor(100),
            multi=False,
            floor=True,
            module="luafloor",
        ),
        Peer("streams", "floor: XREADGROUP COUNT 1 + XACK", _streams, multi=False, floor=True),
        Peer(
            "pids",
            "at-least-once (dead worker's claims released after heartbeat TTL, 3 s); thread slots",
            _pids(0),
            multi=False,
            module="pids",
        ),
        Peer(
            "pids-proc",
            "as pids, on process slots (the default: hard timeouts, contained crashes)",
            _pids(0, "process"),
            multi=False,
            module="pids",
        ),
        Peer(
            "pids-batch",
            "as pids; claims up to 100 per cycle (--prefetch 99), submit_batch",
            _pids(99),
            multi=False,
            module="pids",
            env={"BENCH_PIDS_BATCH": "1000"},
        ),
        Peer(
            "dramatiq",
            "at-least-once (requeued after 60 s heartbeat timeout)",
            _dramatiq,
            ("dramatiq[redis]==2.2.1", REDIS_PY),
        ),
        Peer(
            "celery",
            "at-least-once: acks_late (3600 s visibility timeout)",
            _celery,
            ("celery[redis]==5.7.0", REDIS_PY),
        ),
        Peer("huey", "at-most-once (dequeued task lost on crash)", _huey, ("huey==3.5.4", REDIS_PY)),
        Peer("rq", "SimpleWorker; no retry by default", _rq, ("rq==3.0.0", REDIS_PY), multi=False, recovery_slots=1),
        Peer(
            "arq",
            "poll 10 ms; re-run after job_timeout + 10 s (310 s)",
            _arq,
            ("arq==0.28.0", "redis[hiredis]==5.3.1"),
            multi=False,
        ),
    ]
}
FLOORS = [name for name, p in PEERS.items() if p.floor]
BASELINE_SUFFIX = "@base"


def baseline_peers(tree: Path, peers_dir: Path) -> dict[str, Peer]:
    """The PIDS rows again, run from an earlier source tree of PIDS (its worker/ on PYTHONPATH, for the
    workers and the enqueue side), for a same-run A/B of two versions: "pids@base", "pids-batch@base"."""
    path = f"{peers_dir}:{tree / 'worker'}"
    return {
        f"pids{BASELINE_SUFFIX}": Peer(
            f"pids{BASELINE_SUFFIX}",
            f"pids at {tree.name}",
            _pids(0, None),
            multi=False,
            module="pids",
            env={"PYTHONPATH": path},
        ),
        f"pids-batch{BASELINE_SUFFIX}": Peer(
            f"pids-batch{BASELINE_SUFFIX}",
            f"pids-batch at {tree.name}",
            _pids(99, None),
            multi=False,
            module="pids",
            env={"PYTHONPATH": path, "BENCH_PIDS_BATCH": "1000"},
        ),
    }


def this_python() -> Path:
    return Path(sys.executable)
