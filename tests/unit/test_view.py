"""From a Redis snapshot to placement inputs."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from pids.view import task_window, worker_table
from pids.wire import Snapshot

NOW = 1_800_000_000_000


def snapshot() -> Snapshot:
    alive, dead = NOW + 1000, NOW - 1
    return Snapshot(
        now_ms=NOW,
        task_ids=["t1", "t2", "gone"],
        task_meta=[f"7\t2.5\t0\tz1/n1\t7\t{NOW - 2000}", f"-3298534883320\t1.0\t3\t\t8\t{NOW - 500}", None],
        workers={
            "b": {"slots": 2, "prefetch": 1, "speed": 2.0, "capacity": 4.0, "position": "z1/n2", "deadline": alive},
            "a": {"slots": 4, "speed": 1.0, "capacity": 4.0, "deadline": alive},
            "drainer": {"slots": 4, "draining": True, "deadline": alive},
            "dead": {"slots": 8, "deadline": dead},
        },
        loads={"a": 3.0, "a:n": 3, "b": 1.0, "b:n": 1, "drainer": 0.0},
    )


def test_worker_table_keeps_live_workers_sorted_with_free_slots() -> None:
    table = worker_table(snapshot(), me="a", my_free_slots=2)
    assert table.ids == ["a", "b", "drainer"]
    assert list(table.free_slots) == [2, 2, 0]  # me: exact; b: 2 + 1 prefetch - 1 held; draining: none
    assert list(table.capacity) == [4.0, 4.0, 4.0] and list(table.speed) == [1.0, 2.0, 1.0]
    assert list(table.load) == [3.0, 1.0, 0.0] and list(table.held) == [3.0, 1.0, 0.0]
    assert table.position == ["", "z1/n2", ""]


def test_a_table_holds_the_whole_cluster_only_when_the_view_was_not_full() -> None:
    """Ties follow sequence numbers only when every planner sees every worker: a full view (the
    top-V workers plus the planner) may have left some out, and differs from planner to planner."""
    assert worker_table(snapshot(), me="a", my_free_slots=2).whole_cluster  # 4 workers, view of 32
    full = replace(snapshot(), view=4)
    assert not full.sees_every_worker and not worker_table(full, me="a", my_free_slots=2).whole_cluster


def test_task_window_parses_metadata_and_derives_age() -> None:
    window = task_window(snapshot())
    assert window.ids == ["t1", "t2"]  # "gone" was claimed between the reads
    assert list(window.weight) == [2.5, 1.0] and list(window.priority) == [0.0, 3.0]
    assert window.position == ["z1/n1", ""] and list(window.seq) == [7.0, 8.0]
    assert np.allclose(window.age, [2.0, 0.5])


def test_task_window_of_default_weights_and_priorities() -> None:
    """A column that repeats one text (the defaults) is parsed once; the values are the same."""
    metas = [f"{i}\t1\t0\t\t{i}\t{NOW - 1000 * i}" for i in range(5)]
    window = task_window(replace(snapshot(), task_ids=[f"t{i}" for i in range(5)], task_meta=metas))
    assert list(window.weight) == [1.0] * 5 and list(window.priority) == [0.0] * 5
    assert window.position == [""] * 5 and list(window.seq) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert np.allclose(window.age, [0.0, 1.0, 2.0, 3.0, 4.0])


def test_task_window_of_an_empty_or_vanished_window() -> None:
    window = task_window(replace(snapshot(), task_ids=["gone"], task_meta=[None]))
    assert window.ids == [] and len(window.weight) == 0 and window.position == []


def test_task_window_leaves_out_malformed_metadata_and_plans_the_rest() -> None:
    """A pending entry whose metadata is broken (missing fields, not a number) is one poison
    task: it is left out of the window, and the other tasks are planned as usual."""
    metas = [
        "7\t2.5\t0",
        "8\t1\t0\t\t8\t1000",
        "9\tNaN\t0\t\t9\t1000",
        "10\tx\t0\t\t10\t1000",
        "11\t3\t0\tz/n\t11\t1000",
    ]
    window = task_window(replace(snapshot(), task_ids=[f"t{i}" for i in range(5)], task_meta=metas))
    assert window.ids == ["t1", "t4"] and list(window.weight) == [1.0, 3.0] and window.position == ["", "z/n"]
