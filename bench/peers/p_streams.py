"""Floor: Redis Streams, XREADGROUP COUNT 1 then XACK per entry.

python p_streams.py worker      # runs until killed
"""

from __future__ import annotations

import os

import benchrec
import redis

STREAM, GROUP = "floor:{streams}:tasks", "workers"


def _conn() -> redis.Redis:
    return redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])


def _ensure_group(r: redis.Redis) -> None:
    try:
        r.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def worker() -> None:
    r = _conn()
    _ensure_group(r)
    consumer = f"c{os.getpid()}"
    while True:
        resp = r.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=1, block=100)
        if not resp:
            continue
        for entry_id, fields in resp[0][1]:
            kind = fields[b"k"]
            if kind == b"noop":
                benchrec.noop()
            elif kind == b"lat":
                benchrec.lat(float(fields[b"a"]))
            else:
                i, sleep = fields[b"a"].split(b",")
                benchrec.rec(int(i), float(sleep))
            r.xack(STREAM, GROUP, entry_id)


def submitters() -> dict:
    r = _conn()
    _ensure_group(r)
    return {
        "noop": lambda: r.xadd(STREAM, {"k": "noop"}),
        "lat": lambda ts: r.xadd(STREAM, {"k": "lat", "a": repr(ts)}),
        "rec": lambda i, sleep: r.xadd(STREAM, {"k": "rec", "a": f"{i},{sleep}"}),
    }


if __name__ == "__main__":
    worker()
