"""What a PidsTask does in Redis: enqueue (idempotent: the CR uid is the task
or batch id), follow progress, cancel. Each takes a pids Client."""

from __future__ import annotations

from typing import Any

from pids.keys import Keys

from .spec import TaskSpec
from .task_status import build_batch_status, build_single_status

RESULT_FETCH_TIMEOUT = 1.0


def submit_options(spec: TaskSpec) -> dict[str, Any]:
    """Task options, kept apart from the task's own arguments."""
    return {
        "weight": spec.weight,
        "position": spec.position,
        "priority": spec.priority,
        "max_attempts": spec.max_attempts,
        "timeout": spec.timeout,
    }


def enqueue(client: Any, task_id: str, spec: TaskSpec) -> int:
    """Submit the call or the batch; returns how many tasks it made. Safe to repeat."""
    if spec.is_batch:
        return len(client.submit_batch(task_id, spec.function, list(spec.items or []), **submit_options(spec)))
    client.submit(spec.function, *spec.args, kwargs=dict(spec.kwargs) or None, task_id=task_id, **submit_options(spec))
    return 1


def progress(client: Any, cluster: str, task_id: str, spec: TaskSpec) -> dict[str, Any]:
    """The status block describing how far the task has come."""
    keys = Keys(cluster)
    if spec.is_batch:
        return build_batch_status(task_id, client.batch_status(task_id), keys.result(""))
    info = client.task_info(task_id)
    value = None
    state = str(getattr(info.state, "value", info.state))
    if state == "succeeded":
        value = client.result(task_id, timeout=RESULT_FETCH_TIMEOUT)
    return build_single_status(task_id, info, keys.result(task_id), value)


def cancel(client: Any, task_id: str, spec: TaskSpec) -> int:
    """Cancel what has not finished; returns how many tasks were cancelled."""
    if spec.is_batch:
        return int(client.cancel_batch(task_id))
    return int(bool(client.cancel(task_id)))
