"""The client: submit tasks, follow them, fetch results lazily, inspect the cluster."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import redis

from . import cluster_state
from .cluster_state import BatchStatus, ClusterStats
from .connection import PASSWORD_ENV, connect
from .errors import ConfigError, TaskFailed, TaskNotFound
from .keys import Keys
from .limits import check_retention
from .protocol import Protocol
from .settings import env_var
from .task import RETENTION_SECONDS, TaskInfo, TaskOptions, TaskSpec, TaskState, batch_specs, retention_ms
from .waiting import Waiter
from .wire import text as _text

RECONNECT_SECONDS = 30.0  # how long waits ride out a Redis outage before RedisUnavailable
KEEP = None  # retention=KEEP: a final task's record stays until deleted


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

    # -- cluster --------------------------------------------------------------
    def batch_status(self, batch_id: str) -> BatchStatus:
        ids = self.batch_ids(batch_id)
        return cluster_state.batch_status(batch_id, ids, self.task_infos(ids))

    # -- cluster --------------------------------------------------------------
    def cluster_stats(self) -> ClusterStats:
        return cluster_state.cluster_stats(self.redis, self.keys, self.protocol.server_ms())

    def worker_settings(self) -> dict[str, dict[str, Any]]:
        """Worker id -> the settings in effect, of the workers in the worker table (cluster_state)."""
        return cluster_state.worker_settings(self.redis, self.keys)

    def task_infos(self, task_ids: Sequence[str]) -> list[TaskInfo | None]:
        """The records of many tasks in one round trip, in order (None for a task that does not exist)."""
        return cluster_state.task_infos(self.redis, self.keys, task_ids)

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
