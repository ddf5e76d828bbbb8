"""The loop of one process slot's child: receive a task, run it with a soft timeout (SIGALRM
raises SoftTimeout inside it), send back (ok, result or error, retryable, seconds). Whatever the
task raises, SystemExit and KeyboardInterrupt included, is its outcome; the loop only ends when
the worker closes the pipe or sends None."""

from __future__ import annotations

import signal
import time
from typing import Any

from .execution import describe, run_task
from .runners import SoftTimeout
from .wire import ClaimedTask


def _on_alarm(signum: int, frame: Any) -> None:
    raise SoftTimeout("task ran longer than its timeout")


def serve(connection: Any, allowed_modules: tuple[str, ...], max_result_bytes: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the worker's to handle, not its tasks'
    signal.signal(signal.SIGALRM, _on_alarm)
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if message is None:
            return
        fn, args_json, kwargs_json, timeout = message
        task = ClaimedTask("", "0|0|0|", fn, args_json, kwargs_json, timeout, 1.0, "")
        started = time.perf_counter()
        try:
            if timeout:
                signal.setitimer(signal.ITIMER_REAL, timeout)
            try:
                outcome = run_task(task, allowed_modules, max_result_bytes)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            reply = (
                outcome.ok,
                outcome.result_json if outcome.ok else outcome.error,
                outcome.retryable,
                outcome.seconds,
            )
        except BaseException as exc:
            reply = (False, describe(exc), True, time.perf_counter() - started)
        try:
            connection.send(reply)
        except (OSError, ValueError):
            return
