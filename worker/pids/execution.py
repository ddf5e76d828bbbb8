"""Running one task: resolve `module:callable` within the allowed modules, call it,
and turn the outcome into a JSON result or a described error. Slots are threads."""

from __future__ import annotations

import functools
import inspect
import json
import queue
import threading
import time
import traceback
from typing import Any, Callable, NamedTuple

from .errors import TaskArgumentsError, TaskFunctionError
from .functions import resolve
from .protocol import ClaimedTask

TRACEBACK_LINES = 12


class Outcome(NamedTuple):
    """What happened to one attempt."""

    task: ClaimedTask
    ok: bool
    result_json: str = "null"
    error: str = ""
    retryable: bool = True
    seconds: float = 0.0


def run_task(task: ClaimedTask, allowed_modules: tuple[str, ...]) -> Outcome:
    started = time.perf_counter()
    try:
        target = _resolve_with_signature(task.fn, allowed_modules)[0]
        _check_arguments(task.fn, allowed_modules, len(task.args), tuple(task.kwargs))
    except (TaskFunctionError, TaskArgumentsError) as exc:
        return Outcome(task, False, error=f"{type(exc).__name__}: {exc}", retryable=False, seconds=time.perf_counter() - started)
    try:
        value = target(*task.args, **task.kwargs)
    except Exception as exc:  # the task's own failure: recorded, retried per its policy
        return Outcome(task, False, error=describe(exc), seconds=time.perf_counter() - started)
    try:
        result = "null" if value is None else json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        return Outcome(task, False, error=f"result is not JSON-serialisable: {exc}", retryable=False,
                       seconds=time.perf_counter() - started)
    return Outcome(task, True, result_json=result, seconds=time.perf_counter() - started)


@functools.lru_cache(maxsize=1024)
def _resolve_with_signature(fn: str, allowed_modules: tuple[str, ...]) -> tuple[Callable[..., Any], inspect.Signature | None]:
    target = resolve(fn, allowed_modules)
    try:
        return target, inspect.signature(target)
    except ValueError:  # builtins without a signature: let the call decide
        return target, None


@functools.lru_cache(maxsize=4096)
def _check_arguments(fn: str, allowed_modules: tuple[str, ...], n_args: int, kwarg_names: tuple[str, ...]) -> None:
    """Whether a call fits the function's signature depends only on how many positional
    arguments and which keyword names it has, so each shape is checked once."""
    signature = _resolve_with_signature(fn, allowed_modules)[1]
    if signature is None:
        return
    try:
        signature.bind(*range(n_args), **dict.fromkeys(kwarg_names))
    except TypeError as exc:
        raise TaskArgumentsError(f"arguments do not fit {fn}: {exc}") from None


def describe(exc: BaseException) -> str:
    """Type, message and the last lines of the traceback."""
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    tail = "".join(lines)[-4000:].splitlines()[-TRACEBACK_LINES:]
    return f"{type(exc).__name__}: {exc}\n" + "\n".join(tail)


class Slots:
    """A fixed number of task threads. A thread stuck past its task's timeout is
    abandoned (its late outcome is dropped) and replaced, so the slot frees up."""

    def __init__(self, count: int, allowed_modules: tuple[str, ...], on_outcome: Callable[[], None]) -> None:
        self.allowed_modules = allowed_modules
        self._inbox: queue.SimpleQueue[ClaimedTask | None] = queue.SimpleQueue()
        self.outcomes: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
        self._on_outcome = on_outcome
        self._lock = threading.Lock()
        self._started: dict[tuple[str, int], float] = {}  # (task id, attempt) -> monotonic start
        self._abandoned: set[tuple[str, int]] = set()
        for _ in range(count):
            self._spawn()

    def _spawn(self) -> None:
        threading.Thread(target=self._serve, name="pids-slot", daemon=True).start()

    def _serve(self) -> None:
        while True:
            task = self._inbox.get()
            if task is None:
                return
            key = (task.id, task.attempt)
            with self._lock:
                self._started[key] = time.monotonic()
            outcome = run_task(task, self.allowed_modules)
            with self._lock:
                self._started.pop(key, None)
                if key in self._abandoned:
                    self._abandoned.discard(key)
                    return  # a replacement thread already took this slot
            self.outcomes.put(outcome)
            self._on_outcome()

    def submit(self, task: ClaimedTask) -> None:
        self._inbox.put(task)

    def abandon_overdue(self, held: dict[str, ClaimedTask]) -> list[Outcome]:
        """Timeout outcomes for tasks running longer than their timeout; their threads are replaced."""
        if not self._started:  # nothing runs on a slot thread (inline tasks): no lock to take
            return []
        now = time.monotonic()
        overdue = []
        with self._lock:
            for key, started in list(self._started.items()):
                task = held.get(key[0])
                if task is None or task.attempt != key[1] or task.timeout is None or now - started <= task.timeout:
                    continue
                del self._started[key]
                self._abandoned.add(key)
                overdue.append(Outcome(task, False, error=f"TimeoutError: task ran longer than its timeout of {task.timeout:g}s",
                                       seconds=now - started))
        for _ in overdue:
            self._spawn()
        return overdue

    def seconds_to_next_timeout(self, held: dict[str, ClaimedTask]) -> float | None:
        """How long until the earliest running task passes its timeout (None: no timeouts)."""
        now = time.monotonic()
        with self._lock:
            left = [held[key[0]].timeout - (now - started) for key, started in self._started.items()  # type: ignore[operator]
                    if key[0] in held and held[key[0]].timeout is not None]
        return max(0.0, min(left)) if left else None

    def stop(self, count: int) -> None:
        for _ in range(count):
            self._inbox.put(None)
