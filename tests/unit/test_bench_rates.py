"""How the peers bench turns the worker processes' no-op counters into rates (pure logic, plus
the counter file that bench/peers/benchrec.py writes, read back)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pids_bench.peers import find_peers_dir
from pids_bench.runner import CHECK_EVERY, Progress, all_busy_rate, read_counters, read_progress


def steady(count: int, first: float, rate: float) -> Progress:
    """A process that ran `count` tasks at `rate` per second from `first` on."""
    checkpoints = [first + CHECK_EVERY * (k + 1) / rate for k in range(count // CHECK_EVERY)]
    return Progress(count, first, first + count / rate, checkpoints)


def test_done_by_interpolates_between_checkpoints() -> None:
    p = steady(1000, first=10.0, rate=100.0)  # ends at 20.0
    assert p.done_by(9.0) == 0 and p.done_by(25.0) == 1000
    assert p.done_by(15.0) == pytest.approx(500)
    assert p.done_by(10.5) == pytest.approx(50)


def test_all_busy_rate_leaves_out_the_start_up_of_the_late_process() -> None:
    # alone at 100/s for 5 s, then 60/s beside the late one until 25 s
    alone = [(k + 1) * CHECK_EVERY / 100.0 for k in range(5)]
    shared = [5.0 + (k + 1) * CHECK_EVERY / 60.0 for k in range(12)]
    early = Progress(1700, 0.0, 25.0, alone + shared)
    late = steady(1200, first=5.0, rate=60.0)  # 5 s to start, then 60/s until 25 s
    assert late.last == pytest.approx(25.0)
    assert all_busy_rate([early, late], processes=2) == pytest.approx(120.0)  # 60/s each while both ran
    whole = (early.count + late.count) / (early.last - early.first)
    assert whole == pytest.approx(116.0)
    assert all_busy_rate([early, late], processes=3) is None  # a process never ran a task


def test_no_rate_when_the_last_process_came_too_late() -> None:
    early = steady(990, first=0.0, rate=100.0)  # 0 .. 9.9 s
    late = steady(10, first=9.85, rate=100.0)  # started with the queue nearly empty
    assert all_busy_rate([early, late], processes=2) is None
    assert all_busy_rate([early, steady(400, first=5.0, rate=100.0)], processes=2) == pytest.approx(200.0)


def test_benchrec_counters_read_back_with_their_checkpoints(tmp_path: Path) -> None:
    peers = find_peers_dir(None)
    code = "import benchrec\nfor _ in range(250): benchrec.noop()\n"
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        cwd=peers,
        env=dict(os.environ, BENCH_OUT=str(tmp_path), PYTHONPATH=str(peers)),
        timeout=60,
    )
    (found,) = read_progress(tmp_path)
    assert found.count == 250 and len(found.checkpoints) == 250 // CHECK_EVERY
    assert found.first <= found.checkpoints[0] <= found.checkpoints[1] <= found.last
    assert read_counters(tmp_path) == (250, found.first, found.last)
    assert all_busy_rate([found], processes=1) == pytest.approx(250 / (found.last - found.first))
