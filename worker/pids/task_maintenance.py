"""What is done to tasks outside the claim cycle, one Lua script each: give claims back (a dead
or leaving worker, expired leases), queue due retries, forget a worker, cancel, retain, retry
dead letters, sweep listed final tasks. The base of protocol.Protocol, which loads the scripts."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import redis

from .errors import TaskArgumentsError
from .keys import Keys
from .wire import DEPARTED_KEPT, DEPARTED_WORKERS, text, texts

ENQUEUE_CHUNK = 500  # tasks per enqueue.lua (and retry.lua) call
RETAIN_SLICE = 500  # tasks per retain.lua call: a long batch does not hold Redis in one script


class TaskMaintenance:
    redis: redis.Redis
    keys: Keys
    scripts: dict[str, Any]  # name -> registered script (protocol.Protocol)

    def release(self, worker_id: str, task_ids: Sequence[str], *, only_expired: bool, reason: str) -> tuple[int, int]:
        """Give tasks held by `worker_id` back; returns (requeued, dead-lettered)."""
        if not task_ids:
            return 0, 0
        k = self.keys
        key_list = [
            k.running,
            k.loads,
            k.claims(worker_id),
            k.stats,
            k.pending,
            k.pending_meta,
            k.dead,
            k.pending_by_weight,
            k.free_slots,
        ]
        for task_id, batch in zip(task_ids, self.batches(task_ids)):
            task_key = k.task(task_id)
            key_list.extend((task_key, k.batch(batch) if batch else task_key))
        argv = [worker_id, "1" if only_expired else "0", reason, k.new_work_channel, k.done_channel, *task_ids]
        requeued, dead = self.scripts["release"](keys=key_list, args=argv)
        return int(requeued), int(dead)

    def batches(self, task_ids: Sequence[str]) -> list[str]:
        """The batch of each task ("" for none or a task that is gone): a task's batch never changes."""
        pipe = self.redis.pipeline(transaction=False)
        for task_id in task_ids:
            pipe.hget(self.keys.task(task_id), "batch")
        return [text(b or "") for b in pipe.execute()]

    def promote(self, task_ids: Sequence[str]) -> int:
        """Queue those of these scheduled tasks whose backoff is over; returns how many."""
        if not task_ids:
            return 0
        k = self.keys
        keys = [k.scheduled, k.pending, k.pending_meta, k.pending_by_weight, *map(k.task, task_ids)]
        return int(self.scripts["promote"](keys=keys, args=list(task_ids)))

    def held_claims(self, worker_id: str) -> set[str]:
        """The ids in the worker's claims set in Redis."""
        return {text(t) for t in self.redis.smembers(self.keys.claims(worker_id))}

    def release_worker(self, worker_id: str, reason: str, keep: Sequence[str] = ()) -> tuple[int, int]:
        """Release everything a (dead, deleted or draining) worker holds in Redis, but `keep`."""
        kept = set(keep)
        held = sorted(self.held_claims(worker_id) - kept)
        return self.release(worker_id, held, only_expired=False, reason=reason)

    def forget_worker(self, worker_id: str) -> bool:
        k = self.keys
        keys = [
            k.workers,
            k.loads,
            k.claims(worker_id),
            k.draining,
            k.free_slots,
            k.deadlines,
            k.idle,
            k.worker_totals,
            k.departed,
        ]
        args = [worker_id, DEPARTED_KEPT, DEPARTED_WORKERS]
        return bool(self.scripts["forget_worker"](keys=keys, args=args))

    def cancel(self, task_id: str) -> str:
        k = self.keys
        task_key = k.task(task_id)
        batch = self.batches([task_id])[0]
        keys = [
            k.pending,
            k.pending_meta,
            k.scheduled,
            k.stats,
            task_key,
            k.pending_by_weight,
            k.batch(batch) if batch else task_key,
        ]
        return text(self.scripts["cancel"](keys=keys, args=[task_id, k.done_channel]))

    def retain(self, task_ids: Sequence[str], retention_ms: int | None) -> int:
        """Set how long these tasks stay once final (None: until deleted); returns how many exist."""
        k, found = self.keys, 0
        for start in range(0, len(task_ids), RETAIN_SLICE):
            ids = task_ids[start : start + RETAIN_SLICE]
            keys = [
                key
                for task_id, batch in zip(ids, self.batches(ids))
                for key in (k.task(task_id), k.result(task_id), k.batch(batch) if batch else k.task(task_id))
            ]
            found += int(self.scripts["retain"](keys=keys, args=["" if retention_ms is None else retention_ms]))
        return found

    def sweep(self, limit: int) -> tuple[int, int]:
        """Delete the listed final tasks that are due, from the head of the list, at most `limit`;
        returns (entries taken off the list, tasks deleted)."""
        k = self.keys
        now = self.server_ms()
        head = texts(self.redis.lrange(k.finals, 0, 0))
        if not head or not self._due(head[0], now):  # most turns: the oldest entry is not due yet
            return 0, 0
        due = texts(self.redis.lrange(k.finals, 0, limit - 1))
        if not self._due(due[-1], now):  # in finish order, so a page is usually due as a whole
            due = list(itertools.takewhile(lambda entry: self._due(entry, now), due))
        ids = [entry.split("|", 2)[-1] for entry in due]
        keys = [k.finals, *(key for task_id in ids for key in (k.task(task_id), k.result(task_id)))]
        popped, deleted = self.scripts["sweep"](keys=keys, args=due)
        return int(popped), int(deleted)

    @staticmethod
    def _due(entry: str, now: int) -> bool:
        """A finals entry is due once its retention has passed since its finish; a malformed one is
        due at once (sweep.lua takes it off and deletes nothing for it)."""
        finished, retention, _ = [*entry.split("|", 2), "", ""][:3]
        return not (finished.isdigit() and retention.isdigit()) or int(finished) + int(retention) <= now

    def server_ms(self) -> int:
        seconds, micros = self.redis.time()
        return int(seconds) * 1000 + int(micros) // 1000

    def retry(self, failed: Sequence[tuple[str, int]], more_attempts: int) -> list[str]:
        """Send dead-lettered tasks, given as (id, the attempt they were seen failing at), back to
        the queue with `more_attempts` more attempts; returns per task "requeued", "stale",
        "missing" or the state it was left in."""
        if not isinstance(more_attempts, int) or more_attempts < 1:
            raise TaskArgumentsError(f"a retry needs at least 1 more attempt, got {more_attempts!r}")
        k = self.keys
        outcomes: list[str] = []
        for start in range(0, len(failed), ENQUEUE_CHUNK):
            chunk = failed[start : start + ENQUEUE_CHUNK]
            keys = [k.pending, k.pending_meta, k.dead, k.stats, k.pending_by_weight]
            for (task_id, _), batch in zip(chunk, self.batches([task_id for task_id, _ in chunk])):
                keys += [k.task(task_id), k.batch(batch) if batch else k.task(task_id)]
            argv: list[Any] = [k.new_work_channel, more_attempts]
            for task_id, attempt in chunk:
                argv += [task_id, attempt]
            outcomes += texts(self.scripts["retry"](keys=keys, args=argv))
        return outcomes
