"""What a task is: its spec (function, arguments, options), its states, its record."""

from __future__ import annotations

import json
import math
import re
import uuid
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .errors import TaskArgumentsError, TaskFunctionError
from .wire import parse_claim

RETENTION_SECONDS = 86_400.0  # how long a final task's record and result stay by default (a day)
FUNCTION_PATTERN = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*$")


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


def check_function(fn: str) -> str:
    """Reject anything that is not "module.path:callable"."""
    if not isinstance(fn, str) or not FUNCTION_PATTERN.match(fn):
        raise TaskFunctionError(f"task function must look like 'package.module:callable', got {fn!r}")
    return fn


def encode_json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TaskArgumentsError(f"{what} must be JSON-serialisable: {exc}") from None


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
        if not (isinstance(self.weight, (int, float)) and math.isfinite(self.weight) and self.weight > 0):
            raise TaskArgumentsError(f"weight must be a finite number > 0, got {self.weight!r}")
        if not isinstance(self.position, str) or any(c in self.position for c in "\t\n"):
            raise TaskArgumentsError(f"position must be a 'zone/node' string, got {self.position!r}")
        if not isinstance(self.priority, int) or not -100 <= self.priority <= 100:
            raise TaskArgumentsError(f"priority must be an integer in [-100, 100], got {self.priority!r}")
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise TaskArgumentsError(f"max_attempts must be an integer >= 1, got {self.max_attempts!r}")
        if self.timeout is not None and not (isinstance(self.timeout, (int, float)) and self.timeout > 0):
            raise TaskArgumentsError(f"timeout must be > 0 seconds or None, got {self.timeout!r}")
        if self.retention is not None and not (isinstance(self.retention, (int, float))
                                               and not isinstance(self.retention, bool)
                                               and math.isfinite(self.retention) and self.retention > 0):
            raise TaskArgumentsError(f"retention must be > 0 seconds or None (keep), got {self.retention!r}")


@dataclass(frozen=True)
class TaskSpec:
    """One call to enqueue: function, JSON arguments, options and identity."""

    fn: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    options: TaskOptions = field(default_factory=TaskOptions)
    task_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    batch_id: str = ""

    def __post_init__(self) -> None:
        check_function(self.fn)
        if not isinstance(self.kwargs, dict) or not all(isinstance(k, str) for k in self.kwargs):
            raise TaskArgumentsError(f"kwargs must be a dict with string keys, got {self.kwargs!r}")
        if not self.task_id or any(c in self.task_id for c in "{}: \t\n"):
            raise TaskArgumentsError(f"task id must be non-empty without braces, colons or spaces: {self.task_id!r}")

    def encoded(self) -> list[str]:
        """The task's fields as enqueue.lua expects them."""
        o = self.options
        return [
            self.task_id,
            self.fn,
            encode_json(list(self.args), "args"),
            encode_json(self.kwargs, "kwargs"),
            repr(float(o.weight)),
            str(o.priority),
            o.position,
            str(o.max_attempts),
            "" if o.timeout is None else repr(float(o.timeout)),
            self.batch_id,
            "" if o.retention is None else str(max(1, round(o.retention * 1000))),
        ]


ENCODED_FIELDS = 11


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
