"""Worker processes for the integration tests: the command line, its environment (the
misbehaving test tasks importable) and bad input builders; used by conftest and tests."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from pids.demo import WORKER_COMMAND

WorkerFactory = Callable[..., list[subprocess.Popen[bytes]]]
TASK_MODULES = os.path.join(os.path.dirname(__file__), "task_modules")  # pids_test_tasks: misbehaving tasks
TEST_TASKS = "pids.tasks,pids_test_tasks"


def worker_env() -> dict[str, str]:
    """The environment of worker processes: the test task module importable."""
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": TASK_MODULES + (os.pathsep + path if path else "")}


def worker_command(
    redis_url: str, cluster: str, worker_id: str, *, entry: tuple[str, ...] = WORKER_COMMAND, **options: object
) -> list[str]:
    """`python -m pids worker` (or `python` + `entry`) with quick test timings and `options` as flags."""
    settings = {"concurrency": 1, "heartbeat_seconds": 0.2, "lease_seconds": 2.0, "drain_seconds": 10, **options}
    command = [
        sys.executable,
        *entry,
        "--redis-url",
        redis_url,
        "--cluster",
        cluster,
        "--worker-id",
        worker_id,
        "--log-level",
        "WARNING",
    ]
    for name, value in settings.items():
        command += [f"--{name.replace('_', '-')}", str(value)]
    return command


def nested_list(depth: int) -> list[Any]:
    """A list `depth` levels deep, built without recursion (bad input for the nesting limit)."""
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def get(port: int, path: str) -> tuple[int, str]:
    """GET a worker's health server: (status, body), (0, "") while it does not listen."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:  # not listening (yet)
        return 0, ""
