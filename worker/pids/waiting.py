"""Waiting for tasks to end: on the completion channel (pub/sub), not by polling, with a periodic
re-check for events missed while disconnected. Redis blips are ridden out; an outage longer than
`reconnect_seconds` raises RedisUnavailable; a task that is gone raises TaskLost or TaskNotFound,
so no wait outlives its task."""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Mapping, Sequence

import redis

from .errors import RedisUnavailable, TaskLost, TaskNotFound, TaskTimeout
from .keys import Keys
from .task import TaskState
from .wire import text

RECHECK_SECONDS = 5.0  # states are read again this often, in case an event was missed
REDIS_TRANSIENT = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)


class Waiter:
    """Blocks until every task is final, for one client."""

    def __init__(self, client: redis.Redis, keys: Keys, reconnect_seconds: float, epoch_now: Callable[[], str]) -> None:
        self.redis = client
        self.keys = keys
        self.reconnect_seconds = reconnect_seconds
        self.epoch_now = epoch_now
        self.seen_epoch = ""  # the first epoch this client saw: a change since means data was lost

    def wait(self, ids: Sequence[str], epochs: Mapping[str, str], timeout: float | None) -> dict[str, TaskState]:
        """epochs: the epoch each task was submitted in, where known (so a missing task is lost)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        open_ids = set(ids)
        outage_since: float | None = None
        while True:
            try:
                open_ids = self._wait_connected(open_ids, epochs, deadline, len(ids), timeout)
                return self.states(ids, epochs)
            except REDIS_TRANSIENT as exc:
                now = time.monotonic()
                outage_since = outage_since or now
                if now - outage_since > self.reconnect_seconds:
                    raise RedisUnavailable(
                        f"Redis unreachable for {now - outage_since:.0f}s while waiting for "
                        f"{len(open_ids)} task(s): {exc}"
                    ) from exc
                if deadline is not None and now >= deadline:
                    raise TaskTimeout(
                        f"{len(open_ids)} of {len(ids)} task(s) not finished after {timeout}s "
                        f"(Redis unreachable: {exc})"
                    ) from exc
                time.sleep(min(1.0, 0.1 * (1 + random.random()) * 2 ** min(4, int(now - outage_since))))

    def _wait_connected(
        self, open_ids: set[str], epochs: Mapping[str, str], deadline: float | None, total: int, timeout: float | None
    ) -> set[str]:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        try:
            pubsub.subscribe(self.keys.done_channel)
            open_ids = self._still_open(open_ids, epochs)  # after subscribing: no event is missed in between
            last_check = time.monotonic()
            while open_ids:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TaskTimeout(f"{len(open_ids)} of {total} task(s) not finished after {timeout}s")
                message = pubsub.get_message(timeout=min(1.0, remaining) if remaining is not None else 1.0)
                if message is not None:
                    for event in text(message["data"]).split(" "):
                        open_ids.discard(event.rsplit(":", 1)[0])
                if time.monotonic() - last_check > RECHECK_SECONDS:
                    open_ids = self._still_open(open_ids, epochs)
                    last_check = time.monotonic()
            return open_ids
        finally:
            with contextlib.suppress(*REDIS_TRANSIENT):
                pubsub.close()

    def _still_open(self, ids: set[str], epochs: Mapping[str, str]) -> set[str]:
        return {i for i, s in self.states(sorted(ids), epochs).items() if not s.is_final}

    def states(self, ids: Sequence[str], epochs: Mapping[str, str] | None = None) -> dict[str, TaskState]:
        pipe = self.redis.pipeline(transaction=False)
        for task_id in ids:
            pipe.hget(self.keys.task(task_id), "state")
        states, missing = {}, []
        for task_id, state in zip(ids, pipe.execute()):
            if state is None:
                missing.append(task_id)
            else:
                states[task_id] = TaskState(text(state))
        if missing:
            raise self.gone(missing, epochs or {})
        return states

    def gone(self, missing: Sequence[str], epochs: Mapping[str, str]) -> TaskNotFound:
        """TaskLost for tasks known to have existed (submitted by this client, or the data set
        changed since it first looked), TaskNotFound otherwise."""
        shown = ", ".join(map(repr, missing[:5])) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        epoch = self.epoch_now()
        before = {epochs.get(t) or self.seen_epoch for t in missing} - {""}
        if before and before != {epoch}:
            return TaskLost(
                f"task(s) {shown} lost: Redis lost its data (epoch {', '.join(sorted(before))} -> "
                f"{epoch or 'none'}); submit them again (same ids are safe)"
            )
        if any(t in epochs for t in missing):
            return TaskLost(
                f"task(s) {shown} gone from cluster {self.keys.cluster!r}: Redis came back without "
                "them (restored from an older copy), or their records expired after their retention"
            )
        return TaskNotFound(
            f"no task {shown} in cluster {self.keys.cluster!r} (never submitted, or expired after its retention)"
        )
