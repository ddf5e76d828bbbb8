"""What the client reads of a cluster: task records, a batch's progress, the queue and the
worker table (counters, loads, totals, settings), as typed snapshots."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import redis

from .keys import Keys
from .scoring import balance_score
from .task import TaskInfo, TaskState
from .wire import held_field, totals_field
from .wire import text as _text

INFO_FIELDS = (
    "id",
    "fn",
    "state",
    "claim",
    "max_attempts",
    "weight",
    "error",
    "batch",
    "enqueued_at",
    "first_claimed_at",
    "finished_at",
    "result_size",
)


@dataclass(frozen=True)
class WorkerInfo:
    id: str
    slots: int
    speed: float
    position: str
    load: float
    held: int
    draining: bool
    alive: bool
    tasks_done: int
    work_done: float
    busy_seconds: float


@dataclass(frozen=True)
class ClusterStats:
    backlog: int  # pending now
    scheduled: int  # waiting out a retry backoff
    running: int
    succeeded: int
    failed: int
    cancelled: int
    enqueued: int
    workers: list[WorkerInfo]

    @property
    def balance_score(self) -> float:
        return balance_score([w.work_done for w in self.workers if w.tasks_done or w.alive])


@dataclass(frozen=True)
class BatchStatus:
    batch_id: str
    total: int
    counts: dict[str, int]
    max_attempts_seen: int
    claimed_by: dict[str, int]
    wait_seconds_p50: float | None
    run_seconds_p50: float | None
    errors: list[str] = field(default_factory=list)
    states: dict[str, str] = field(default_factory=dict)  # task id -> state

    @property
    def done(self) -> bool:
        return self.total > 0 and sum(self.counts.get(s.value, 0) for s in TaskState if s.is_final) == self.total

    @property
    def failed(self) -> int:
        return self.counts.get(TaskState.FAILED.value, 0)


def task_infos(client: redis.Redis, keys: Keys, task_ids: Sequence[str]) -> list[TaskInfo | None]:
    """The records of many tasks in one round trip, in order (None for a task that does not exist)."""
    pipe = client.pipeline(transaction=False)
    for task_id in task_ids:
        pipe.hmget(keys.task(task_id), INFO_FIELDS)
    rows = pipe.execute() if task_ids else []
    return [
        TaskInfo.from_hash({f: _text(v) for f, v in zip(INFO_FIELDS, row) if v is not None}) if row[0] else None
        for row in rows
    ]


def batch_status(batch_id: str, ids: list[str], infos: Sequence[TaskInfo | None]) -> BatchStatus:
    counts: Counter[str] = Counter()
    states: dict[str, str] = {}
    claimed_by: Counter[str] = Counter()
    waits: list[float] = []
    runs: list[float] = []
    errors: list[str] = []
    max_attempts = 0
    for task_id, info in zip(ids, infos):
        if info is None:  # listed, but its record is gone: not in `states`
            continue
        counts[info.state.value] += 1
        states[task_id] = info.state.value
        max_attempts = max(max_attempts, info.attempt)
        if info.worker:
            claimed_by[info.worker] += 1
        if info.wait_seconds is not None:
            waits.append(info.wait_seconds)
        if info.state is TaskState.SUCCEEDED and info.run_seconds is not None:
            runs.append(info.run_seconds)
        if info.error and info.state is TaskState.FAILED and len(errors) < 5:
            errors.append(f"{info.id}: {info.error.splitlines()[0]}")
    return BatchStatus(
        batch_id,
        len(ids),
        dict(counts),
        max_attempts,
        dict(claimed_by),
        float(np.median(waits)) if waits else None,
        float(np.median(runs)) if runs else None,
        errors,
        states,
    )


def cluster_stats(client: redis.Redis, k: Keys, now_ms: int) -> ClusterStats:
    pipe = client.pipeline(transaction=False)
    for queue in (k.pending, k.scheduled, k.running):
        pipe.zcard(queue)
    for table in (k.stats, k.workers, k.loads, k.worker_totals):
        pipe.hgetall(table)
    pending, scheduled, running, raw_stats, raw_workers, raw_loads, raw_totals = pipe.execute()
    stats = {_text(a): int(float(b)) for a, b in raw_stats.items()}
    loads = {_text(a): float(b) for a, b in raw_loads.items()}
    totals = {_text(a): float(b) for a, b in raw_totals.items()}
    infos = {_text(a): json.loads(b) for a, b in raw_workers.items()}
    names = set(infos) | {key.rsplit(":", 1)[0] for key in totals}
    workers = []
    for w in sorted(names):
        info = infos.get(w, {})
        workers.append(
            WorkerInfo(
                id=w,
                slots=int(info.get("slots", 0)),
                speed=float(info.get("speed", 1.0)),
                position=str(info.get("position", "")),
                load=loads.get(w, 0.0),
                held=int(loads.get(held_field(w), 0)),
                draining=bool(info.get("draining", False)),
                alive=info.get("deadline", 0) > now_ms,
                tasks_done=int(totals.get(totals_field(w, "tasks"), 0)),
                work_done=totals.get(totals_field(w, "work"), 0.0),
                busy_seconds=totals.get(totals_field(w, "busy"), 0.0),
            )
        )
    return ClusterStats(
        backlog=pending,
        scheduled=scheduled,
        running=running,
        succeeded=stats.get("succeeded", 0),
        failed=stats.get("failed", 0),
        cancelled=stats.get("cancelled", 0),
        enqueued=stats.get("enqueued", 0),
        workers=workers,
    )


def worker_settings(client: redis.Redis, k: Keys) -> dict[str, dict[str, Any]]:
    """Worker id -> the settings in effect, of the workers in the worker table; the entries of
    workers that left it are deleted here (a worker that dies cannot delete its own)."""
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(k.settings)
    pipe.hkeys(k.workers)
    raw_settings, known = pipe.execute()
    live = {_text(w) for w in known}
    settings: dict[str, dict[str, Any]] = {_text(w): json.loads(v) for w, v in raw_settings.items()}
    gone = [w for w in settings if w not in live]
    if gone:
        client.hdel(k.settings, *gone)
    return {w: s for w, s in sorted(settings.items()) if w in live}
