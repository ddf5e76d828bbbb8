"""Floor: a bare Lua claim + ack loop, no task queue library around it.

Claim: one EVALSHA that RPOPs up to B items from a list and records each in a
running ZSET with a lease deadline. Ack: one EVALSHA that ZREMs them. An item
is "<seq>|<kind>|<args>"; the worker runs the matching benchrec function.

    python p_luafloor.py worker [BATCH]     # runs until killed
"""

from __future__ import annotations

import itertools
import os
import sys
import time

import benchrec
import redis

PENDING, RUNNING = "floor:{lua}:pending", "floor:{lua}:running"
CLAIM = """
local out = {}
for i = 1, tonumber(ARGV[2]) do
  local item = redis.call('RPOP', KEYS[1])
  if not item then break end
  redis.call('ZADD', KEYS[2], ARGV[1], item)
  out[#out + 1] = item
end
return out
"""
ACK = "return redis.call('ZREM', KEYS[1], unpack(ARGV))"


def _conn() -> redis.Redis:
    return redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])


def encode(kind: str, args: tuple) -> str:
    return "|".join([f"{os.getpid()}.{next(_seq)}", kind, *map(str, args)])


_seq = itertools.count()


def run(item: bytes) -> None:
    _, kind, *args = item.decode().split("|")
    if kind == "noop":
        benchrec.noop()
    elif kind == "lat":
        benchrec.lat(float(args[0]))
    else:
        benchrec.rec(int(args[0]), float(args[1]))


def worker(batch: int) -> None:
    r = _conn()
    claim, ack = r.script_load(CLAIM), r.script_load(ACK)
    while True:
        items = r.evalsha(claim, 2, PENDING, RUNNING, int(time.time() * 1000) + 30_000, batch)
        if not items:
            time.sleep(0.001)
            continue
        for item in items:
            run(item)
        r.evalsha(ack, 1, RUNNING, *items)


def submitters() -> dict:
    r = _conn()
    return {
        "noop": lambda: r.lpush(PENDING, encode("noop", ())),
        "lat": lambda ts: r.lpush(PENDING, encode("lat", (ts,))),
        "rec": lambda i, sleep: r.lpush(PENDING, encode("rec", (i, sleep))),
    }


if __name__ == "__main__":
    worker(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
