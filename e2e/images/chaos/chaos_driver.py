"""Runs in a pod beside a PidsCluster during a chaos test: submits tasks through the Python
client (a steady stream, each retried under its own id until acknowledged), watches the
queue's succeeded counter, waits for every acknowledged task, and prints one JSON line.

Environment: the cluster's ConfigMap (PIDS_REDIS_URL, PIDS_CLUSTER, PIDS_ACK_REPLICAS)
and PIDS_REDIS_PASSWORD; CHAOS_TAG, CHAOS_TASKS, CHAOS_INTERVAL, CHAOS_SECONDS (each task's
sleep), CHAOS_WAIT (how long to wait for the tasks at most).
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

import redis

from pids.client import Client
from pids.errors import PidsError, TaskLost

POLL_SECONDS = 0.2


def watch(client: Client, stop: threading.Event, samples: list[tuple[float, int | None]]) -> None:
    """(time, succeeded counter or None when Redis did not answer), at every change."""
    last: int | None = -1
    while not stop.is_set():
        try:
            value: int | None = int(client.redis.hget(client.keys.stats, "succeeded") or 0)
        except (redis.RedisError, OSError):
            value = None
        if value != last:
            samples.append((time.time(), value))
            last = value
        stop.wait(POLL_SECONDS)


def submit_all(client: Client, tag: str, count: int, interval: float, seconds: float) -> tuple[list[Any], list[float]]:
    """Every task, each retried under its own id until acknowledged; the handles and the
    times of the refused attempts."""
    handles, refused = [], []
    for i in range(count):
        due = time.monotonic() + interval
        while True:
            try:
                handles.append(client.submit("chaos_tasks:record", tag, i, seconds, task_id=f"{tag}-{i}"))
                break
            except (redis.RedisError, PidsError, OSError):
                refused.append(time.time())
                time.sleep(0.1)
        time.sleep(max(0.0, due - time.monotonic()))
    return handles, refused


def wait_all(client: Client, handles: list[Any], deadline: float) -> dict[str, list[str]]:
    """Task ids by outcome: a state name, "lost" (TaskLost) or "unfinished"."""
    open_handles, out = list(handles), {}
    while open_handles and time.monotonic() < deadline:
        try:
            states = client.wait(open_handles, timeout=max(1.0, deadline - time.monotonic()))
            for task_id, state in states.items():
                out.setdefault(state.value, []).append(task_id)
            open_handles = []
        except TaskLost as e:  # some are gone: set them apart, wait for the rest
            gone = {h.id for h in open_handles if _lost(client, h)}
            out.setdefault("lost", []).extend(sorted(gone))
            open_handles = [h for h in open_handles if h.id not in gone]
            if not gone:
                out.setdefault("errors", []).append(str(e))
                time.sleep(1)
        except (redis.RedisError, PidsError, OSError) as e:
            out.setdefault("errors", []).append(f"{type(e).__name__}: {e}")
            time.sleep(1)
    if open_handles:
        out["unfinished"] = [h.id for h in open_handles]
    return out


def _lost(client: Client, handle: Any) -> bool:
    try:
        client.task_info(handle)
    except TaskLost:
        return True
    return False


def main() -> None:
    tag = os.environ["CHAOS_TAG"]
    client = Client(os.environ["PIDS_REDIS_URL"], os.environ["PIDS_CLUSTER"])
    samples: list[tuple[float, int | None]] = []
    stop = threading.Event()
    watcher = threading.Thread(target=watch, args=(client, stop, samples), daemon=True)
    watcher.start()
    started = time.time()
    handles, refused = submit_all(
        client,
        tag,
        int(os.environ["CHAOS_TASKS"]),
        float(os.environ["CHAOS_INTERVAL"]),
        float(os.environ["CHAOS_SECONDS"]),
    )
    submitted = time.time()
    outcomes = wait_all(client, handles, time.monotonic() + float(os.environ["CHAOS_WAIT"]))
    stop.set()
    watcher.join()
    print(
        json.dumps(
            {
                "tag": tag,
                "started": started,
                "submitted": submitted,
                "finished": time.time(),
                "acknowledged": len(handles),
                "refused": refused,
                "outcomes": outcomes,
                "samples": samples,
            }
        )
    )


if __name__ == "__main__":
    main()
