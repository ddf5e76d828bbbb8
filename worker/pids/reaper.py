"""The reaper's turn: one worker per heartbeat period queues the retries whose backoff is over,
gives back the tasks of dead workers and expired leases, trims the dead-letter set and deletes
listed final tasks that are due, so the cluster's reaping cost per second stays
the same however many workers there are."""

from __future__ import annotations

import time

from .protocol import Protocol
from .wire import parse_claim, text


def take_turn(protocol: Protocol, worker_id: str, period_ms: int) -> bool:
    """True for one worker per period."""
    return bool(protocol.redis.set(protocol.keys.reaper, worker_id, nx=True, px=period_ms))


def release_expired_leases(protocol: Protocol, limit: int = 1000) -> tuple[int, int]:
    """Find running tasks whose lease ran out and release them, owner by owner."""
    k = protocol.keys
    redis = protocol.redis
    expired = [
        text(t)
        for t in redis.zrangebyscore(k.running, "-inf", protocol.server_ms(), 0, limit)
        if isinstance(t, (str, bytes))
    ]
    if not expired:
        return 0, 0
    pipe = redis.pipeline(transaction=False)
    for task_id in expired:
        pipe.hget(k.task(task_id), "claim")
    by_worker: dict[str, list[str]] = {}
    orphans = []
    for task_id, claim in zip(expired, pipe.execute()):
        owner = parse_claim(text(claim or "")).worker
        if owner:
            by_worker.setdefault(owner, []).append(task_id)
        else:
            orphans.append(task_id)
    if orphans:  # in running without a claim (its record is gone): nothing to give back
        redis.zrem(k.running, *orphans)
    requeued = dead = 0
    for owner, ids in by_worker.items():
        r, d = protocol.release(owner, ids, only_expired=True, reason=f"lease expired on worker {owner}")
        requeued, dead = requeued + r, dead + d
    return requeued, dead


def queue_due_retries(protocol: Protocol, limit: int = 1000) -> int:
    """Retries whose backoff is over go back to the queue."""
    due = protocol.redis.zrangebyscore(protocol.keys.scheduled, "-inf", protocol.server_ms(), 0, limit)
    return protocol.promote([text(t) for t in due if isinstance(t, (str, bytes))])


def release_dead_workers(protocol: Protocol, me: str) -> list[str]:
    """Release the tasks of every worker whose heartbeat deadline passed, then forget it; never
    the caller's own (`me`: alive by definition, its next heartbeat registers it again)."""
    now = protocol.server_ms()
    dead = [
        text(w)
        for w in protocol.redis.zrangebyscore(protocol.keys.deadlines, "-inf", now, 0, 100)
        if isinstance(w, (str, bytes)) and text(w) != me
    ]
    for worker_id in dead:
        protocol.release_worker(worker_id, reason=f"worker {worker_id} stopped heartbeating")
        protocol.forget_worker(worker_id)
    return dead


def trim_dead_letters(protocol: Protocol, retention_ms: int) -> int:
    """Drop dead-letter entries older than the retention (their records expire on their own)."""
    if retention_ms <= 0:
        return 0
    return int(protocol.redis.zremrangebyscore(protocol.keys.dead, "-inf", protocol.server_ms() - retention_ms))


def sweep_finals(protocol: Protocol, budget_seconds: float, page: int = 1000) -> int:
    """Delete the listed final tasks that are due, oldest first, a page per script call (Redis
    stays responsive) until none is due or the budget is spent (the rest wait for the next
    turn); returns how many were deleted."""
    deleted, deadline = 0, time.monotonic() + budget_seconds
    while True:
        popped, n = protocol.sweep(page)
        deleted += n
        if popped < page or time.monotonic() > deadline:
            return deleted
