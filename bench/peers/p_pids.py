"""PIDS itself, driven exactly like the peers: tasks here, workers via `pids worker`.

At-least-once: a worker that stops heartbeating (TTL 3 heartbeats) has its
claims released by any live worker. BENCH_PIDS_BATCH=N makes the enqueue side
use submit_batch in chunks of N (no-op and recovery tasks; latency tasks are
always submitted one by one).
"""

import os
import uuid

import benchrec

from pids.client import Client

CLUSTER = "bench"


def noop() -> None:
    benchrec.noop()


def lat(ts: float) -> None:
    benchrec.lat(ts)


def rec(i: int, sleep: float) -> None:
    benchrec.rec(i, sleep)


def submitters() -> dict:
    client = Client(os.environ["BENCH_REDIS_URL"], cluster=CLUSTER)
    chunk = int(os.environ.get("BENCH_PIDS_BATCH", "0"))
    lat_fn = lambda ts: client.submit("p_pids:lat", ts)  # noqa: E731
    if chunk <= 0:
        return {
            "noop": lambda: client.submit("p_pids:noop"),
            "lat": lat_fn,
            "rec": lambda i, sleep: client.submit("p_pids:rec", i, sleep),
        }
    buffers: dict[str, list] = {"p_pids:noop": [], "p_pids:rec": []}

    def add(fn: str, args: list) -> None:
        buffers[fn].append(args)
        if len(buffers[fn]) >= chunk:
            flush_one(fn)

    def flush_one(fn: str) -> None:
        if buffers[fn]:
            client.submit_batch(uuid.uuid4().hex, fn, buffers[fn])
            buffers[fn] = []

    return {
        "noop": lambda: add("p_pids:noop", []),
        "lat": lat_fn,
        "rec": lambda i, sleep: add("p_pids:rec", [i, sleep]),
        "flush": lambda: [flush_one(fn) for fn in list(buffers)],
    }
