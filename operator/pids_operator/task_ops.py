"""What a PidsTask does in Redis: enqueue (idempotent: the CR uid is the task or batch id),
follow progress, re-enqueue what a Redis lost, cancel. Each takes a pids Client."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pids.errors import TaskNotFound
from pids.keys import Keys
from pids.task import RETENTION_SECONDS

from .conditions import Condition, rfc3339
from .spec import TaskSpec
from .task_recovery import batch_counts, carried_requeued, missing_items, record_finished, requeued_condition
from .task_status import build_batch_status, build_single_status

RESULT_FETCH_TIMEOUT = 1.0


def submit_options(spec: TaskSpec) -> dict[str, Any]:
    """Task options, kept apart from the task's own arguments. The PidsTask is the record of its
    work: its tasks stay in Redis while it exists (release hands them to the usual retention)."""
    return {
        "retention": None,
        "weight": spec.weight,
        "position": spec.position,
        "priority": spec.priority,
        "max_attempts": spec.max_attempts,
        "timeout": spec.timeout,
    }


def enqueue(client: Any, task_id: str, spec: TaskSpec, indices: list[int] | None = None) -> int:
    """Submit the call or the batch (only `indices` of it, if given); returns how many tasks
    that is. Safe to repeat: existing ids are left alone."""
    if spec.is_batch:
        items = list(spec.items or [])
        return len(client.submit_batch(task_id, spec.function, items, indices=indices, **submit_options(spec)))
    client.submit(spec.function, *spec.args, kwargs=dict(spec.kwargs) or None, task_id=task_id, **submit_options(spec))
    return 1


@dataclass
class Followed:
    """One look at a PidsTask's work: its progress status, the Requeued condition (new or kept),
    and a warning to post when this look re-enqueued lost work."""

    status: dict[str, Any]
    conditions: list[Condition] = field(default_factory=list)
    warning: str | None = None


def follow(
    client: Any, cluster: str, task_id: str, spec: TaskSpec, previous: Mapping[str, Any], now: float
) -> Followed:
    """Progress, after putting back under the same ids whatever Redis no longer has."""
    recorded_epoch = str(previous.get("epoch") or "")
    if spec.is_batch:
        status, requeued = _follow_batch(client, cluster, task_id, spec, previous)
    else:
        status, requeued = _follow_single(client, cluster, task_id, spec)
    epoch = str(client.epoch())
    status["epoch"] = epoch
    if not requeued:
        return Followed(status, carried_requeued(previous))
    total = int(status.get("total", 1))
    finished = total - requeued
    status["requeued"] = int(previous.get("requeued") or 0) + requeued
    cond = requeued_condition(requeued, total, finished, (recorded_epoch, epoch), rfc3339(now))
    return Followed(status, [cond], cond["message"])


def _follow_batch(
    client: Any, cluster: str, batch_id: str, spec: TaskSpec, previous: Mapping[str, Any]
) -> tuple[dict[str, Any], int]:
    total = len(spec.items or [])
    batch = client.batch_status(batch_id)
    finished = record_finished(previous.get("finished"), batch.states, batch_id)
    missing = missing_items(total, finished, batch.states, batch_id)
    if missing:
        enqueue(client, batch_id, spec, missing)
        batch = client.batch_status(batch_id)
    counts = batch_counts(finished, batch.states, batch_id)
    status = build_batch_status(batch_id, batch, Keys(cluster).result(""), total=total, counts=counts)
    status["finished"] = finished
    return status, len(missing)


def _follow_single(client: Any, cluster: str, task_id: str, spec: TaskSpec) -> tuple[dict[str, Any], int]:
    requeued = 0
    try:
        info = client.task_info(task_id)
    except TaskNotFound:  # TaskLost included: Redis lost it before it finished (else it is no longer followed)
        enqueue(client, task_id, spec)
        info = client.task_info(task_id)
        requeued = 1
    value = None
    state = str(getattr(info.state, "value", info.state))
    if state == "succeeded":
        value = client.result(task_id, timeout=RESULT_FETCH_TIMEOUT)
    return build_single_status(task_id, info, Keys(cluster).result(task_id), value), requeued


def release(client: Any, task_id: str, spec: TaskSpec, finished: bool) -> int:
    """The PidsTask is gone: its tasks expire after the default retention once final, and what
    has not finished is cancelled (unless `finished`); returns how many tasks were cancelled."""
    ids = client.batch_ids(task_id) if spec.is_batch else [task_id]
    client.retain(ids, RETENTION_SECONDS)
    if finished:
        return 0
    if spec.is_batch:
        return int(client.cancel_batch(task_id))
    try:
        return int(bool(client.cancel(task_id)))
    except TaskNotFound:
        return 0
