"""Simulated PIDS workers for the scale sweep: many worker identities per process.

A driver process hosts n simulated workers and runs, for each in turn, the
real worker's claim cycle (pids/worker.py `_claim_cycle`: completions pipelined
with the snapshot, placement over the live-worker table, one atomic claim) and
its heartbeat duties (heartbeat every heartbeat_seconds; every second beat,
release expired leases and dead workers), with the real waits: straight on
after a claim, NOT_MINE_WAIT when work is planned for others, and on new-work
events (one subscription per driver stands in for each worker's own) or
IDLE_WAIT otherwise. No-op tasks complete instantly. On SIGTERM it prints one
JSON line: CPU seconds, cycles, tasks claimed.

The subscriber process holds n real subscriptions to the new-work channel (one
connection each, as real workers have) and counts the messages delivered.

    python -m pids.bench.scale_sim driver URL CLUSTER FIRST N PREFETCH
    python -m pids.bench.scale_sim subscribe URL CHANNEL N
"""

from __future__ import annotations

import asyncio
import heapq
import json
import random
import signal
import sys
import threading
import time
from urllib.parse import urlparse

import numpy as np

from ..connection import connect
from ..keys import Keys
from ..protocol import Completion, Protocol
from ..settings import WorkerSettings
from ..view import task_window, worker_table
from ..worker import FALLBACK_AFTER, IDLE_WAIT, NOT_MINE_WAIT, make_worker_policy


class SimWorker:
    def __init__(self, wid: str, prefetch: int) -> None:
        self.id = wid
        self.free = 1 + prefetch
        self.done: list[Completion] = []
        self.empty_plans = 0
        self.beats = 0
        self.next_beat = 0.0
        self.gen = 0  # only the newest heap entry of a worker counts


def driver(url: str, cluster: str, first: int, n: int, prefetch: int) -> None:
    settings = WorkerSettings(redis_url=url, cluster=cluster, concurrency=1, prefetch=prefetch)
    r = connect(url)
    proto = Protocol(r, Keys(cluster))
    policy = make_worker_policy(settings)
    lease_ms, ttl_ms = int(settings.lease_seconds * 1000), int(settings.heartbeat_ttl_seconds * 1000)
    sims = [SimWorker(f"sim-{first + i:05d}", prefetch) for i in range(n)]
    stop, woken = threading.Event(), threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threading.Thread(target=_listen, args=(url, proto.keys.new_work_channel, woken, stop), daemon=True).start()
    info = {"slots": 1, "prefetch": prefetch, "speed": 1.0, "capacity": 1.0, "position": "", "draining": False}
    for w in sims:  # register everyone before the first cycle
        proto.heartbeat(w.id, info, ttl_ms, lease_ms)
        w.next_beat = time.monotonic() + settings.heartbeat_seconds * random.random()
    heap = [(0.0, i, 0) for i in range(n)]
    idle: list[int] = []  # waiting for new work (or IDLE_WAIT)

    def schedule(at: float, i: int) -> None:
        sims[i].gen += 1
        heapq.heappush(heap, (at, i, sims[i].gen))
    cycles = claimed = 0
    cpu0 = time.process_time()
    while not stop.is_set():
        now = time.monotonic()
        if woken.is_set():
            woken.clear()
            for i in idle:
                schedule(now, i)
            idle.clear()
        if not heap or heap[0][0] > now:
            woken.wait(min(0.05, heap[0][0] - now) if heap else 0.05)
            continue
        _, i, gen = heapq.heappop(heap)
        w = sims[i]
        if gen != w.gen:
            continue
        if now >= w.next_beat:
            proto.heartbeat(w.id, info, ttl_ms, lease_ms)
            w.beats += 1
            if w.beats % 2 == 0:
                proto.release_expired_leases()
                proto.release_dead_workers()
            w.next_beat = now + settings.heartbeat_seconds * (0.9 + 0.2 * random.random())
        won, waiting = _cycle(proto, policy, w, settings.window, lease_ms)
        cycles += 1
        claimed += won
        if won:
            schedule(now, i)
        elif waiting:
            schedule(now + NOT_MINE_WAIT, i)
        else:
            idle.append(i)  # woken by new work, or after IDLE_WAIT
            schedule(now + IDLE_WAIT, i)
    if any(w.done for w in sims):
        for w in sims:
            proto.complete(w.id, w.done)
    print(json.dumps({"cpu_s": time.process_time() - cpu0, "cycles": cycles, "claimed": claimed}), flush=True)


def _cycle(proto: Protocol, policy, w: SimWorker, window_size: int, lease_ms: int) -> tuple[int, bool]:  # type: ignore[no-untyped-def]
    """The claim cycle of pids/worker.py, for a worker whose tasks finish instantly."""
    (_accepted, _stale), snapshot = proto.complete_and_snapshot(w.id, w.done, window_size)
    w.done = []
    window = task_window(snapshot)
    if len(window) == 0:
        return 0, False
    table = worker_table(snapshot, w.id, w.free)
    if w.id not in table.ids:
        return 0, True
    me = table.ids.index(w.id)
    plan = policy.assign(table, window, me)
    mine = [window.ids[k] for k in np.flatnonzero(plan == me)[: w.free]]
    if mine:
        w.empty_plans = 0
    else:
        w.empty_plans += 1
        if w.empty_plans < FALLBACK_AFTER:
            return 0, True
        mine = window.ids[: w.free]
    won = proto.claim(w.id, mine, lease_ms)
    w.done = [Completion(t.id, t.attempt, "null", 0.0) for t in won]
    return len(won), not won


def _listen(url: str, channel: str, woken: threading.Event, stop: threading.Event) -> None:
    pubsub = connect(url).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel)
    while not stop.is_set():
        if pubsub.get_message(timeout=0.5) is not None:
            woken.set()


_MSG = b"*3\r\n$7\r\nmessage\r\n"


async def _subscriber(host: str, port: int, channel: str, counts: list[int], ready: asyncio.Event, total: int) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    c = channel.encode()
    writer.write(b"*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%s\r\n" % (len(c), c))
    await writer.drain()
    counts[1] += 1
    if counts[1] >= total:
        ready.set()
    tail = b""
    while data := await reader.read(65536):
        buf = tail + data
        counts[0] += buf.count(_MSG)
        tail = buf[-(len(_MSG) - 1):]


async def subscribe(url: str, channel: str, n: int) -> None:
    """n subscriptions; prints "ready", then on SIGTERM the number of messages delivered."""
    u = urlparse(url)
    counts = [0, 0]
    ready = asyncio.Event()
    tasks = [asyncio.create_task(_subscriber(u.hostname or "127.0.0.1", u.port or 6379, channel, counts, ready, n))
             for _ in range(n)]
    await ready.wait()
    await asyncio.sleep(0.2)
    print("ready", flush=True)
    done = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, done.set)
    await done.wait()
    print(json.dumps({"messages": counts[0]}), flush=True)
    for t in tasks:
        t.cancel()


if __name__ == "__main__":
    if sys.argv[1] == "driver":
        driver(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
    else:
        asyncio.run(subscribe(sys.argv[2], sys.argv[3], int(sys.argv[4])))
