"""Built-in tasks, allowed by default: enough to try PIDS and to benchmark it."""

from __future__ import annotations

import time
from typing import Any


def noop() -> None:
    """Do nothing: measures the queue, not the work."""


def sleep(seconds: float) -> float:
    """Wait without using CPU (I/O-bound work)."""
    time.sleep(seconds)
    return seconds


def busy(seconds: float) -> int:
    """Spin the CPU for `seconds` (CPU-bound work); returns the loop count."""
    deadline = time.perf_counter() + seconds
    loops = 0
    while time.perf_counter() < deadline:
        loops += 1
    return loops


def echo(value: Any) -> Any:
    return value


def square(x: float) -> float:
    return x * x


def fail(message: str = "failing on purpose") -> None:
    """Always raises: a poison task for testing retries and the dead-letter set."""
    raise RuntimeError(message)
