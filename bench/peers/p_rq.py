"""RQ with SimpleWorker (runs jobs in the worker process, no fork per job).
No retry by default: a dead worker's job ends in the FailedJobRegistry."""

import os

import benchrec
from redis import Redis
from rq import Queue


def noop() -> None:
    benchrec.noop()


def lat(ts: float) -> None:
    benchrec.lat(ts)


def rec(i: int, sleep: float) -> None:
    benchrec.rec(i, sleep)


def submitters() -> dict:
    q = Queue("bench", connection=Redis.from_url(os.environ["BENCH_REDIS_URL"]))
    return {
        "noop": lambda: q.enqueue(noop),
        "lat": lambda ts: q.enqueue(lat, ts),
        "rec": lambda i, sleep: q.enqueue(rec, i, sleep),
    }
