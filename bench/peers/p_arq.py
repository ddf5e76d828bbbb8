"""arq (asyncio) with a 10 ms poll delay (default 0.5 s). A job stays queued
while a worker runs it under an in-progress key that expires after
job_timeout + 10 s (310 s by default): then another worker may run it again."""

import asyncio
import os

import benchrec
from arq import create_pool
from arq.connections import RedisSettings

REDIS = RedisSettings.from_dsn(os.environ["BENCH_REDIS_URL"])


async def noop(ctx: dict) -> None:
    benchrec.noop()


async def lat(ctx: dict, ts: float) -> None:
    benchrec.lat(ts)


async def rec(ctx: dict, i: int, sleep: float) -> None:
    benchrec.rec_start(i)
    await asyncio.sleep(sleep)
    benchrec.rec_end(i)


class WorkerSettings:
    functions = (noop, lat, rec)
    redis_settings = REDIS
    poll_delay = float(os.environ.get("BENCH_ARQ_POLL", "0.01"))
    max_jobs = int(os.environ.get("BENCH_SLOTS", "10"))


async def async_submitters() -> dict:
    pool = await create_pool(REDIS)
    return {
        "noop": lambda: pool.enqueue_job("noop"),
        "lat": lambda ts: pool.enqueue_job("lat", ts),
        "rec": lambda i, sleep: pool.enqueue_job("rec", i, sleep),
    }
