"""Every Redis key and channel PIDS uses, in one place.

All keys of a cluster share the hash tag `{cluster}` so a Redis Cluster keeps
them in one slot and multi-key Lua calls stay legal.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from .errors import ConfigError


@dataclass(frozen=True)
class Keys:
    cluster: str = "default"

    def __post_init__(self) -> None:
        if not self.cluster or any(c in self.cluster for c in "{}: \t\n"):
            raise ConfigError(f"invalid cluster name {self.cluster!r}: no braces, colons or spaces")

    @cached_property
    def prefix(self) -> str:
        return f"pids:{{{self.cluster}}}:"

    # queue structure
    @cached_property
    def pending(self) -> str:
        """ZSET task id -> queue order (priority first, then enqueue time)."""
        return self.prefix + "pending"

    @cached_property
    def pending_meta(self) -> str:
        """HASH task id -> "order\\tweight\\tpriority\\tposition\\tseq\\tenqueued_ms": what placement needs, in one call."""
        return self.prefix + "pending_meta"

    @cached_property
    def pending_by_weight(self) -> str:
        """ZSET task id -> weight of the pending tasks heavier than the default 1, so the window can
        hold the heaviest."""
        return self.prefix + "pending_by_weight"

    @cached_property
    def scheduled(self) -> str:
        """ZSET task id -> ms when a retry may run again (backoff)."""
        return self.prefix + "scheduled"

    @cached_property
    def running(self) -> str:
        """ZSET task id -> lease deadline in ms."""
        return self.prefix + "running"

    @cached_property
    def finals(self) -> str:
        """LIST "<finished ms>|<retention ms>|<task id>": tasks completed under their worker's own
        retention, in order of finish; the reaper's sweep (sweep.lua) deletes them once due."""
        return self.prefix + "finals"

    @cached_property
    def dead(self) -> str:
        """ZSET task id -> ms it was dead-lettered (failed for good)."""
        return self.prefix + "dead"

    @cached_property
    def stats(self) -> str:
        """HASH of cluster counters: enqueued, claimed, succeeded, failed, retried, cancelled, released,
        dead_retried (dead letters sent back to the queue)."""
        return self.prefix + "stats"

    # workers
    @cached_property
    def workers(self) -> str:
        """HASH worker id -> JSON (capacity, slots, speed, position, draining, deadline)."""
        return self.prefix + "workers"

    @cached_property
    def settings(self) -> str:
        """HASH worker id -> JSON of the settings in effect (kept apart from `workers`, which every
        snapshot reads)."""
        return self.prefix + "settings"

    @cached_property
    def loads(self) -> str:
        """HASH worker id -> sum of the weights of the tasks it holds."""
        return self.prefix + "loads"

    @cached_property
    def worker_totals(self) -> str:
        """HASH "<worker>:tasks|work|busy" -> completed count, weight and busy seconds."""
        return self.prefix + "worker_totals"

    @cached_property
    def draining(self) -> str:
        """SET of worker ids asked to drain (stop claiming, finish what they hold)."""
        return self.prefix + "draining"

    @cached_property
    def free_slots(self) -> str:
        """ZSET worker id -> free slots; the claim view reads only its top."""
        return self.prefix + "free_slots"

    @cached_property
    def deadlines(self) -> str:
        """ZSET worker id -> heartbeat deadline ms; finding dead workers reads only its bottom."""
        return self.prefix + "deadlines"

    @cached_property
    def idle(self) -> str:
        """ZSET worker id -> ms it found the queue empty; enqueue wakes only these."""
        return self.prefix + "idle"

    @cached_property
    def departed(self) -> str:
        """ZSET worker id -> ms it left the worker table; the oldest beyond a limit have their
        totals folded into one entry (lua/forget_worker.lua)."""
        return self.prefix + "departed"

    @cached_property
    def epoch(self) -> str:
        """STRING: the data set's epoch, made by the first script that needs one (lua/epoch.lua)."""
        return self.prefix + "epoch"

    @cached_property
    def reaper(self) -> str:
        """STRING with a TTL: the worker whose turn it is to release expired leases and dead workers."""
        return self.prefix + "reaper"

    def claims(self, worker_id: str) -> str:
        """SET of task ids the worker holds."""
        return f"{self.prefix}claims:{worker_id}"

    # tasks
    def task(self, task_id: str) -> str:
        """HASH of one task's spec and state."""
        return f"{self.prefix}task:{task_id}"

    def result(self, task_id: str) -> str:
        """STRING: the task's JSON result, fetched lazily."""
        return f"{self.prefix}result:{task_id}"

    def batch(self, batch_id: str) -> str:
        """LIST of the task ids of one batch, in item order."""
        return f"{self.prefix}batch:{batch_id}"

    # pub/sub (ids and sizes only, never payloads)
    @cached_property
    def new_work_channel(self) -> str:
        return self.prefix + "events:new"

    def wake_channel(self, worker_id: str) -> str:
        """Where enqueue.lua wakes one idle worker ("<new-work channel>:<worker id>")."""
        return f"{self.new_work_channel}:{worker_id}"

    @cached_property
    def done_channel(self) -> str:
        return self.prefix + "events:done"
