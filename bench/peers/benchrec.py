"""Task bodies shared by every peer: they record what ran, cheaply, for the harness.

Runs inside each peer's own venv, so stdlib only. Configured by environment:
BENCH_OUT (directory for records) and BENCH_WORKER (label of the worker group).

- ``noop()`` bumps a per-process counter in an mmap (count, first start, last
  end, then the end time of every 100th task): no syscall and no Redis command
  per task, so the processed rate is not distorted; the harness sums the files
  and, from the checkpoints, counts what ran while every process was busy.
- ``lat(ts)`` appends the end-to-end latency (now - enqueue time) to a file.
- ``rec(i, sleep)`` appends start/end lines with the task id and worker label
  (recovery runs: lost, duplicated, re-run times).
"""

from __future__ import annotations

import mmap
import os
import struct
import threading
import time

_FMT = "<qdd"  # count, first start, last end
CHECK_EVERY = 100  # after the header: the end time of task 100, 200, ... of this process
_CHECKS = 4096
_HEAD = struct.calcsize(_FMT)
_SIZE = _HEAD + 8 * _CHECKS
_state: dict[str, object] = {}
_lock = threading.Lock()  # peers with worker threads (Dramatiq, Huey threads) run noop() concurrently


def _out() -> str:
    return os.environ.get("BENCH_OUT", ".")


def _counter() -> list:
    pid = os.getpid()
    st = _state.get("cnt")
    if st is None or st[0] != pid:  # fresh, or inherited across a fork
        fd = os.open(os.path.join(_out(), f"cnt-{pid}"), os.O_RDWR | os.O_CREAT, 0o644)
        os.ftruncate(fd, _SIZE)
        st = [pid, mmap.mmap(fd, _SIZE), 0, 0.0]
        os.close(fd)
        _state["cnt"] = st
    return st  # type: ignore[return-value]


def _append_fd(kind: str) -> int:
    pid = os.getpid()
    key = kind + "-fd"
    st = _state.get(key)
    if st is None or st[0] != pid:
        fd = os.open(os.path.join(_out(), f"{kind}-{pid}"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        st = (pid, fd)
        _state[key] = st
    return st[1]  # type: ignore[index]


def noop() -> None:
    with _lock:
        st = _counter()
        now = time.time()
        if st[2] == 0:
            st[3] = now
        st[2] += 1
        end = time.time()
        struct.pack_into(_FMT, st[1], 0, st[2], st[3], end)
        check, rest = divmod(st[2], CHECK_EVERY)
        if rest == 0 and check <= _CHECKS:
            struct.pack_into("<d", st[1], _HEAD + 8 * (check - 1), end)


def lat(ts: float) -> None:
    """Record end-to-end latency; ts < 0 marks a warm-up task ("W" line)."""
    os.write(_append_fd("lat"), b"W\n" if ts < 0 else b"%.6f\n" % (time.time() - ts))


def _rec_line(tag: bytes, i: int) -> None:
    who = os.environ.get("BENCH_WORKER", "?").encode()
    os.write(_append_fd("rec"), b"%s %d %s %d %.6f\n" % (tag, i, who, os.getpid(), time.time()))


def rec_start(i: int) -> None:
    _rec_line(b"S", i)


def rec_end(i: int) -> None:
    _rec_line(b"E", i)


def rec(i: int, sleep: float) -> None:
    rec_start(i)
    time.sleep(sleep)
    rec_end(i)


def paced(n: int, rate: float):
    """Yield 0..n-1 at `rate` per second (0 = as fast as possible), on an absolute schedule."""
    t0 = time.perf_counter()
    for i in range(n):
        if rate > 0:
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        yield i
