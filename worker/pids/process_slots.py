"""Process slots: each slot is a child process that runs one task at a time, so a CPU-bound task
neither blocks the worker's heartbeat nor other slots, anything a task does to its process
(SystemExit, os._exit, a crash) fails only that task, and a timeout is hard: the child raises
SoftTimeout inside the task at its timeout and is killed HARD_TIMEOUT_GRACE later if it has not
ended. Children come from a fork server, so they start single-threaded and fast.

The slots are driven by the claim loop's own thread (no supervisor thread between a child and the
loop): the loop waits on the children's pipes with its wake-up (`waitables`), collects replies,
kills overdue children and starts replacements in `take_outcomes`."""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import time
from collections import deque
from typing import Any

from .execution import Outcome
from .runners import HARD_TIMEOUT_GRACE, name_timeout
from .wire import ClaimedTask

CHILD_MODULE = "pids.process_child"
MAX_RESPAWN_FAILURES = 5


class _Slot:
    def __init__(self, process: Any, connection: Any) -> None:
        self.process = process
        self.connection = connection
        self.task: ClaimedTask | None = None
        self.started = 0.0


class ProcessSlots:
    def __init__(self, count: int, allowed_modules: tuple[str, ...], max_result_bytes: int) -> None:
        self.count = count
        self.allowed_modules = allowed_modules
        self.max_result_bytes = max_result_bytes
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload([CHILD_MODULE])
        self._queued: deque[ClaimedTask] = deque()
        self._respawn_failures = 0
        self._slots = [self._spawn() for _ in range(count)]

    def _spawn(self) -> _Slot:
        parent_end, child_end = self._context.Pipe()
        process = self._context.Process(
            target=_child_main,
            args=(child_end, self.allowed_modules, self.max_result_bytes),
            name="pids-task",
            daemon=True,
        )
        process.start()
        child_end.close()
        return _Slot(process, parent_end)

    def submit(self, task: ClaimedTask) -> None:
        self._queued.append(task)
        self._dispatch()

    def waitables(self) -> list[Any]:
        """What the claim loop waits on besides its wake-up: busy children's pipes, every child's
        exit."""
        return [s.connection for s in self._slots if s.task is not None] + [s.process.sentinel for s in self._slots]

    def take_outcomes(self) -> list[Outcome]:
        outcomes = self._collect() + self._kill_overdue()
        self._dispatch()
        return outcomes

    def seconds_to_next_timeout(self) -> float | None:
        """Until the earliest hard deadline of a running task."""
        now = time.monotonic()
        left = [
            s.task.timeout + HARD_TIMEOUT_GRACE - (now - s.started)
            for s in self._slots
            if s.task is not None and s.task.timeout is not None
        ]
        return max(0.0, min(left)) if left else None

    def healthy(self) -> tuple[bool, str]:
        if self._respawn_failures >= MAX_RESPAWN_FAILURES:
            return False, f"task processes could not be started {self._respawn_failures} times in a row"
        return True, f"{self.count} process slots"

    def run_inline(self, budget_seconds: float) -> None:
        return None

    def has_inline_work(self) -> bool:
        return False

    def stop(self) -> None:
        for slot in self._slots:
            with contextlib.suppress(OSError, ValueError):
                slot.connection.send(None)
        deadline = time.monotonic() + 1.0
        for slot in self._slots:
            slot.process.join(max(0.0, deadline - time.monotonic()))
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join(1.0)

    def _dispatch(self) -> None:
        for slot in self._slots:
            if not self._queued:
                return
            if slot.task is None and slot.process.is_alive():
                task = self._queued.popleft()
                slot.task, slot.started = task, time.monotonic()
                # a child that died: _collect finds it, and the task fails with it
                with contextlib.suppress(OSError, ValueError):
                    slot.connection.send((task.fn, task.args_json, task.kwargs_json, task.timeout))

    def _collect(self) -> list[Outcome]:
        outcomes = []
        for i, slot in enumerate(self._slots):
            closed = False
            if slot.task is not None and slot.connection.poll():
                try:
                    ok, text, retryable, seconds = slot.connection.recv()
                except (EOFError, OSError):
                    closed = True  # the child is gone (its exit may not be visible yet)
                else:
                    outcomes.append(
                        name_timeout(
                            Outcome(
                                slot.task,
                                ok,
                                result_json=text if ok else "null",
                                error="" if ok else text,
                                retryable=retryable,
                                seconds=seconds,
                            )
                        )
                    )
                    slot.task = None
                    continue
            if closed or not slot.process.is_alive():
                slot.process.join(1.0)
                if slot.process.is_alive():
                    slot.process.kill()
                    slot.process.join(1.0)
                if slot.task is not None:
                    code = slot.process.exitcode
                    how = (
                        f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
                    )
                    outcomes.append(
                        Outcome(
                            slot.task,
                            False,
                            seconds=time.monotonic() - slot.started,
                            error=f"WorkerProcessDied: the task's process {how}",
                        )
                    )
                self._replace(i)
        return outcomes

    def _kill_overdue(self) -> list[Outcome]:
        outcomes = []
        now = time.monotonic()
        for i, slot in enumerate(self._slots):
            task = slot.task
            if task is None or task.timeout is None or now - slot.started <= task.timeout + HARD_TIMEOUT_GRACE:
                continue
            slot.process.kill()
            slot.process.join(1.0)
            outcomes.append(
                Outcome(
                    task,
                    False,
                    seconds=now - slot.started,
                    error=(
                        f"TimeoutError: task ran longer than its timeout of {task.timeout:g}s and did not stop at the "
                        f"soft limit; its process was killed {HARD_TIMEOUT_GRACE:g}s later"
                    ),
                )
            )
            self._replace(i)
        return outcomes

    def _replace(self, index: int) -> None:
        self._slots[index].connection.close()
        self._slots[index].task = None
        try:
            self._slots[index] = self._spawn()
            self._respawn_failures = 0
        except OSError:
            self._respawn_failures += 1


def _child_main(connection: Any, allowed_modules: tuple[str, ...], max_result_bytes: int) -> None:
    from .process_child import serve

    serve(connection, allowed_modules, max_result_bytes)
