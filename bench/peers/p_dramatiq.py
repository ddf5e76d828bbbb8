"""Dramatiq with its default Redis broker (at-least-once: unacked messages of a
worker whose heartbeat stops are requeued after heartbeat_timeout, 60 s)."""

import os

import benchrec
import dramatiq
from dramatiq.brokers.redis import RedisBroker

broker = RedisBroker(url=os.environ["BENCH_REDIS_URL"])
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="bench", max_retries=0)
def noop() -> None:
    benchrec.noop()


@dramatiq.actor(queue_name="bench", max_retries=0)
def lat(ts: float) -> None:
    benchrec.lat(ts)


@dramatiq.actor(queue_name="bench", max_retries=0, time_limit=60_000)
def rec(i: int, sleep: float) -> None:
    benchrec.rec(i, sleep)


def submitters() -> dict:
    return {"noop": noop.send, "lat": lat.send, "rec": rec.send}
