"""A worker's share of one plan, kept across claim cycles.

Planning is the costly Python step of a claim cycle, so a worker plans as if it had
several times its free slots and then claims its share a few tasks at a time, from
the front, until the share runs out or grows old. Each claim sends a few candidates
more than it wants: the claim script takes the first ones still pending, so a task
another worker took meanwhile costs nothing but a skipped id.
"""

from __future__ import annotations

from collections.abc import Sequence

from .protocol import MAX_CLAIM_CANDIDATES

DEPTH = 32  # plan for this many times the free slots (a one-slot worker plans every ~32 claims)
SLACK = 3  # candidates sent beyond the tasks wanted
MAX_AGE = 0.02  # s; an older share is dropped (new, higher-priority work shows up within this)


class Share:
    def __init__(self) -> None:
        self._ids: list[str] = []
        self._planned_at = 0.0

    def replace(self, ids: Sequence[str], planned_at: float) -> None:
        self._ids = list(ids)
        self._planned_at = planned_at

    def clear(self) -> None:
        self._ids = []

    def usable(self, now: float) -> bool:
        return bool(self._ids) and now - self._planned_at < MAX_AGE

    def candidates(self, wanted: int) -> list[str]:
        """The front of the share: `wanted` tasks plus a few in case some were taken."""
        return self._ids[: min(wanted + SLACK, MAX_CLAIM_CANDIDATES)] if wanted > 0 else []

    def runs_low(self, wanted: int, now: float) -> bool:
        """Whether the next cycle should bring a fresh snapshot to plan from."""
        return len(self._ids) < 2 * wanted or now - self._planned_at > MAX_AGE / 2

    def consume(self, sent: Sequence[str], won: Sequence[str], wanted: int) -> None:
        """Drop what the claim looked at: every candidate up to the last one won, or all of
        them when it won fewer than it wanted (the rest were taken by other workers)."""
        if not won or len(won) < wanted:
            looked_at = len(sent)
        else:
            last = won[-1]
            looked_at = sent.index(last) + 1 if last in sent else len(sent)
        del self._ids[:looked_at]

    def __len__(self) -> int:
        return len(self._ids)
