"""A worker's share of a plan, kept across claim cycles, and the window it is planned from (pure logic)."""

from __future__ import annotations

from pids.cycle import MAX_BATCHED_WINDOW, MIN_WINDOW, CycleConfig, claim_window
from pids.share import MAX_AGE, SLACK, Share


def test_candidates_are_the_front_of_the_share_plus_slack() -> None:
    share = Share()
    share.replace([f"t{i}" for i in range(10)], planned_at=0.0)
    assert share.candidates(1) == ["t0", "t1", "t2", "t3"][: 1 + SLACK]
    assert share.candidates(20) == [f"t{i}" for i in range(10)]


def test_consume_drops_up_to_the_last_task_won() -> None:
    share = Share()
    share.replace(["a", "b", "c", "d", "e", "f"], planned_at=0.0)
    sent = share.candidates(1)
    share.consume(sent, ["b"], wanted=1)  # "a" was taken by another worker, "b" won
    assert share.candidates(1)[0] == "c" and len(share) == 4


def test_consume_drops_every_candidate_when_fewer_were_won_than_wanted() -> None:
    share = Share()
    share.replace(["a", "b", "c", "d", "e", "f"], planned_at=0.0)
    sent = share.candidates(2)
    share.consume(sent, ["c"], wanted=2)  # the others sent were all taken
    assert len(share) == 6 - len(sent)
    share.consume(share.candidates(0), [], wanted=0)  # nothing sent, nothing won: nothing dropped
    assert len(share) == 6 - len(sent)


def test_a_share_runs_low_near_its_end_or_with_age_and_expires() -> None:
    share = Share()
    share.replace(["a", "b", "c", "d", "e", "f"], planned_at=10.0)
    assert share.usable(10.0) and not share.runs_low(1, 10.0)
    assert share.runs_low(4, 10.0)  # not enough left for the claim after this one
    assert share.runs_low(1, 10.0 + MAX_AGE * 0.6)  # getting old: bring a fresh snapshot
    assert not share.usable(10.0 + MAX_AGE * 1.01)
    share.clear()
    assert not share.usable(10.0)


def test_a_batched_worker_reads_a_batch_for_every_slot_of_the_cluster_up_to_a_bound() -> None:
    """Eight workers of 100 slots used to split a 200-task window (two of one worker's batches) and
    each claim 25 tasks per round trip; now the window holds a batch for each, within a bound."""
    batched = CycleConfig("w", slots=1, prefetch=99, window=64, heaviest=16, view=32, lease_ms=30_000)
    assert claim_window(batched, 200)[0] == 200  # two workers: two of its own batches
    assert claim_window(batched, 800)[0] == 800
    assert claim_window(batched, 100_000)[0] == MAX_BATCHED_WINDOW
    one_slot = CycleConfig("w", slots=1, prefetch=0, window=64, heaviest=16, view=32, lease_ms=30_000)
    assert claim_window(one_slot, 8)[0] == MIN_WINDOW  # one-slot workers: as before
    assert claim_window(one_slot, 1000)[0] == one_slot.window
