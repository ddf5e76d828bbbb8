"""A worker's finished attempts until Redis has them: completions to send, failures to send, and
the totals (count, weight, busy seconds) of accepted completions not yet added to its counters.
Pure bookkeeping: the claim loop says what it sent and what came back; nothing is lost on a
failed call, and a completion Redis cannot take alone is turned into the task's failure."""

from __future__ import annotations

import random
from collections.abc import Sequence

from .execution import Outcome
from .protocol import MAX_COMPLETIONS
from .wire import NO_TOTALS, ClaimedTask, Completion, CompletionReply, WorkerTotals


class Ledger:
    def __init__(self) -> None:
        self.max_result_bytes: int | None = None  # the largest value Redis accepts, once known
        self.completions: list[Completion] = []
        self.failures: list[Outcome] = []
        self.totals = NO_TOTALS  # accepted completions not yet added to the worker's counters
        self.accepted = 0
        self.stale = 0
        self.already = 0

    def record(self, outcome: Outcome) -> None:
        task = outcome.task
        limit = self.max_result_bytes
        if outcome.ok and limit is not None and len(outcome.result_json) * 4 > limit:
            size = len(outcome.result_json.encode())
            if size > limit:  # Redis would refuse the whole call (and may drop the connection)
                error = (
                    f"result could not be stored: {size} bytes, more than Redis accepts (proto-max-bulk-len {limit})"
                )
                outcome = outcome._replace(ok=False, error=error, retryable=False)
        if outcome.ok:
            self.completions.append(
                Completion(task.id, task.token, outcome.result_json, outcome.seconds, task.weight, task.batch)
            )
        else:
            self.failures.append(outcome)

    def __bool__(self) -> bool:
        """Something is still to be sent."""
        return bool(self.completions or self.failures or self.totals.tasks)

    def owed_ids(self) -> list[str]:
        """Ids of the tasks whose outcome Redis does not have yet (their leases stay renewed)."""
        return [c.task_id for c in list(self.completions)] + [o.task.id for o in list(self.failures)]

    def unsent_results(self) -> int:
        return len(self.completions) + len(self.failures)

    def next_completions(self) -> list[Completion]:
        """The completions the next call carries (at most one script call's worth)."""
        return self.completions[:MAX_COMPLETIONS]

    def sent(self, completions: Sequence[Completion], totals: WorkerTotals, reply: CompletionReply) -> list[str]:
        """After a call that carried `completions` and `totals` and got `reply`: drop what was
        sent and count the accepted ones (and those already done) towards the totals still to
        send. Returns the stale ids (a newer attempt or epoch owns them)."""
        del self.completions[: len(completions)]
        if totals.tasks:
            self.totals = NO_TOTALS
        self.accepted += len(reply.accepted)
        self.already += len(reply.already)
        self.stale += len(reply.stale)
        counted = completions
        if reply.stale:
            rejected = set(reply.stale)
            counted = [c for c in completions if c.task_id not in rejected]
        if counted:
            self.totals = self.totals.plus(counted)
        return reply.stale

    def next_failure(self) -> Outcome | None:
        return self.failures[0] if self.failures else None

    def failure_sent(self) -> None:
        self.failures.pop(0)

    def unstorable(self, completion: Completion, error: str) -> None:
        """Redis refused this completion on its own (e.g. its result): fail the task instead."""
        self.completions.remove(completion)
        task = ClaimedTask(
            completion.task_id, completion.token, "", "[]", "{}", None, completion.weight, completion.batch
        )
        self.failures.append(
            Outcome(
                task,
                False,
                error=f"result could not be stored: {error}",
                retryable=False,
                seconds=completion.busy_seconds,
            )
        )


def retry_backoff_ms(base_seconds: float, attempt: int) -> int:
    """Exponential backoff with jitter: base * 2^(attempt-1) * [0.5, 1.5)."""
    return int(1000 * base_seconds * 2 ** min(attempt - 1, 20) * (0.5 + random.random()))
