"""Process slots: each slot is a child process that runs one task at a time, so a CPU-bound task
neither blocks the worker's heartbeat nor other slots, anything a task does to its process
(SystemExit, os._exit, a crash) fails only that task, and a timeout is hard: the child raises
SoftTimeout inside the task at its timeout and is killed HARD_TIMEOUT_GRACE later if it has not
ended. Children come from a fork server, so they start single-threaded and fast."""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import threading
import time
from collections import deque
from typing import Any, Callable

from .execution import Outcome
from .runners import HARD_TIMEOUT_GRACE, name_timeout
from .wire import ClaimedTask

CHILD_MODULE = "pids.process_child"
SUPERVISOR_TICK = 0.5  # s: the longest the supervisor waits before looking at deadlines again
MAX_RESPAWN_FAILURES = 5


class _Slot:
    def __init__(self, process: Any, connection: Any) -> None:
        self.process = process
        self.connection = connection
        self.task: ClaimedTask | None = None
        self.started = 0.0


class ProcessSlots:
    def __init__(self, count: int, allowed_modules: tuple[str, ...], max_result_bytes: int,
                 on_outcome: Callable[[], None]) -> None:
        self.count = count
        self.allowed_modules = allowed_modules
        self.max_result_bytes = max_result_bytes
        self._on_outcome = on_outcome
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload([CHILD_MODULE])
        self._lock = threading.Lock()
        self._queued: deque[ClaimedTask] = deque()
        self._outcomes: list[Outcome] = []
        self._respawn_failures = 0
        self._stopping = False
        self._wake_reader, self._wake_writer = self._context.Pipe(duplex=False)
        self._slots = [self._spawn() for _ in range(count)]
        self._supervisor = threading.Thread(target=self._supervise, name="pids-process-slots", daemon=True)
        self._supervisor.start()

    def _spawn(self) -> _Slot:
        parent_end, child_end = self._context.Pipe()
        process = self._context.Process(target=_child_main, args=(child_end, self.allowed_modules,
                                                                   self.max_result_bytes),
                                        name="pids-task", daemon=True)
        process.start()
        child_end.close()
        return _Slot(process, parent_end)

    # -- the worker's side ---------------------------------------------------------------
    def submit(self, task: ClaimedTask) -> None:
        with self._lock:
            self._queued.append(task)
            self._dispatch()

    def take_outcomes(self) -> list[Outcome]:
        with self._lock:
            outcomes, self._outcomes = self._outcomes, []
        return outcomes

    def seconds_to_next_timeout(self) -> float | None:
        return None  # the supervisor enforces timeouts on its own

    def healthy(self) -> tuple[bool, str]:
        if self._respawn_failures >= MAX_RESPAWN_FAILURES:
            return False, f"task processes could not be started {self._respawn_failures} times in a row"
        if not self._supervisor.is_alive():
            return False, "the process slots' supervisor thread stopped"
        return True, f"{self.count} process slots"

    def run_inline(self, budget_seconds: float) -> None:
        return None

    def has_inline_work(self) -> bool:
        return False

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            slots = list(self._slots)
        self._wake_writer.send(None)
        for slot in slots:
            try:
                slot.connection.send(None)
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + 1.0
        for slot in slots:
            slot.process.join(max(0.0, deadline - time.monotonic()))
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join(1.0)

    # -- the supervisor ------------------------------------------------------------------
    def _dispatch(self) -> None:
        """Give queued tasks to idle slots (called with the lock held)."""
        for slot in self._slots:
            if not self._queued:
                return
            if slot.task is None and slot.process.is_alive():
                task = self._queued.popleft()
                slot.task, slot.started = task, time.monotonic()
                try:
                    slot.connection.send((task.fn, task.args_json, task.kwargs_json, task.timeout))
                except (OSError, ValueError):
                    pass  # the child died: its sentinel reports it, and the task fails with it
        if self._queued:
            self._wake_writer.send(None)

    def _supervise(self) -> None:
        while True:
            with self._lock:
                if self._stopping:
                    return
                waitables: list[Any] = [self._wake_reader]
                for slot in self._slots:
                    waitables += [slot.connection, slot.process.sentinel]
            ready = multiprocessing.connection.wait(waitables, timeout=SUPERVISOR_TICK)
            with self._lock:
                if self._stopping:
                    return
                if self._wake_reader in ready:
                    while self._wake_reader.poll():
                        self._wake_reader.recv()
                finished = self._collect(ready) + self._kill_overdue()
                self._outcomes += finished
                self._dispatch()
            if finished:
                self._on_outcome()

    def _collect(self, ready: list[Any]) -> list[Outcome]:
        outcomes = []
        for i, slot in enumerate(self._slots):
            closed = False
            if slot.connection in ready:
                try:
                    ok, text, retryable, seconds = slot.connection.recv()
                except (EOFError, OSError):
                    closed = True  # the child is gone (its sentinel may not have fired yet)
                else:
                    if slot.task is not None:
                        outcomes.append(name_timeout(Outcome(slot.task, ok, result_json=text if ok else "null",
                                                             error="" if ok else text, retryable=retryable,
                                                             seconds=seconds)))
                        slot.task = None
                    continue
            if closed or slot.process.sentinel in ready or not slot.process.is_alive():
                slot.process.join(1.0)
                if slot.process.is_alive():
                    slot.process.kill()
                    slot.process.join(1.0)
                if slot.task is not None:
                    code = slot.process.exitcode
                    how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
                    outcomes.append(Outcome(slot.task, False, seconds=time.monotonic() - slot.started,
                                            error=f"WorkerProcessDied: the task's process {how}"))
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
            outcomes.append(Outcome(task, False, seconds=now - slot.started, error=(
                f"TimeoutError: task ran longer than its timeout of {task.timeout:g}s and did not stop at the "
                f"soft limit; its process was killed {HARD_TIMEOUT_GRACE:g}s later")))
            self._replace(i)
        return outcomes

    def _replace(self, index: int) -> None:
        self._slots[index].connection.close()
        try:
            self._slots[index] = self._spawn()
            self._respawn_failures = 0
        except OSError:
            self._respawn_failures += 1
            self._slots[index].task = None


def _child_main(connection: Any, allowed_modules: tuple[str, ...], max_result_bytes: int) -> None:
    from .process_child import serve

    serve(connection, allowed_modules, max_result_bytes)
