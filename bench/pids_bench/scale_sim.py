"""Simulated PIDS workers for the scale sweep: many real `Worker` objects per process.

A driver process hosts n `pids.worker.Worker` instances (sharing one Redis
connection) and steps them in turn: the worker's own `_collect_outcomes` and
`_claim_cycle` (so the sweep follows the real claim cycle as it changes), one
beat of its heartbeat duties (heartbeat every heartbeat_seconds; every second
beat, release expired leases and dead workers, as `_heartbeat_loop` does),
and the claim loop's waits: straight on after a claim, its backoff when work
was left for others, else until new work is announced (one subscription per
driver stands in for each worker's own) or IDLE_WAIT. Tasks are no-ops that
finish the moment they are handed to a slot. On SIGTERM it prints one JSON
line: CPU seconds, cycles, tasks claimed.

The subscriber process holds n real subscriptions to the new-work channel (one
connection each, as real workers have) and counts the messages delivered.

    python -m pids_bench.scale_sim driver URL CLUSTER FIRST N PREFETCH
    python -m pids_bench.scale_sim subscribe URL CHANNEL N
"""

from __future__ import annotations

import asyncio
import heapq
import json
import queue
import random
import signal
import sys
import threading
import time
from typing import Any
from urllib.parse import urlparse

from pids import worker as worker_mod
from pids.connection import connect
from pids.execution import Outcome
from pids.keys import Keys
from pids.protocol import ClaimedTask
from pids.settings import WorkerSettings


class InstantSlots:
    """Stands in for execution.Slots: every task succeeds the moment it is submitted, no threads."""

    def __init__(self, count: int, allowed_modules: tuple[str, ...], on_outcome: Any) -> None:
        self.outcomes: queue.SimpleQueue[Outcome] = queue.SimpleQueue()

    def submit(self, task: ClaimedTask) -> None:
        self.outcomes.put(Outcome(task, True, result_json="null", seconds=0.0))

    def abandon_overdue(self, held: dict[str, ClaimedTask]) -> list[Outcome]:
        return []

    def seconds_to_next_timeout(self, held: dict[str, ClaimedTask]) -> float | None:
        return None

    def stop(self, count: int) -> None:
        pass


def _beat(w: worker_mod.Worker, beats: int) -> None:
    """One round of Worker._heartbeat_loop."""
    ttl_ms = int(w.settings.heartbeat_ttl_seconds * 1000)
    w.protocol.heartbeat(w.id, w.info(), ttl_ms, w._lease_ms, list(w.held))
    w.registered.set()
    if beats % 2 == 0:
        w.protocol.release_expired_leases()
        w.protocol.release_dead_workers()


def _not_mine_wait(empty_plans: int) -> float:
    """The claim loop's wait after planning work for others (exponential backoff in newer workers)."""
    first = getattr(worker_mod, "NOT_MINE_FIRST_WAIT", None)
    if first is None:
        return float(getattr(worker_mod, "NOT_MINE_WAIT", 0.02))
    return float(min(worker_mod.NOT_MINE_MAX_WAIT, first * 2 ** (empty_plans - 1)))


def worker_id(i: int) -> str:
    return f"sim-{i:05d}"


def driver(url: str, cluster: str, first: int, n: int, prefetch: int) -> None:
    worker_mod.Slots = InstantSlots  # type: ignore[attr-defined,assignment]
    client = connect(url)
    sims = [worker_mod.Worker(WorkerSettings(redis_url=url, cluster=cluster, worker_id=worker_id(first + i),
                                             concurrency=1, prefetch=prefetch), client=client) for i in range(n)]
    hb = sims[0].settings.heartbeat_seconds
    stop, woken = threading.Event(), threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threading.Thread(target=_listen, args=(url, Keys(cluster).new_work_channel, woken, stop), daemon=True).start()
    beats = [1] * n
    next_beat = [time.monotonic() + hb * random.random() for _ in range(n)]
    for w in sims:  # everyone registered before the first cycle
        _beat(w, 1)
    empty_plans = [0] * n
    gen = [0] * n  # only the newest heap entry of a worker counts
    heap = [(0.0, i, 0) for i in range(n)]
    idle: list[int] = []

    def schedule(at: float, i: int) -> None:
        gen[i] += 1
        heapq.heappush(heap, (at, i, gen[i]))

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
        _, i, g = heapq.heappop(heap)
        if g != gen[i]:
            continue
        w = sims[i]
        if now >= next_beat[i]:
            beats[i] += 1
            _beat(w, beats[i])
            next_beat[i] = now + hb * (0.9 + 0.2 * random.random())
        if hasattr(w, "_run_claimed"):  # one-slot workers run what they claimed themselves (older ones: in _claim_cycle)
            w._run_claimed()
        w._collect_outcomes()
        free = w.settings.concurrency + w.settings.prefetch - len(w.held)
        if free > 0:
            won, waiting = w._claim_cycle(free)
        else:
            w._send_completions()
            won, waiting = 0, False
        cycles += 1
        claimed += won
        empty_plans[i] = empty_plans[i] + 1 if waiting else 0
        if won or w.held:
            schedule(now, i)
        elif waiting:
            schedule(now + _not_mine_wait(empty_plans[i]), i)
        else:
            idle.append(i)  # woken by new work, or after IDLE_WAIT
            schedule(now + worker_mod.IDLE_WAIT, i)
    for w in sims:
        w._collect_outcomes()
        w._send_completions()
    print(json.dumps({"cpu_s": time.process_time() - cpu0, "cycles": cycles, "claimed": claimed}), flush=True)


def _listen(url: str, channel: str, woken: threading.Event, stop: threading.Event) -> None:
    """Wake this driver's workers on the shared channel and on any worker's own wake channel."""
    pubsub = connect(url).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel)
    pubsub.psubscribe(f"{channel}:*")
    while not stop.is_set():
        if pubsub.get_message(timeout=0.5) is not None:
            woken.set()


_MSG = b"*3\r\n$7\r\nmessage\r\n"


async def _subscriber(host: str, port: int, channels: list[str], counts: list[int], ready: asyncio.Event,
                      total: int) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    command = b"*%d\r\n$9\r\nSUBSCRIBE\r\n" % (len(channels) + 1)
    for channel in channels:
        c = channel.encode()
        command += b"$%d\r\n%s\r\n" % (len(c), c)
    writer.write(command)
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
    """n connections like the n workers' (the shared new-work channel and worker i's own wake
    channel); prints "ready", then on SIGTERM the number of messages delivered."""
    u = urlparse(url)
    counts = [0, 0]
    ready = asyncio.Event()
    tasks = [asyncio.create_task(_subscriber(u.hostname or "127.0.0.1", u.port or 6379,
                                             [channel, f"{channel}:{worker_id(i)}"], counts, ready, n))
             for i in range(n)]
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
