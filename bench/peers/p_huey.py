"""Huey with RedisHuey (blocking BRPOP dequeue). At-most-once: a task is
removed from the queue when dequeued, so a crashed consumer's task is lost."""

import os

import benchrec
from huey import RedisHuey

huey = RedisHuey("bench", url=os.environ["BENCH_REDIS_URL"])


@huey.task()
def noop() -> None:
    benchrec.noop()


@huey.task()
def lat(ts: float) -> None:
    benchrec.lat(ts)


@huey.task()
def rec(i: int, sleep: float) -> None:
    benchrec.rec(i, sleep)


def submitters() -> dict:
    return {"noop": noop, "lat": lat, "rec": rec}
