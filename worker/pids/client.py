"""The client: submit tasks, follow them, fetch results lazily, inspect the cluster."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import redis

from .connection import PASSWORD_ENV, connect
from .errors import ConfigError, TaskFailed, TaskNotFound
from .keys import Keys
from .limits import check_retention
from .protocol import Protocol
from .scoring import balance_score
from .settings import env_var
from .task import RETENTION_SECONDS, TaskInfo, TaskOptions, TaskSpec, TaskState, batch_specs, retention_ms
from .waiting import Waiter
from .wire import held_field, totals_field
from .wire import text as _text

RECONNECT_SECONDS = 30.0  # how long waits ride out a Redis outage before RedisUnavailable
KEEP = None  # retention=KEEP: a final task's record stays until deleted

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


def retention_from_env(raw: str) -> float | None:
    """PIDS_RETENTION_SECONDS: seconds (> 0), 0 to keep final tasks until deleted, unset for the default."""
    if raw.strip() == "":
        return RETENTION_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        raise ConfigError(f"PIDS_RETENTION_SECONDS must be a number of seconds, got {raw!r}") from None
    return KEEP if seconds == 0 else seconds


class TaskHandle:
    """A submitted task: ask its status, wait for its result."""

    def __init__(self, client: Client, task_id: str, epoch: str = "") -> None:
        self.client = client
        self.id = task_id
        self.epoch = epoch  # the data set it was submitted to: if Redis loses it, waits raise TaskLost

    def status(self) -> TaskState:
        return self.client.task_info(self.id).state

    def info(self) -> TaskInfo:
        return self.client.task_info(self.id)

    def result(self, timeout: float | None = None) -> Any:
        return self.client.result(self, timeout=timeout)

    def __repr__(self) -> str:
        return f"TaskHandle({self.id!r})"


class Client:
    """ack_replicas: an enqueue returns once that many replicas have it too (HA Redis), else
    EnqueueNotAcknowledged. retention: how long final tasks' records and results stay (seconds,
    KEEP: until deleted); both default to PIDS_ACK_REPLICAS / PIDS_RETENTION_SECONDS (as the worker's)."""

    def __init__(
        self,
        redis_url: str = "redis://127.0.0.1:6379/0",
        cluster: str = "default",
        password: str | None = None,
        *,
        ack_replicas: int | None = None,
        retention: float | str | None = "env",
        reconnect_seconds: float = RECONNECT_SECONDS,
    ) -> None:
        """`password` None: $PIDS_REDIS_PASSWORD if set; either wins over a password in the URL."""
        password = password if password is not None else os.environ.get(PASSWORD_ENV)
        self._setup(connect(redis_url, password), cluster, ack_replicas, retention, reconnect_seconds)

    @classmethod
    def from_redis(
        cls,
        client: redis.Redis,
        cluster: str = "default",
        *,
        ack_replicas: int | None = None,
        retention: float | str | None = "env",
        reconnect_seconds: float = RECONNECT_SECONDS,
    ) -> Client:
        self = cls.__new__(cls)
        self._setup(client, cluster, ack_replicas, retention, reconnect_seconds)
        return self

    def _setup(
        self,
        client: redis.Redis,
        cluster: str,
        ack_replicas: int | None,
        retention: float | str | None,
        reconnect_seconds: float,
    ) -> None:
        self.redis = client
        self.keys = Keys(cluster)
        self.protocol = Protocol(client, self.keys)
        self.ack_replicas = (
            int(os.environ.get(env_var("ack_replicas"), "0") or 0) if ack_replicas is None else ack_replicas
        )
        if retention == "env":
            retention = retention_from_env(os.environ.get("PIDS_RETENTION_SECONDS", ""))
        self.retention: float | None = retention if retention is None else float(retention)
        self.waiter = Waiter(client, self.keys, reconnect_seconds, self.epoch)

    def epoch(self) -> str:
        """The data set's epoch ("" before anything made one): it changes when Redis lost its data."""
        return self.protocol.epoch()

    def _enqueue(self, specs: Sequence[TaskSpec], batch_id: str = "") -> str:
        """Enqueue and return the epoch the tasks went into."""
        epoch = self.protocol.enqueue(specs, batch_id, ack_replicas=self.ack_replicas).epoch
        self.waiter.seen_epoch = self.waiter.seen_epoch or epoch
        return epoch

    # -- submitting -----------------------------------------------------------
    def submit(
        self,
        fn: str,
        *args: Any,
        kwargs: dict[str, Any] | None = None,
        task_id: str | None = None,
        weight: float = 1.0,
        position: str = "",
        priority: int = 0,
        max_attempts: int = 3,
        timeout: float | None = None,
        retention: float | str | None = "client",
    ) -> TaskHandle:
        """Enqueue fn(*args, **kwargs). The same task_id twice makes one task. Every value is
        checked first (pids.limits, pids.functions): TaskArgumentsError/TaskFunctionError."""
        options = TaskOptions(
            weight=weight,
            position=position,
            priority=priority,
            max_attempts=max_attempts,
            timeout=timeout,
            retention=self._retention(retention),
        )
        spec = TaskSpec(
            fn, args, {} if kwargs is None else kwargs, options, uuid.uuid4().hex if task_id is None else task_id
        )
        return TaskHandle(self, spec.task_id, self._enqueue([spec]))

    def map(
        self,
        fn: str,
        items: Iterable[Any],
        *,
        batch_id: str | None = None,
        weight: float = 1.0,
        position: str = "",
        priority: int = 0,
        max_attempts: int = 3,
        timeout: float | None = None,
        retention: float | str | None = "client",
    ) -> list[TaskHandle]:
        """fn(item) for every item, as one batch."""
        return self.submit_batch(
            uuid.uuid4().hex if batch_id is None else batch_id,
            fn,
            [[item] for item in items],
            weight=weight,
            position=position,
            priority=priority,
            max_attempts=max_attempts,
            timeout=timeout,
            retention=retention,
        )

    def submit_batch(
        self,
        batch_id: str,
        fn: str,
        items: Iterable[Any],
        *,
        weight: float = 1.0,
        position: str = "",
        priority: int = 0,
        max_attempts: int = 3,
        timeout: float | None = None,
        retention: float | str | None = "client",
        indices: Sequence[int] | None = None,
    ) -> list[TaskHandle]:
        """Enqueue one task per item, ids f"{batch_id}-{i}"; idempotent per batch id.

        An item is a list of positional arguments, or a dict with optional keys
        args, kwargs, weight, position. Every item is checked before any is enqueued. `indices`: only
        these items (e.g. what a Redis lost), under the same ids."""
        options = TaskOptions(
            weight=weight,
            position=position,
            priority=priority,
            max_attempts=max_attempts,
            timeout=timeout,
            retention=self._retention(retention),
        )
        specs = batch_specs(batch_id, fn, items, options)
        if indices is not None:
            specs = [specs[i] for i in indices]
        epoch = self._enqueue(specs, batch_id=batch_id)
        return [TaskHandle(self, s.task_id, epoch) for s in specs]

    def _retention(self, retention: float | str | None) -> float | None:
        return self.retention if retention == "client" else retention  # type: ignore[return-value]

    # -- following ------------------------------------------------------------
    def task_info(self, task: TaskHandle | str) -> TaskInfo:
        task_id = task.id if isinstance(task, TaskHandle) else task
        raw = self.redis.hgetall(self.keys.task(task_id))
        if not raw:
            raise self.waiter.gone([task_id], self._epochs([task]))
        return TaskInfo.from_hash({_text(k): _text(v) for k, v in raw.items()})

    def wait(self, tasks: Iterable[TaskHandle | str], timeout: float | None = None) -> dict[str, TaskState]:
        """Block until every task is final (or timeout: TaskTimeout). Listens for completion
        events instead of polling; rides out Redis blips (RedisUnavailable after
        reconnect_seconds); a task that is gone raises TaskLost (or TaskNotFound)."""
        tasks = list(tasks)
        return self.waiter.wait([t.id if isinstance(t, TaskHandle) else t for t in tasks], self._epochs(tasks), timeout)

    def result(self, task: TaskHandle | str, timeout: float | None = None) -> Any:
        """The task's return value, waiting for it; raises TaskFailed if it failed or was cancelled."""
        task_id = task.id if isinstance(task, TaskHandle) else task
        state = self.wait([task], timeout=timeout)[task_id]
        if state is not TaskState.SUCCEEDED:
            raise TaskFailed(task_id, state.value, self.task_info(task).error)
        raw = self.redis.get(self.keys.result(task_id))
        return None if raw is None else json.loads(raw)

    def results(self, task_ids: Sequence[str]) -> list[Any]:
        """Results of finished tasks, in order (None where there is none)."""
        raws = self.redis.mget([self.keys.result(t) for t in task_ids]) if task_ids else []
        return [None if r is None else json.loads(r) for r in raws]

    @staticmethod
    def _epochs(tasks: Iterable[TaskHandle | str]) -> dict[str, str]:
        return {t.id: t.epoch for t in tasks if isinstance(t, TaskHandle) and t.epoch}

    def batch_ids(self, batch_id: str) -> list[str]:
        return [_text(i) for i in self.redis.lrange(self.keys.batch(batch_id), 0, -1)]

    def batch_status(self, batch_id: str) -> BatchStatus:
        ids = self.batch_ids(batch_id)
        counts: Counter[str] = Counter()
        states: dict[str, str] = {}
        claimed_by: Counter[str] = Counter()
        waits: list[float] = []
        runs: list[float] = []
        errors: list[str] = []
        max_attempts = 0
        for task_id, info in zip(ids, self.task_infos(ids)):
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

    # -- cluster --------------------------------------------------------------
    def cluster_stats(self) -> ClusterStats:
        k = self.keys
        pipe = self.redis.pipeline(transaction=False)
        for queue in (k.pending, k.scheduled, k.running):
            pipe.zcard(queue)
        for table in (k.stats, k.workers, k.loads, k.worker_totals):
            pipe.hgetall(table)
        pending, scheduled, running, raw_stats, raw_workers, raw_loads, raw_totals = pipe.execute()
        now_ms = self.protocol.server_ms()
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

    def worker_settings(self) -> dict[str, dict[str, Any]]:
        """Worker id -> the settings in effect, of the workers in the worker table; the entries of
        workers that left it are deleted here (a worker that dies cannot delete its own)."""
        k = self.keys
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(k.settings)
        pipe.hkeys(k.workers)
        raw_settings, known = pipe.execute()
        live = {_text(w) for w in known}
        settings: dict[str, dict[str, Any]] = {_text(w): json.loads(v) for w, v in raw_settings.items()}
        gone = [w for w in settings if w not in live]
        if gone:
            self.redis.hdel(k.settings, *gone)
        return {w: s for w, s in sorted(settings.items()) if w in live}

    def wait_for_worker_totals(self, tasks_done: int, timeout: float = 5.0) -> ClusterStats:
        """The cluster's stats once the workers' totals count `tasks_done` completed tasks, or at
        `timeout`: a worker adds its totals with its snapshot reads and before it waits, so they
        trail its last completions by a claim cycle or so."""
        deadline = time.monotonic() + timeout
        stats = self.cluster_stats()
        while sum(w.tasks_done for w in stats.workers) < tasks_done and time.monotonic() < deadline:
            time.sleep(0.02)
            stats = self.cluster_stats()
        return stats

    def dead_letters(self) -> list[TaskInfo]:
        """The dead-lettered tasks whose records have not expired yet."""
        pipe = self.redis.pipeline(transaction=False)
        for task_id in self.redis.zrange(self.keys.dead, 0, -1):
            if isinstance(task_id, (str, bytes)):
                pipe.hgetall(self.keys.task(_text(task_id)))
        return [TaskInfo.from_hash({_text(k): _text(v) for k, v in raw.items()}) for raw in pipe.execute() if raw]

    def cancel(self, task_id: str) -> bool:
        """Cancel a task: True if it is or will be cancelled."""
        state = self.protocol.cancel(task_id)
        if state == "missing":
            raise TaskNotFound(f"no task {task_id!r} in cluster {self.keys.cluster!r}")
        return state in ("cancelled", "cancelling")

    def retain(self, task_ids: Sequence[str], retention: float | None) -> int:
        """Keep these tasks' records and results `retention` seconds once final (None: until
        deleted), counted from now for those final already; returns how many exist."""
        check_retention(retention)
        return self.protocol.retain(task_ids, None if retention is None else retention_ms(retention))

    def cancel_batch(self, batch_id: str) -> int:
        return sum(self.protocol.cancel(t) in ("cancelled", "cancelling") for t in self.batch_ids(batch_id))

    def release_worker(self, worker_id: str) -> int:
        """Put every task a lost worker holds back in the queue (what the operator calls on pod loss)."""
        requeued, dead = self.protocol.release_worker(worker_id, reason=f"worker {worker_id} was lost")
        return requeued + dead

    def drain_worker(self, worker_id: str) -> None:
        """Ask a worker to stop claiming and finish what it holds."""
        self.redis.sadd(self.keys.draining, worker_id)

    def forget_worker(self, worker_id: str) -> bool:
        return self.protocol.forget_worker(worker_id)

    def task_infos(self, task_ids: Sequence[str]) -> list[TaskInfo | None]:
        """The records of many tasks in one round trip, in order (None for a task that does not exist)."""
        pipe = self.redis.pipeline(transaction=False)
        for task_id in task_ids:
            pipe.hmget(self.keys.task(task_id), INFO_FIELDS)
        rows = pipe.execute() if task_ids else []
        return [
            TaskInfo.from_hash({f: _text(v) for f, v in zip(INFO_FIELDS, row) if v is not None}) if row[0] else None
            for row in rows
        ]

    def retry(self, tasks: Iterable[str | TaskInfo], attempts: int = 1) -> dict[str, str]:
        """Send dead-lettered tasks back to the queue with `attempts` more attempts each. A TaskInfo
        is retried only if it is still failed at the attempt it records (what the caller saw); a
        plain id at the attempt it failed at now. Returns per task id "requeued", "stale",
        "missing" or the state it was left in."""
        given = list(tasks)
        ids = [t for t in given if isinstance(t, str)]
        read = dict(zip(ids, self.task_infos(ids)))
        outcomes: dict[str, str] = {}
        fenced: list[tuple[str, int]] = []
        for task in given:
            info = read[task] if isinstance(task, str) else task
            if info is None:
                outcomes[str(task)] = "missing"
            else:
                fenced.append((info.id, info.attempt))
        outcomes.update(zip([task_id for task_id, _ in fenced], self.protocol.retry(fenced, attempts)))
        return outcomes
