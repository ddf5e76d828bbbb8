"""Where claimed tasks run: the Runner contract, and the in-process runners (thread slots; inline
on the claim loop's own thread for one slot). Process slots are in process_slots.py.

Every runner turns whatever happens into Outcomes (execution.run_task); a task past its timeout
gets a TimeoutError raised inside it (the soft limit) and, if it does not end, is failed and
abandoned (threads) or killed (processes)."""

from __future__ import annotations

import ctypes
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from .execution import Outcome, run_task
from .wire import ClaimedTask

HARD_TIMEOUT_GRACE = 2.0  # s after the soft timeout before a task is given up (thread) or killed (process)
MAX_ABANDONED = 8  # threads left running past their timeout before the worker reports itself unhealthy


class Runner(Protocol):
    """What the worker needs from a pool of slots."""

    def submit(self, task: ClaimedTask) -> None: ...

    def take_outcomes(self) -> list[Outcome]:
        """Finished attempts and timed-out ones, each once."""
        ...

    def run_inline(self, budget_seconds: float) -> None:
        """Run queued tasks on the caller's thread for about `budget_seconds` (inline runners only)."""
        ...

    def has_inline_work(self) -> bool: ...

    def waitables(self) -> list[Any]:
        """What the claim loop waits on, besides its wake-up, to hear of finished tasks."""
        ...

    def seconds_to_next_timeout(self) -> float | None: ...

    def healthy(self) -> tuple[bool, str]: ...

    def stop(self) -> None: ...


class SoftTimeout(TimeoutError):
    """Raised inside a task that ran past its timeout."""


def name_timeout(outcome: Outcome) -> Outcome:
    """A task stopped by SoftTimeout: say which limit it hit, keep its traceback."""
    if outcome.ok or not outcome.error.startswith("SoftTimeout"):
        return outcome
    head = f"TimeoutError: task ran longer than its timeout of {outcome.task.timeout:g}s (stopped at the soft limit)"
    return outcome._replace(error=head + "\n" + outcome.error.partition("\n")[2])


def raise_in_thread(thread_id: int, exc: type[BaseException]) -> bool:
    """Ask Python to raise `exc` in another thread at its next bytecode (not inside a C call)."""
    changed: int = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc))
    return changed == 1


def clear_pending_exception(thread_id: int) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), None)


class _Running:
    __slots__ = ("done", "soft_sent", "started", "task", "thread_id")

    def __init__(self, task: ClaimedTask, thread_id: int) -> None:
        self.task = task
        self.started = time.monotonic()
        self.thread_id = thread_id
        self.soft_sent = False
        self.done = False  # the task's call returned: no SoftTimeout may be sent any more


class ThreadSlots:
    """A fixed number of task threads. A task past its timeout gets SoftTimeout raised inside it;
    one still running HARD_TIMEOUT_GRACE later is failed, its thread abandoned (its late outcome
    dropped) and replaced. Too many abandoned threads make the runner unhealthy, so the worker is
    restarted instead of running slower for good."""

    def __init__(
        self, count: int, allowed_modules: tuple[str, ...], max_result_bytes: int, on_outcome: Callable[[], None]
    ) -> None:
        self.count = count
        self.allowed_modules = allowed_modules
        self.max_result_bytes = max_result_bytes
        self._inbox: queue.SimpleQueue[ClaimedTask | None] = queue.SimpleQueue()
        self._outcomes: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
        self._on_outcome = on_outcome
        self._lock = threading.Lock()
        self._running: dict[int, _Running] = {}  # by thread ident
        self._abandoned: set[int] = set()
        self._threads: list[threading.Thread] = []
        for _ in range(count):
            self._spawn()

    def _spawn(self) -> None:
        thread = threading.Thread(target=self._serve, name="pids-slot", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _serve(self) -> None:
        me = threading.get_ident()
        while True:
            task = self._inbox.get()
            if task is None:
                return
            running = _Running(task, me)
            with self._lock:
                self._running[me] = running
            outcome = None
            try:
                try:
                    outcome = run_task(task, self.allowed_modules, self.max_result_bytes)
                finally:
                    with self._lock:  # no SoftTimeout is sent from here on; one still pending is dropped
                        running.done = True
                        clear_pending_exception(me)
            except SoftTimeout:  # sent as the task ended, raised after its own code returned
                pass
            if outcome is None:
                outcome = Outcome(
                    task,
                    False,
                    error=f"TimeoutError: task ran longer than its timeout of {task.timeout}s",
                    seconds=time.monotonic() - running.started,
                )
            with self._lock:
                self._running.pop(me, None)
                if me in self._abandoned:
                    self._abandoned.discard(me)
                    return  # a replacement thread already took this slot
            self._outcomes.put(name_timeout(outcome))
            self._on_outcome()

    def submit(self, task: ClaimedTask) -> None:
        self._inbox.put(task)

    def take_outcomes(self) -> list[Outcome]:
        outcomes = self._overdue()
        while not self._outcomes.empty():  # one reader: what empty() sees stays there
            outcomes.append(self._outcomes.get_nowait())
        return outcomes

    def _overdue(self) -> list[Outcome]:
        if not self._running:
            return []
        now = time.monotonic()
        given_up = []
        with self._lock:
            for ident, running in list(self._running.items()):
                timeout = running.task.timeout
                if timeout is None or now - running.started <= timeout:
                    continue
                if not running.soft_sent:
                    running.soft_sent = True
                    if not running.done:
                        raise_in_thread(ident, SoftTimeout)
                elif now - running.started > timeout + HARD_TIMEOUT_GRACE:
                    del self._running[ident]
                    self._abandoned.add(ident)
                    given_up.append(
                        Outcome(
                            running.task,
                            False,
                            seconds=now - running.started,
                            error=(
                                f"TimeoutError: task ran longer than its timeout of {timeout:g}s and did not stop; "
                                "its thread was abandoned (use process slots, --pool process, for hard timeouts)"
                            ),
                        )
                    )
        for _ in given_up:
            self._spawn()
        return given_up

    def seconds_to_next_timeout(self) -> float | None:
        now = time.monotonic()
        with self._lock:
            left = [
                r.task.timeout + (HARD_TIMEOUT_GRACE if r.soft_sent else 0.0) - (now - r.started)
                for r in self._running.values()
                if r.task.timeout is not None
            ]
        return max(0.0, min(left)) if left else None

    def healthy(self) -> tuple[bool, str]:
        alive = sum(t.is_alive() for t in self._threads)
        if len(self._abandoned) > MAX_ABANDONED:
            return False, f"{len(self._abandoned)} task threads still run past their timeouts"
        if alive - len(self._abandoned) < self.count:
            return False, f"only {alive - len(self._abandoned)} of {self.count} slot threads alive"
        return True, f"{self.count} slot threads"

    def run_inline(self, budget_seconds: float) -> None:
        return None

    def has_inline_work(self) -> bool:
        return False

    def waitables(self) -> list[Any]:
        return []  # its threads set the wake-up themselves

    def stop(self) -> None:
        for _ in range(self.count):
            self._inbox.put(None)


class InlineSlot:
    """One slot run on the claim loop's own thread, in claim order (no hand-off between threads
    per task). A task with a timeout goes to a one-thread ThreadSlots, which enforces it, and the
    next one waits for it."""

    def __init__(self, allowed_modules: tuple[str, ...], max_result_bytes: int, on_outcome: Callable[[], None]) -> None:
        self.allowed_modules = allowed_modules
        self.max_result_bytes = max_result_bytes
        self._queued: deque[ClaimedTask] = deque()
        self._finished: list[Outcome] = []
        self._timed = ThreadSlots(1, allowed_modules, max_result_bytes, on_outcome)
        self._timed_busy = False
        self.running_since: float | None = None  # monotonic start of the inline task now running

    def submit(self, task: ClaimedTask) -> None:
        self._queued.append(task)

    def has_inline_work(self) -> bool:
        return bool(self._queued) and not self._timed_busy

    def waitables(self) -> list[Any]:
        return []

    def run_inline(self, budget_seconds: float) -> None:
        started = time.monotonic()
        while self.has_inline_work():
            task = self._queued.popleft()
            if task.timeout is not None:
                self._timed_busy = True
                self._timed.submit(task)
                return
            self.running_since = time.monotonic()
            try:
                self._finished.append(run_task(task, self.allowed_modules, self.max_result_bytes))
            finally:
                self.running_since = None
            if time.monotonic() - started > budget_seconds:
                return

    def take_outcomes(self) -> list[Outcome]:
        outcomes, self._finished = self._finished, []
        if self._timed_busy:  # only a task with a timeout runs there
            timed = self._timed.take_outcomes()
            if timed:
                self._timed_busy = False
                outcomes += timed
        return outcomes

    def seconds_to_next_timeout(self) -> float | None:
        return self._timed.seconds_to_next_timeout()

    def healthy(self) -> tuple[bool, str]:
        return self._timed.healthy()

    def stop(self) -> None:
        self._timed.stop()
