"""Pure computation of a PidsTask's status from what Redis reports
(pids.client.BatchStatus for a batch, TaskInfo for a single call)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .conditions import Condition, condition, merge_conditions, rfc3339

TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})
FINISHED_STATES = ("succeeded", "failed", "cancelled")
INLINE_RESULT_LIMIT = 1024
MAX_ERRORS = 5


def _state(value: Any) -> str:
    """A TaskState enum or a plain string, as its lower-case value."""
    return str(getattr(value, "value", value)).lower()


def batch_phase(total: int, counts: Mapping[str, int]) -> tuple[str, str]:
    """(phase, reason) of a batch from its counts per state."""
    finished = sum(counts.get(s, 0) for s in FINISHED_STATES)
    if total and finished >= total:
        if counts.get("failed", 0):
            return "Failed", "TasksFailed"
        if counts.get("cancelled", 0):
            return "Failed", "Cancelled"
        return "Succeeded", "AllSucceeded"
    if finished or counts.get("running", 0):
        return "Running", "InProgress"
    return "Pending", "Queued"


def build_batch_status(
    batch_id: str, batch: Any, result_key_prefix: str, total: int | None = None, counts: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """`total` and `counts` when known better than Redis's (the PidsTask's own items and record)."""
    counts = {_state(k): int(v) for k, v in dict(batch.counts if counts is None else counts).items()}
    total = int(batch.total if total is None else total)
    phase, reason = batch_phase(total, counts)
    finished = sum(counts.get(s, 0) for s in FINISHED_STATES)
    errors = [str(e) for e in list(batch.errors or [])[:MAX_ERRORS]]
    status: dict[str, Any] = {
        "phase": phase,
        "reason": reason,
        "message": f"{finished}/{total} finished, {counts.get('failed', 0)} failed",
        "taskId": batch_id,
        "batch": True,
        "total": total,
        "progress": f"{finished}/{total}",
        "counts": counts,
        "attempts": int(batch.max_attempts_seen),
        "claimedBy": {str(k): int(v) for k, v in dict(batch.claimed_by).items()},
        "result": {
            "taskIds": f"{batch_id}-0 .. {batch_id}-{max(total - 1, 0)}",
            "key": f"{result_key_prefix}{batch_id}-<i>",
        },
        "errors": errors,
    }
    _put_seconds(status, "waitSecondsP50", batch.wait_seconds_p50)
    _put_seconds(status, "runSecondsP50", batch.run_seconds_p50)
    return status


def single_phase(state: str) -> tuple[str, str]:
    return {
        "pending": ("Pending", "Queued"),
        "scheduled": ("Pending", "RetryScheduled"),
        "running": ("Running", "Running"),
        "succeeded": ("Succeeded", "Succeeded"),
        "failed": ("Failed", "TaskFailed"),
        "cancelled": ("Failed", "Cancelled"),
    }.get(state, ("Pending", "Unknown"))


def build_single_status(task_id: str, info: Any, result_key: str, result_value: Any = None) -> dict[str, Any]:
    """Status of one call; `result_value` (already fetched) is inlined when small."""
    state = _state(info.state)
    phase, reason = single_phase(state)
    finished = 1 if state in FINISHED_STATES else 0
    result: dict[str, Any] = {"key": result_key, "taskIds": task_id}
    size = getattr(info, "result_size", None)
    if size is not None:
        result["size"] = int(size)
    if phase == "Succeeded" and result_value is not None:
        text = json.dumps(result_value)
        if len(text) <= INLINE_RESULT_LIMIT:
            result["value"] = text
    status: dict[str, Any] = {
        "phase": phase,
        "reason": reason,
        "message": f"task {state}" + (f": {info.error}" if getattr(info, "error", None) else ""),
        "taskId": task_id,
        "batch": False,
        "total": 1,
        "progress": f"{finished}/1",
        "counts": {state: 1},
        "attempts": int(getattr(info, "attempt", 0) or 0),
        "claimedBy": {str(info.worker): 1} if getattr(info, "worker", None) else {},
        "result": result,
        "errors": [str(info.error)] if getattr(info, "error", None) else [],
    }
    enq, fin = info.enqueued_at, info.finished_at
    first_claim = getattr(info, "first_claimed_at", None) or info.claimed_at
    if enq:
        status["enqueuedAt"] = rfc3339(float(enq))
    if first_claim and enq:
        _put_seconds(status, "waitSecondsP50", float(first_claim) - float(enq))
    if fin and info.claimed_at:
        _put_seconds(status, "runSecondsP50", float(fin) - float(info.claimed_at))
    if fin:
        status["finishedAt"] = rfc3339(float(fin))
    return status


def _put_seconds(status: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        status[key] = round(max(0.0, float(value)), 4)


def problem_status(
    reason: str, message: str, previous: Mapping[str, Any], generation: int | None, now: float
) -> dict[str, Any]:
    """A task that cannot run (missing cluster, forbidden function, bad items): Failed with the reason."""
    return {
        "phase": "Failed",
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "conditions": merge_conditions(
            previous.get("conditions"), [condition("Enqueued", False, reason, message)], generation, now
        ),
    }


def with_conditions(
    status: dict[str, Any],
    previous: Mapping[str, Any],
    generation: int | None,
    now: float,
    extra: list[Condition] | None = None,
) -> dict[str, Any]:
    """Adds Enqueued/Complete (and `extra`) conditions and observedGeneration to a progress status."""
    done = status["phase"] in TERMINAL_PHASES
    conds = [
        condition("Enqueued", True, "Enqueued", f"task id {status.get('taskId', '')}"),
        condition("Complete", done, status["reason"], status.get("message", "")),
        *(extra or []),
    ]
    if done and "finishedAt" not in status:
        status["finishedAt"] = rfc3339(now)
    return {
        **status,
        "observedGeneration": generation,
        "conditions": merge_conditions(previous.get("conditions"), conds, generation, now),
    }
