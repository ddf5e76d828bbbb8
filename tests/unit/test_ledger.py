"""The worker's ledger of finished attempts: what it sends, what it owes Redis, and a result
Redis would refuse turned into its task's failure before it is sent."""

from __future__ import annotations

from pids.execution import Outcome
from pids.ledger import Ledger
from pids.wire import ClaimedTask, CompletionReply


def task(task_id: str) -> ClaimedTask:
    return ClaimedTask(task_id, f"1|5|e|w-{task_id}", "m:f", "[]", "{}", None, 2.0, "")


def test_a_result_larger_than_redis_accepts_fails_its_task_before_it_is_sent() -> None:
    ledger = Ledger()
    ledger.max_result_bytes = 100
    ledger.record(Outcome(task("small"), True, '"' + "x" * 20 + '"', seconds=0.5))
    ledger.record(Outcome(task("ascii"), True, '"' + "x" * 98 + '"'))  # exactly 100 bytes: accepted
    ledger.record(Outcome(task("wide"), True, '"' + "\u00e9" * 50 + '"'))  # 52 characters, 102 bytes
    assert [c.task_id for c in ledger.completions] == ["small", "ascii"]
    (failure,) = ledger.failures
    assert failure.task.id == "wide" and not failure.retryable
    assert failure.error == "result could not be stored: 102 bytes, more than Redis accepts (proto-max-bulk-len 100)"


def test_the_ids_owed_to_redis_are_the_unsent_completions_and_failures() -> None:
    ledger = Ledger()
    ledger.record(Outcome(task("a"), True, "1"))
    ledger.record(Outcome(task("b"), False, error="boom"))
    ledger.record(Outcome(task("c"), True, "3"))
    assert ledger.owed_ids() == ["a", "c", "b"] and ledger.unsent_results() == 3
    sent = ledger.next_completions()
    stale = ledger.sent(sent, ledger.totals, CompletionReply(["a"], ["c"], []))
    assert stale == ["c"] and ledger.owed_ids() == ["b"]
    assert (ledger.totals.tasks, ledger.accepted, ledger.stale) == (1, 1, 1)  # the stale one is not counted
    ledger.failure_sent()
    assert ledger.owed_ids() == [] and bool(ledger) is True  # the totals are still to be sent
