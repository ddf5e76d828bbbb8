"""The liveness verdict of the claim loop (pure logic, with a tiny stuck limit)."""

from __future__ import annotations

import time

from pids.health import LoopWatch


def test_loop_is_stuck_when_it_stops_going_round() -> None:
    watch = LoopWatch(stuck_after=0.05)
    assert watch.alive()[0]
    time.sleep(0.08)
    alive, reason = watch.alive()
    assert not alive and "stuck" in reason


def test_a_task_the_loop_runs_itself_keeps_it_alive_however_long() -> None:
    watch = LoopWatch(stuck_after=0.05)
    with watch.running_task():
        time.sleep(0.08)
        alive, reason = watch.alive()
        assert alive and "running a task" in reason
    assert watch.alive()[0]  # finishing the task counts as going round
