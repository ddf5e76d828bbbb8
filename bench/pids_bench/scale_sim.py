"""Simulated PIDS workers for the scale sweep: many per process, each running the real claim cycle.

A driver process hosts n `SimWorker`s (sharing one Redis connection). Each drives the worker's
own pure claim cycle (`pids.cycle.ClaimCycle`) and completion ledger (`pids.ledger.Ledger`)
through `Protocol.cycle`, beats as the heartbeat thread does (every heartbeat_seconds; every
second beat it also releases expired leases and dead workers), and waits as the claim loop
does: straight on after a claim, its backoff when work was left for others, else until new
work is announced (one subscription per driver stands in for each worker's own) or IDLE_WAIT.
Tasks are no-ops that succeed the moment they are claimed. On SIGTERM it prints one JSON
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
import random
import signal
import sys
import threading
import time
from urllib.parse import urlparse

from pids import reaper
from pids.claim_loop import IDLE_WAIT, NOT_MINE_FIRST_WAIT, NOT_MINE_MAX_WAIT
from pids.connection import connect
from pids.cycle import ClaimCycle, CycleConfig
from pids.execution import Outcome
from pids.keys import Keys
from pids.ledger import Ledger
from pids.physics import worker_policy
from pids.protocol import Protocol
from pids.settings import WorkerSettings


class SimWorker:
    """A worker without slots: its claim cycle, ledger and heartbeat, where every task succeeds the
    moment it is claimed. Many of them share one process, so the benchmark measures Redis."""

    def __init__(self, protocol: Protocol, settings: WorkerSettings) -> None:
        self.protocol = protocol
        self.settings = settings
        self.id = settings.worker_id
        self.cycle = ClaimCycle(CycleConfig.of(settings), worker_policy(settings))
        self.ledger = Ledger()

    def beat(self, beats: int) -> None:
        s = self.settings
        info = {"slots": s.concurrency, "prefetch": s.prefetch, "speed": s.speed, "capacity": s.capacity}
        self.protocol.heartbeat(self.id, info, int(s.heartbeat_ttl_seconds * 1000), int(s.lease_seconds * 1000))
        if beats % 2 == 0:
            reaper.release_expired_leases(self.protocol)
            reaper.release_dead_workers(self.protocol, self.id)

    def turn(self) -> tuple[int, bool]:
        """One turn of the claim loop, as Worker._claim makes it: (tasks claimed, work left to others)."""
        free = self.settings.concurrency + self.settings.prefetch
        step = None
        for _ in range(2):
            request = self.cycle.request(free, time.perf_counter(), self.ledger.next_completions(), self.ledger.totals)
            reply = self.protocol.cycle(request)
            self.ledger.sent(request.completions, request.totals, reply.completed)
            step = self.cycle.absorb(request, reply, free, time.perf_counter())
            if step.wake:
                self.protocol.wake(step.wake)
            if not step.again:
                break
        for task in step.won if step else []:
            self.ledger.record(Outcome(task, True, result_json="null", seconds=0.0))
        if step is None or not step.won:
            return 0, step is not None and step.pending != 0
        return len(step.won), False

    def flush(self) -> None:
        while self.ledger.completions or self.ledger.totals.tasks:
            request = self.cycle.request(
                0, time.perf_counter(), self.ledger.next_completions(), self.ledger.totals, claiming=False
            )
            self.ledger.sent(request.completions, request.totals, self.protocol.cycle(request).completed)


def _not_mine_wait(empty_plans: int) -> float:
    """The claim loop's wait after planning work for others."""
    return float(min(NOT_MINE_MAX_WAIT, NOT_MINE_FIRST_WAIT * 2 ** (empty_plans - 1)))


def worker_id(i: int) -> str:
    return f"sim-{i:05d}"


def driver(url: str, cluster: str, first: int, n: int, prefetch: int) -> None:
    protocol = Protocol(connect(url), Keys(cluster))
    sims = [
        SimWorker(
            protocol,
            WorkerSettings(
                redis_url=url, cluster=cluster, worker_id=worker_id(first + i), concurrency=1, prefetch=prefetch
            ),
        )
        for i in range(n)
    ]
    hb = sims[0].settings.heartbeat_seconds
    stop, woken = threading.Event(), threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threading.Thread(target=_listen, args=(url, Keys(cluster).new_work_channel, woken, stop), daemon=True).start()
    beats = [1] * n
    next_beat = [time.monotonic() + hb * random.random() for _ in range(n)]
    for w in sims:  # everyone registered before the first cycle
        w.beat(1)
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
            w.beat(beats[i])
            next_beat[i] = now + hb * (0.9 + 0.2 * random.random())
        won, waiting = w.turn()
        cycles += 1
        claimed += won
        empty_plans[i] = empty_plans[i] + 1 if waiting else 0
        if won:
            schedule(now, i)
        elif waiting:
            schedule(now + _not_mine_wait(empty_plans[i]), i)
        else:
            idle.append(i)  # woken by new work, or after IDLE_WAIT
            schedule(now + IDLE_WAIT, i)
    for w in sims:
        w.flush()
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


async def _subscriber(
    host: str, port: int, channels: list[str], counts: list[int], ready: asyncio.Event, total: int
) -> None:
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
        tail = buf[-(len(_MSG) - 1) :]


async def subscribe(url: str, channel: str, n: int) -> None:
    """n connections like the n workers' (the shared new-work channel and worker i's own wake
    channel); prints "ready", then on SIGTERM the number of messages delivered."""
    u = urlparse(url)
    counts = [0, 0]
    ready = asyncio.Event()
    tasks = [
        asyncio.create_task(
            _subscriber(
                u.hostname or "127.0.0.1", u.port or 6379, [channel, f"{channel}:{worker_id(i)}"], counts, ready, n
            )
        )
        for i in range(n)
    ]
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
