"""What a task is: its spec (function, arguments, options), its states, its record."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from .errors import TaskArgumentsError
from .functions import check_function
from .limits import (
    check_batch_id,
    check_item,
    check_max_attempts,
    check_position,
    check_priority,
    check_retention,
    check_task_id,
    check_timeout,
    check_weight,
    encode_arguments,
)
from .wire import parse_claim

RETENTION_SECONDS = 86_400.0  # how long a final task's record and result stay by default (a day)


def retention_ms(seconds: float) -> int:
    """A retention on the wire: whole milliseconds, at least one."""
    return max(1, round(seconds * 1000))


class TaskState(str, Enum):
    PENDING = "pending"
    SCHEDULED = "scheduled"  # waiting out a retry backoff
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # for good: in the dead-letter set with its last error
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in (TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED)


@dataclass(frozen=True)
class TaskOptions:
    """How a task is scheduled; never mixed into the task's own arguments."""

    weight: float = 1.0
    position: str = ""
    priority: int = 0
    max_attempts: int = 3
    timeout: float | None = None
    retention: float | None = RETENTION_SECONDS  # seconds a final task's record stays; None: until deleted

    def __post_init__(self) -> None:
        check_weight(self.weight)
        check_position(self.position)
        check_priority(self.priority)
        check_max_attempts(self.max_attempts)
        check_timeout(self.timeout)
        check_retention(self.retention)


@dataclass(frozen=True)
class TaskSpec:
    """One call to enqueue: function, JSON arguments, options and identity."""

    fn: str
    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    options: TaskOptions = field(default_factory=TaskOptions)
    task_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    batch_id: str = ""
    args_json: str = field(init=False, repr=False, compare=False, default="[]")
    kwargs_json: str = field(init=False, repr=False, compare=False, default="{}")

    def __post_init__(self) -> None:
        """Every rule of pids.limits and pids.functions that needs no worker: a spec that
        exists can be enqueued."""
        check_function(self.fn)
        check_task_id(self.task_id)
        if self.batch_id:
            check_batch_id(self.batch_id)
        args_json, kwargs_json = encode_arguments(self.args, self.kwargs)
        object.__setattr__(self, "args_json", args_json)  # frozen: set once, here
        object.__setattr__(self, "kwargs_json", kwargs_json)

    def encoded(self) -> list[str]:
        """The task's fields as enqueue.lua expects them."""
        o = self.options
        return [
            self.task_id,
            self.fn,
            self.args_json,
            self.kwargs_json,
            repr(float(o.weight)),
            str(o.priority),
            o.position,
            str(o.max_attempts),
            "" if o.timeout is None else repr(float(o.timeout)),
            self.batch_id,
            "" if o.retention is None else str(retention_ms(o.retention)),
        ]


ENCODED_FIELDS = 11


def batch_specs(batch_id: str, fn: str, items: Iterable[Any], options: TaskOptions) -> list[TaskSpec]:
    """One spec per item (pids.limits.check_item), ids f"{batch_id}-{i}"; an item's own weight
    and position replace the batch's. A bad item raises naming its index, before any is enqueued."""
    check_batch_id(batch_id)
    check_function(fn)
    specs = []
    for i, raw in enumerate(items):
        try:
            item = check_item(raw)
            item_options = (
                options
                if item.weight is None and item.position is None
                else replace(
                    options,
                    weight=options.weight if item.weight is None else item.weight,
                    position=options.position if item.position is None else item.position,
                )
            )
            specs.append(TaskSpec(fn, item.args, item.kwargs, item_options, f"{batch_id}-{i}", batch_id))
        except TaskArgumentsError as exc:
            raise TaskArgumentsError(f"item {i}: {exc}") from None
    return specs


@dataclass(frozen=True)
class TaskInfo:
    """A task's record as stored in Redis (times in seconds since the epoch)."""

    id: str
    fn: str
    state: TaskState
    attempt: int
    max_attempts: int
    weight: float
    worker: str
    error: str
    batch: str
    enqueued_at: float
    first_claimed_at: float | None
    claimed_at: float | None
    finished_at: float | None
    result_size: int | None

    @property
    def wait_seconds(self) -> float | None:
        return None if self.first_claimed_at is None else self.first_claimed_at - self.enqueued_at

    @property
    def run_seconds(self) -> float | None:
        if self.finished_at is None or self.claimed_at is None:
            return None
        return self.finished_at - self.claimed_at

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> TaskInfo:
        def seconds(name: str) -> float | None:
            value = raw.get(name)
            return int(value) / 1000.0 if value else None

        attempt, claimed_ms, _, worker = parse_claim(raw.get("claim", ""))
        claimed_at = claimed_ms / 1000.0 if claimed_ms else None
        size = raw.get("result_size")
        return cls(
            id=raw["id"],
            fn=raw.get("fn", ""),
            state=TaskState(raw["state"]),
            attempt=attempt,
            max_attempts=int(raw.get("max_attempts", 1)),
            weight=float(raw.get("weight", 1.0)),
            worker=worker,
            error=raw.get("error", ""),
            batch=raw.get("batch", ""),
            enqueued_at=int(raw["enqueued_at"]) / 1000.0,
            first_claimed_at=seconds("first_claimed_at") or claimed_at,
            claimed_at=claimed_at,
            finished_at=seconds("finished_at"),
            result_size=int(size) if size else None,
        )
