"""Running one task in this process: resolve `module:callable` within the allowed modules, decode
its arguments, call it, and turn whatever happens — a result, an exception, even SystemExit or
KeyboardInterrupt raised by the task — into an Outcome. Nothing a task does escapes."""

from __future__ import annotations

import functools
import inspect
import json
import time
import traceback
from collections.abc import Callable
from typing import Any, NamedTuple

from . import limits
from .errors import TaskArgumentsError, TaskFunctionError
from .functions import resolve
from .wire import ClaimedTask

TRACEBACK_LINES = 12
MAX_RESULT_BYTES = 16 * 2**20  # a result larger than this fails its task (Redis is no blob store)


class Outcome(NamedTuple):
    """What happened to one attempt."""

    task: ClaimedTask
    ok: bool
    result_json: str = "null"
    error: str = ""
    retryable: bool = True
    seconds: float = 0.0


def decode_arguments(task: ClaimedTask) -> tuple[list[Any], dict[str, Any]]:
    """The task's args and kwargs under the input limits (pids.limits): TaskArgumentsError for
    anything malformed, too deep or too large, never RecursionError or MemoryError."""
    if task.args_json == "[]" and task.kwargs_json == "{}":
        return [], {}
    return limits.decode_arguments(task.args_json, task.kwargs_json)


def run_task(task: ClaimedTask, allowed_modules: tuple[str, ...], max_result_bytes: int = MAX_RESULT_BYTES) -> Outcome:
    started = time.perf_counter()
    try:
        target = _resolve_with_signature(task.fn, allowed_modules)[0]
        args, kwargs = decode_arguments(task)
        _check_arguments(task.fn, allowed_modules, len(args), tuple(kwargs))
    except (TaskFunctionError, TaskArgumentsError) as exc:
        return Outcome(
            task, False, error=f"{type(exc).__name__}: {exc}", retryable=False, seconds=time.perf_counter() - started
        )
    try:
        value = target(*args, **kwargs)
    except BaseException as exc:
        return Outcome(task, False, error=describe(exc), seconds=time.perf_counter() - started)
    return encode_result(task, value, started, max_result_bytes)


def encode_result(task: ClaimedTask, value: Any, started: float, max_result_bytes: int) -> Outcome:
    try:
        result = "null" if value is None else json.dumps(value, separators=(",", ":"), allow_nan=False)
    except Exception as exc:
        return Outcome(
            task,
            False,
            error=f"result is not JSON-serialisable: {type(exc).__name__}: {exc}",
            retryable=False,
            seconds=time.perf_counter() - started,
        )
    if len(result) > max_result_bytes:
        return Outcome(
            task,
            False,
            error=f"result is {len(result)} bytes, more than the limit of {max_result_bytes} "
            "(PIDS_MAX_RESULT_BYTES): store large outputs elsewhere and return a reference",
            retryable=False,
            seconds=time.perf_counter() - started,
        )
    return Outcome(task, True, result_json=result, seconds=time.perf_counter() - started)


@functools.lru_cache(maxsize=1024)
def _resolve_with_signature(
    fn: str, allowed_modules: tuple[str, ...]
) -> tuple[Callable[..., Any], inspect.Signature | None]:
    target = resolve(fn, allowed_modules)
    try:
        return target, inspect.signature(target)
    except (ValueError, TypeError):  # builtins without a signature: let the call decide
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
    """Type, message and the last lines of the traceback (never raises)."""
    try:
        lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
        tail = "".join(lines)[-4000:].splitlines()[-TRACEBACK_LINES:]
        return f"{type(exc).__name__}: {exc}\n" + "\n".join(tail)
    except Exception:
        return f"{type(exc).__name__} (its message could not be shown)"
