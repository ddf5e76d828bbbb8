"""Celery, Redis transport, prefork pool, acks_late (at-least-once: an unacked
message returns after the transport's visibility timeout, 3600 s by default)."""

import os

import benchrec
from celery import Celery

app = Celery("bench", broker=os.environ["BENCH_REDIS_URL"])
app.conf.update(
    task_acks_late=True,
    task_ignore_result=True,
    task_default_queue="bench",
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)


@app.task(name="bench.noop")
def noop() -> None:
    benchrec.noop()


@app.task(name="bench.lat")
def lat(ts: float) -> None:
    benchrec.lat(ts)


@app.task(name="bench.rec")
def rec(i: int, sleep: float) -> None:
    benchrec.rec(i, sleep)


def submitters() -> dict:
    return {"noop": noop.delay, "lat": lat.delay, "rec": rec.delay}
