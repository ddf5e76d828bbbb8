"""Task functions that misbehave on purpose, for the containment tests (workers started by the
fixtures allow this module and find it on PYTHONPATH)."""

from __future__ import annotations

import os
import signal
import sys
import time


def exit_process(code: int = 0) -> None:
    """sys.exit inside a task: SystemExit."""
    sys.exit(code)


def interrupt() -> None:
    raise KeyboardInterrupt


def base_exception() -> None:
    raise BaseException("not an Exception")


def hard_exit(code: int = 3) -> None:
    """End the process without any cleanup."""
    os._exit(code)


def kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def hold_gil(n: int) -> int:
    """One C call that keeps the GIL for its whole run (no other thread of the process runs)."""
    return sum(range(n))


def spin(seconds: float) -> int:
    """A pure-Python CPU loop: a soft timeout raised inside it stops it."""
    deadline = time.perf_counter() + seconds
    loops = 0
    while time.perf_counter() < deadline:
        loops += 1
    return loops


def block(seconds: float) -> float:
    """Blocked in one C call with SIGALRM masked (no bytecode runs, no signal handler): only a
    hard timeout stops it."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    try:
        time.sleep(seconds)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    return seconds


def big_result(size: int) -> str:
    return "x" * size


def deep_result(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth):
        value = [value]
    return value
