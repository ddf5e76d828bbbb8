"""The task runners on their own (no Redis): whatever a task does — SystemExit, KeyboardInterrupt,
os._exit, SIGKILL, holding the GIL, running past its timeout — becomes that task's outcome, and
the slots keep serving the next tasks."""

from __future__ import annotations

import itertools
import json
import os
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from pids.execution import Outcome
from pids.process_slots import ProcessSlots
from pids.runners import MAX_ABANDONED, InlineSlot, Runner, ThreadSlots
from pids.wire import ClaimedTask

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "task_modules"))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.abspath(sys.path[0]), os.environ.get("PYTHONPATH")]))
ALLOWED = ("pids.tasks", "pids_test_tasks")


def task(task_id: str, fn: str, *args: object, timeout: float | None = None) -> ClaimedTask:
    return ClaimedTask(task_id, "1|0|0|w", fn, json.dumps(list(args)), "{}", timeout, 1.0, "")


def outcomes(runner: Runner, count: int, timeout: float = 30.0) -> dict[str, Outcome]:
    found: dict[str, Outcome] = {}
    deadline = time.monotonic() + timeout
    while len(found) < count:
        assert time.monotonic() < deadline, f"only {sorted(found)} of {count} outcomes after {timeout}s"
        runner.run_inline(0.05)
        for outcome in runner.take_outcomes():
            found[outcome.task.id] = outcome
        time.sleep(0.01)
    return found


@pytest.fixture(params=["thread", "process"])
def runner(request: pytest.FixtureRequest) -> Iterator[Runner]:
    made: Runner = (
        ThreadSlots(2, ALLOWED, 1 << 20, lambda: None)
        if request.param == "thread"
        else ProcessSlots(2, ALLOWED, 1 << 20)
    )
    yield made
    made.stop()


def test_system_exit_keyboard_interrupt_and_base_exception_fail_only_their_task(runner: Runner) -> None:
    for i, fn in enumerate(["exit_process", "interrupt", "base_exception"]):
        runner.submit(task(f"bad{i}", f"pids_test_tasks:{fn}"))
    runner.submit(task("good", "pids.tasks:square", 3))
    found = outcomes(runner, 4)
    assert [found[f"bad{i}"].ok for i in range(3)] == [False, False, False]
    assert found["bad0"].error.startswith("SystemExit") and found["bad1"].error.startswith("KeyboardInterrupt")
    assert found["bad2"].error.startswith("BaseException: not an Exception")
    assert found["good"].ok and found["good"].result_json == "9"
    runner.submit(task("after", "pids.tasks:square", 4))
    assert outcomes(runner, 1)["after"].result_json == "16" and runner.healthy()[0]


def test_a_soft_timeout_stops_a_python_loop_inside_the_task(runner: Runner) -> None:
    runner.submit(task("spin", "pids_test_tasks:spin", 30.0, timeout=0.3))
    found = outcomes(runner, 1, timeout=10)["spin"]
    assert not found.ok and found.retryable
    assert found.error.startswith("TimeoutError: task ran longer than its timeout of 0.3s (stopped at the soft limit)")
    assert runner.healthy()[0]


def test_a_result_too_large_or_not_json_fails_its_task(runner: Runner) -> None:
    runner.submit(task("big", "pids_test_tasks:big_result", 2 << 20))
    runner.submit(task("deep", "pids_test_tasks:deep_result", 100_000))
    found = outcomes(runner, 2)
    assert not found["big"].ok and "more than the limit of 1048576" in found["big"].error
    assert not found["deep"].ok and "not JSON-serialisable" in found["deep"].error
    assert not found["big"].retryable and not found["deep"].retryable


def test_process_slots_contain_a_task_that_ends_or_kills_its_process() -> None:
    slots = ProcessSlots(1, ALLOWED, 1 << 20)
    try:
        slots.submit(task("exit", "pids_test_tasks:hard_exit", 7))
        slots.submit(task("kill", "pids_test_tasks:kill_self"))
        slots.submit(task("good", "pids.tasks:square", 5))
        found = outcomes(slots, 3)
        assert "exited with code 7" in found["exit"].error and "killed by signal 9" in found["kill"].error
        assert found["good"].result_json == "25" and slots.healthy()[0]
    finally:
        slots.stop()


def test_process_slots_kill_a_task_blocked_past_its_hard_timeout() -> None:
    slots = ProcessSlots(1, ALLOWED, 1 << 20)
    try:
        slots.submit(task("blocked", "pids_test_tasks:block", 60.0, timeout=0.2))
        slots.submit(task("next", "pids.tasks:square", 6))
        found = outcomes(slots, 2, timeout=20)
        assert "its process was killed" in found["blocked"].error and found["next"].result_json == "36"
    finally:
        slots.stop()


def test_process_slots_keep_other_threads_running_while_a_task_holds_the_gil() -> None:
    ticks = []
    stop = threading.Event()

    def tick() -> None:
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.01)

    slots = ProcessSlots(1, ALLOWED, 1 << 20)
    ticker = threading.Thread(target=tick)
    try:
        ticker.start()
        slots.submit(task("gil", "pids_test_tasks:hold_gil", 60_000_000))
        found = outcomes(slots, 1, timeout=60)["gil"]
        assert found.ok
        gaps = [b - a for a, b in itertools.pairwise(ticks)]
        assert max(gaps) < 0.5, "this process's threads stalled while the task ran"
    finally:
        stop.set()
        ticker.join()
        slots.stop()


def test_thread_slots_abandon_a_blocked_task_and_report_unhealthy_when_too_many_are_stuck() -> None:
    slots = ThreadSlots(MAX_ABANDONED, ALLOWED, 1 << 20, lambda: None)  # the stuck ones in parallel
    try:
        slots.submit(task("blocked", "pids_test_tasks:block", 30.0, timeout=0.05))
        found = outcomes(slots, 1, timeout=10)["blocked"]
        assert "did not stop; its thread was abandoned" in found.error
        slots.submit(task("next", "pids.tasks:square", 2))
        assert outcomes(slots, 1)["next"].result_json == "4" and slots.healthy()[0]
        for i in range(MAX_ABANDONED):
            slots.submit(task(f"b{i}", "pids_test_tasks:block", 30.0, timeout=0.05))
        outcomes(slots, MAX_ABANDONED, timeout=60)
        ok, reason = slots.healthy()
        assert not ok and "past their timeouts" in reason
    finally:
        slots.stop()


def test_an_inline_slot_runs_tasks_in_order_and_contains_system_exit() -> None:
    slot = InlineSlot(ALLOWED, 1 << 20, lambda: None)
    try:
        slot.submit(task("a", "pids.tasks:square", 2))
        slot.submit(task("exit", "pids_test_tasks:exit_process", 0))
        slot.submit(task("timed", "pids.tasks:square", 3, timeout=5.0))
        slot.submit(task("b", "pids.tasks:square", 4))
        found = outcomes(slot, 4)
        assert found["a"].result_json == "4" and found["exit"].error.startswith("SystemExit")
        assert found["timed"].result_json == "9" and found["b"].result_json == "16"
    finally:
        slot.stop()
