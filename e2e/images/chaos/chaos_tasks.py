"""Task functions of the chaos e2e tests. Each execution is counted in a ledger Redis
(CHAOS_LEDGER_URL) that no test disturbs, apart from the queue's own bookkeeping: a hash
per tag counts, per item index, the executions that started and those that ran to the end."""

from __future__ import annotations

import os
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

_ledger: redis.Redis | None = None


def ledger() -> redis.Redis:
    global _ledger  # noqa: PLW0603 - one connection pool per worker process
    if _ledger is None:
        # no retries: a retried HINCRBY whose reply was lost would count twice
        _ledger = redis.Redis.from_url(os.environ["CHAOS_LEDGER_URL"], socket_timeout=5, retry=Retry(NoBackoff(), 0))
    return _ledger


def record(tag: str, index: int, seconds: float) -> int:
    """Sleep `seconds`, counting the start and the end of this execution under `tag`."""
    ledger().hincrby(f"started:{tag}", str(index), 1)
    time.sleep(seconds)
    ledger().hincrby(f"finished:{tag}", str(index), 1)
    return index
