"""The PidsTask as the durable record of its work (pure): which items reached a final state,
kept compactly in the status, so that when Redis loses data the operator re-enqueues exactly
the unfinished part, under the same ids.

status.finished maps a final state to the item indices in it as ranges: {"succeeded": "0-499,512"}.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from .conditions import Condition, condition

FINAL_STATES = ("succeeded", "failed", "cancelled")


def encode_ranges(indices: Iterable[int]) -> str:
    """Sorted, deduplicated indices as "a-b,c": 0,1,2,5 -> "0-2,5"."""
    out: list[str] = []
    run: list[int] = []
    for i in sorted(set(indices)):
        if run and i == run[-1] + 1:
            run[-1] = i
            continue
        if run:
            out.append(f"{run[0]}" if run[0] == run[1] else f"{run[0]}-{run[1]}")
        run = [i, i]
    if run:
        out.append(f"{run[0]}" if run[0] == run[1] else f"{run[0]}-{run[1]}")
    return ",".join(out)


def decode_ranges(text: str) -> set[int]:
    out: set[int] = set()
    for part in filter(None, text.split(",")):
        first, _, last = part.partition("-")
        out.update(range(int(first), int(last or first) + 1))
    return out


def item_index(task_id: str, batch_id: str) -> int | None:
    """i of "<batch_id>-<i>", or None for an id of another shape."""
    prefix = f"{batch_id}-"
    tail = task_id[len(prefix) :] if task_id.startswith(prefix) else ""
    return int(tail) if tail.isdigit() else None


def recorded(finished: Mapping[str, str] | None) -> dict[int, str]:
    """Item index -> final state, from status.finished."""
    return {i: state for state, ranges in (finished or {}).items() for i in decode_ranges(str(ranges))}


def record_finished(previous: Mapping[str, str] | None, states: Mapping[str, str], batch_id: str) -> dict[str, str]:
    """status.finished updated from what Redis shows: where Redis has an item, its state decides
    (a dead-lettered item sent back by `kubectl pids retry` is unfinished again); the record
    keeps the items Redis does not have."""
    known = recorded(previous)
    for task_id, state in states.items():
        i = item_index(task_id, batch_id)
        if i is None:
            continue
        if state in FINAL_STATES:
            known[i] = state
        else:
            known.pop(i, None)
    by_state: dict[str, list[int]] = {}
    for i, state in known.items():
        by_state.setdefault(state, []).append(i)
    return {state: encode_ranges(by_state[state]) for state in sorted(by_state)}


def missing_items(total: int, finished: Mapping[str, str], states: Mapping[str, str], batch_id: str) -> list[int]:
    """Items neither recorded final nor present in Redis: what Redis lost."""
    done = recorded(finished)
    present = {item_index(t, batch_id) for t in states}
    return [i for i in range(total) if i not in done and i not in present]


def batch_counts(finished: Mapping[str, str], states: Mapping[str, str], batch_id: str) -> dict[str, int]:
    """Items per state: what Redis shows, and the recorded final state of the items it lost."""
    present = {item_index(t, batch_id) for t in states}
    counts: Counter[str] = Counter(states.values())
    counts.update(state for i, state in recorded(finished).items() if i not in present)
    return dict(counts)


def requeued_condition(requeued: int, total: int, finished: int, epochs: tuple[str, str], at: str) -> Condition:
    before, after = epochs
    return condition(
        "Requeued",
        True,
        "RedisDataLost",
        f"Redis lost this task's records (epoch {before!r} -> {after!r}, noticed {at}): "
        f"re-enqueued {requeued} of {total} task(s) under the same ids; {finished} had finished",
    )


def carried_requeued(previous: Mapping[str, Any]) -> list[Condition]:
    """The last Requeued condition, kept while nothing new happens."""
    return [dict(c) for c in previous.get("conditions") or [] if c.get("type") == "Requeued"]
