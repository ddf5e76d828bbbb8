"""The formats shared by the Lua scripts and Python, packed and parsed here only: claim tokens,
pending-task metadata, the replies of claim, complete and snapshot, and the text convention
(every reply text is a `str`; a client without decode_responses is decoded in `texts`)."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

VIEW = 32  # workers in a claim cycle's view: the ones with the most free slots
META_FIELDS = 6  # of a pending task's metadata: order, weight, priority, position, seq, enqueued ms
CLAIMED_FIELDS = 5  # per task in a claim reply: id attempt spec weight epoch
SPEC_FIELDS = ("fn", "timeout", "batch", "kwargs", "args")  # a task's spec field, tab-separated (lua/task_spec.lua)


def held_field(worker_id: str) -> str:
    """The loads hash's field of a worker's held count (its held weight is under its plain id;
    lua/worker_load.lua writes both)."""
    return f"{worker_id}:n"


DEPARTED_KEPT = 1000  # workers that left and still have totals of their own (older ones are folded)
DEPARTED_WORKERS = "(departed)"  # the worker_totals entry the folded totals are added to


def totals_field(worker_id: str, what: str) -> str:
    """The worker_totals field of a worker's completed "tasks", their "work" or its "busy"
    seconds (lua/complete.lua and fail.lua add to them)."""
    return f"{worker_id}:{what}"


class ClaimToken(NamedTuple):
    """A claim field, "<attempt>|<claimed ms>|<epoch>|<worker>" (lua/claim_token.lua)."""

    attempt: int
    claimed_ms: int | None
    epoch: str
    worker: str


NO_CLAIM = ClaimToken(0, None, "", "")


def parse_claim(claim: str) -> ClaimToken:
    """The parts of a claim field; NO_CLAIM for a task never claimed."""
    if not claim:
        return NO_CLAIM
    attempt, claimed_ms, epoch, worker = claim.split("|", 3)
    return ClaimToken(int(attempt), int(claimed_ms), epoch, worker)


class ClaimedTask(NamedTuple):  # immutable; a tuple builds in a third of a frozen dataclass's time
    id: str
    token: str  # the claim field this attempt holds: completions and failures send it back
    fn: str
    args_json: str  # decoded by the runner, per task, under the input limits
    kwargs_json: str
    timeout: float | None
    weight: float
    batch: str

    @property
    def attempt(self) -> int:
        return int(self.token.partition("|")[0])


class Completion(NamedTuple):
    task_id: str
    token: str
    result_json: str
    busy_seconds: float
    weight: float = 1.0
    batch: str = ""


class WorkerTotals(NamedTuple):
    """What a worker adds to its counters in worker_totals (tasks completed, their weight, busy
    seconds). It sums its accepted completions and sends the sum every few cycles."""

    tasks: int = 0
    work: float = 0.0
    busy_seconds: float = 0.0

    def plus(self, completions: Sequence[Completion]) -> WorkerTotals:
        work, busy = self.work, self.busy_seconds
        for c in completions:
            work += c.weight
            busy += c.busy_seconds
        return WorkerTotals(self.tasks + len(completions), work, busy)


NO_TOTALS = WorkerTotals()


class CompletionReply(NamedTuple):
    accepted: list[str]
    stale: list[str]  # rejected by the fencing token
    already: list[str]  # completed before with the same token (a resend after a lost reply)


@dataclass(frozen=True)
class Snapshot:
    """What one claim cycle sees, read in one round trip."""

    now_ms: int
    task_ids: list[str]
    task_meta: list[str | None]  # "order\tweight\tpriority\tposition\tseq\tenqueued_ms"
    workers: dict[str, dict[str, Any]]  # the view: the workers with most free slots and the caller
    loads: dict[str, float]
    view: int = VIEW  # the view size asked for

    @property
    def sees_every_worker(self) -> bool:
        """Fewer workers came back than the view holds: none was left out."""
        return len(self.workers) < self.view

    def live_workers(self) -> dict[str, dict[str, Any]]:
        return {w: info for w, info in self.workers.items() if info.get("deadline", 0) > self.now_ms}


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def texts(values: list[Any]) -> list[Any]:
    """A reply's list with its texts decoded (nils and numbers kept): as it is with
    decode_responses (hiredis decoded them), judged by its first value that is not nil."""
    for first in values:
        if first is not None:
            if isinstance(first, bytes):
                return [v.decode() if isinstance(v, bytes) else v for v in values]
            break
    return values


class WindowMismatch(ValueError):
    """A packed window whose ids or metas hold a separator (written around the client): the
    snapshot is read again unpacked."""


def parse_snapshot(reply: list[Any], view: int) -> Snapshot:
    """lua/snapshot.lua's reply, packed (ARGV[5] '1': one flat list) or not (a list of lists)."""
    if isinstance(reply[1], list):
        now, ids, metas, worker_ids, infos, load_values = reply
        task_ids, task_meta = texts(ids), texts(metas)
    else:
        now, ids, metas, count, v = reply[:5]
        task_ids, task_meta = unpack_window(text(ids), text(metas), int(count))
        worker_ids, infos, load_values = reply[5 : 5 + v], reply[5 + v : 5 + 2 * v], reply[5 + 2 * v : 5 + 4 * v]
    workers, loads = {}, {}
    for i, (raw_id, info) in enumerate(zip(worker_ids, infos)):
        if info is None:
            continue  # forgotten meanwhile
        worker_id = text(raw_id)
        workers[worker_id] = worker_info(text(info))
        loads[worker_id] = float(load_values[2 * i] or 0.0)
        loads[held_field(worker_id)] = float(load_values[2 * i + 1] or 0.0)
    return Snapshot(now_ms=int(now), task_ids=task_ids, task_meta=task_meta, workers=workers, loads=loads, view=view)


def unpack_window(ids: str, metas: str, count: int) -> tuple[list[str], list[str | None]]:
    """A packed window's ids (joined by tabs) and metas (by newlines; '' for none)."""
    if count == 0:
        return [], []
    task_ids, task_meta = ids.split("\t"), [meta or None for meta in metas.split("\n")]
    if len(task_ids) != count or len(task_meta) != count:
        raise WindowMismatch(f"a packed window of {count} tasks split into {len(task_ids)} ids, {len(task_meta)} metas")
    return task_ids, task_meta


@functools.lru_cache(maxsize=4096)
def _worker_info_cached(raw: str) -> dict[str, Any]:
    info = json.loads(raw)
    return info if isinstance(info, dict) else {}


def worker_info(raw: str) -> dict[str, Any]:
    """A worker's JSON info; it changes only with its heartbeat, so each text is parsed once.
    A copy, so the cached one is never changed through a snapshot."""
    return dict(_worker_info_cached(raw))


def parse_claimed(reply: list[Any]) -> list[ClaimedTask]:
    """{"|<ms>", "|<worker>", then CLAIMED_FIELDS per task} (lua/claim.lua)."""
    values = texts(reply)
    if not values:
        return []
    at, by = values[0], values[1]
    won = []
    for i in range(2, len(values), CLAIMED_FIELDS):
        # fn, timeout and batch are checked at enqueue (no tab); kwargs is JSON (tabs escaped); args last
        spec = values[i + 2].split("\t", 4)
        if len(spec) != len(SPEC_FIELDS):  # not written by enqueue: the task fails on its function name
            spec = [values[i + 2], "", "", "", ""]
        fn, timeout, batch, kwargs, args = spec
        won.append(
            ClaimedTask(
                values[i],
                f"{values[i + 1]}{at}|{values[i + 4]}{by}",
                fn,
                args or "[]",
                kwargs or "{}",
                _seconds(timeout),
                _weight(values[i + 3]),
                batch,
            )
        )
    return won


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:  # a broken record: the task runs without a timeout rather than breaking the claim
        return None


def _weight(value: str | None) -> float:
    try:
        return float(value) if value else 1.0
    except ValueError:
        return 1.0


def parse_completion_reply(reply: list[Any]) -> CompletionReply:
    values = texts(reply)
    first = values.index("|")
    if first == len(values) - 2:  # nothing stale, nothing already done: the usual reply
        return CompletionReply(values[:first], [], [])
    second = values.index("|", first + 1)
    return CompletionReply(values[:first], values[first + 1 : second], values[second + 1 :])


def pending_meta_columns(metas: list[str]) -> list[list[str]]:
    """The columns of a list of pending-task metadata texts (lua/pending_meta.lua), each a list
    of texts: order, weight, priority, position, seq, enqueued ms."""
    fields = "\t".join(metas).split("\t")
    if len(fields) != META_FIELDS * len(metas):
        raise ValueError(f"pending task metadata with other than {META_FIELDS} fields in {metas!r}")
    return [fields[i::META_FIELDS] for i in range(META_FIELDS)]


class Enqueued(NamedTuple):
    created: int
    epoch: str


class Heartbeat(NamedTuple):
    now_ms: int
    drain_requested: bool
    renewed: int
    epoch: str


class CycleRequest(NamedTuple):
    """One claim cycle's call: complete, claim, read a snapshot (each part skipped when empty)."""

    worker_id: str
    completions: Sequence[Completion] = ()
    totals: WorkerTotals = NO_TOTALS  # added to the worker's counters
    claim_ids: Sequence[str] = ()  # candidates, in order
    wanted: int = 0  # the most of them to win
    lease_ms: int = 30_000
    maybe_idle: bool = True  # the worker's last snapshot found no pending task (it is in the idle set)
    window: int = 0  # tasks the snapshot reads (0: no snapshot)
    heaviest: int = 0
    view: int = VIEW


class CycleReply(NamedTuple):
    completed: CompletionReply
    won: list[ClaimedTask]
    snapshot: Snapshot | None


NO_COMPLETION = CompletionReply([], [], [])
