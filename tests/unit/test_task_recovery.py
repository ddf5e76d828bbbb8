"""The PidsTask's own record of which items finished, and what to re-enqueue when Redis lost data."""

from __future__ import annotations

import pytest

from pids_operator.task_recovery import (
    batch_counts,
    decode_ranges,
    encode_ranges,
    item_index,
    missing_items,
    record_finished,
    requeued_condition,
)


@pytest.mark.parametrize(
    ("indices", "text"),
    [
        ([], ""),
        ([3], "3"),
        ([0, 1, 2, 5], "0-2,5"),
        ([9, 1, 2, 2, 0], "0-2,9"),
        (list(range(1000)), "0-999"),
    ],
)
def test_indices_are_kept_as_ranges(indices: list[int], text: str) -> None:
    assert encode_ranges(indices) == text
    assert decode_ranges(text) == set(indices)


def test_item_index_reads_only_ids_of_its_batch() -> None:
    assert item_index("b1-17", "b1") == 17
    assert item_index("b1-x", "b1") is None and item_index("b2-3", "b1") is None


def test_finished_items_are_recorded_by_state() -> None:
    states = {"b-0": "succeeded", "b-1": "succeeded", "b-2": "running", "b-3": "failed", "b-4": "pending"}
    assert record_finished(None, states, "b") == {"failed": "3", "succeeded": "0-1"}


def test_redis_decides_where_it_has_the_item_and_the_record_keeps_what_it_lost() -> None:
    first = record_finished(None, {"b-0": "succeeded", "b-1": "failed", "b-2": "succeeded"}, "b")
    # b-1 sent back by `kubectl pids retry`, b-3 finished, b-2 lost by Redis
    assert record_finished(first, {"b-0": "succeeded", "b-1": "pending", "b-3": "cancelled"}, "b") == {
        "cancelled": "3",
        "succeeded": "0,2",
    }


def test_what_redis_lost_is_what_is_neither_recorded_nor_present() -> None:
    finished = {"succeeded": "0-4"}
    assert missing_items(10, finished, {"b-5": "running", "b-6": "pending"}, "b") == [7, 8, 9]
    assert missing_items(10, finished, {f"b-{i}": "pending" for i in range(5, 10)}, "b") == []
    assert missing_items(3, {}, {}, "b") == [0, 1, 2]


def test_counts_join_the_record_and_what_redis_shows_without_counting_twice() -> None:
    finished = {"succeeded": "0-4", "failed": "5"}
    states = {"b-4": "running", "b-5": "pending", "b-6": "running", "b-7": "pending"}  # 0-3 lost, 4 and 5 again
    assert batch_counts(finished, states, "b") == {"succeeded": 4, "running": 2, "pending": 2}


def test_the_requeued_condition_gives_the_counts_and_epochs() -> None:
    c = requeued_condition(700, 1200, 500, ("e1", "e2"), "2026-01-01T00:00:00Z")
    assert (c["type"], c["status"], c["reason"]) == ("Requeued", "True", "RedisDataLost")
    assert (
        "re-enqueued 700 of 1200" in c["message"]
        and "500 had finished" in c["message"]
        and "'e1' -> 'e2'" in c["message"]
    )
