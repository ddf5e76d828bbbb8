"""The Redis protocol: one typed method per Lua script (scripts.py loads them once and calls
them by SHA), every key from keys.py, every shared format from wire.py."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import redis

from . import scripts
from .errors import EnqueueNotAcknowledged
from .held_connection import HeldConnection
from .keys import Keys
from .task import ENCODED_FIELDS, TaskSpec
from .task_maintenance import ENQUEUE_CHUNK, TaskMaintenance
from .wire import (
    NO_COMPLETION,
    NO_TOTALS,
    VIEW,
    ClaimedTask,
    Completion,
    CompletionReply,
    CycleReply,
    CycleRequest,
    Enqueued,
    Heartbeat,
    Snapshot,
    WindowMismatch,
    WorkerTotals,
    parse_claimed,
    parse_completion_reply,
    parse_snapshot,
    text,
)

# per script call (Lua's unpack passes at most a few thousand values): the worker sends fewer
MAX_CLAIM_CANDIDATES = 1000
MAX_COMPLETIONS = 1000
MAX_LISTED = 1_000_000  # finals entries; beyond, a sweep that cannot keep up: completions set expiries
# the scripts a Protocol loads
SCRIPTS = "enqueue snapshot claim complete fail release heartbeat forget_worker cancel promote cycle retry retain sweep"
NO_PART: tuple[Sequence[str], Sequence[Any]] = ((), ())  # (keys, args) of a part of cycle.lua that is skipped


class Protocol(TaskMaintenance):
    """Atomic operations on one cluster's keys: the claim cycle's here, the others in TaskMaintenance."""

    def __init__(self, client: redis.Redis, keys: Keys, *, list_retention_ms: int | None = None) -> None:
        """list_retention_ms: the worker's own retention; tasks with it that this protocol completes
        are listed for the reaper's sweep instead of given expiries (retention.lua)."""
        self.redis = client
        self.keys = keys
        self.list_retention = "" if list_retention_ms is None else str(list_retention_ms)
        self.max_listed = MAX_LISTED
        self.held = HeldConnection(client)  # the claim loop's connection, for cycle()
        self._fixed_keys: dict[tuple[str, str], tuple[str, ...]] = {}
        self.scripts = {name: scripts.register(client, name) for name in SCRIPTS.split()}

    def enqueue(
        self, specs: Sequence[TaskSpec], batch_id: str = "", *, ack_replicas: int = 0, ack_timeout_ms: int = 1000
    ) -> Enqueued:
        """Create the tasks that do not exist yet. ack_replicas: also wait until that many
        replicas have the writes (WAIT on the same connection), or raise EnqueueNotAcknowledged."""
        k = self.keys
        created, epoch = 0, ""
        for start in range(0, len(specs), ENQUEUE_CHUNK):
            chunk = specs[start : start + ENQUEUE_CHUNK]
            argv: list[str] = [k.new_work_channel, str(ENCODED_FIELDS), "1" if batch_id else "0"]
            for spec in chunk:
                argv.extend(spec.encoded())
            key_list = [
                k.pending,
                k.pending_meta,
                k.stats,
                k.batch(batch_id or "_"),
                k.pending_by_weight,
                k.idle,
                k.epoch,
                *(k.task(spec.task_id) for spec in chunk),
            ]
            if ack_replicas <= 0:
                reply = self.scripts["enqueue"](keys=key_list, args=argv)
            else:
                pipe = self.redis.pipeline(transaction=False)
                self.scripts["enqueue"](keys=key_list, args=argv, client=pipe)
                pipe.execute_command("WAIT", ack_replicas, ack_timeout_ms)  # type: ignore[no-untyped-call]
                reply, acknowledged = pipe.execute()
                if int(acknowledged) < ack_replicas:
                    raise EnqueueNotAcknowledged(
                        f"{int(acknowledged)} of {ack_replicas} replica(s) acknowledged the enqueue within "
                        f"{ack_timeout_ms} ms; the tasks are on the primary only (submitting again is safe)"
                    )
            created += int(reply[0])
            epoch = text(reply[1])
        return Enqueued(created, epoch)

    def epoch(self) -> str:
        """The data set's epoch ("" while nothing has made one yet)."""
        return text(self.redis.get(self.keys.epoch) or "")

    def snapshot(self, window: int, heaviest: int = 0, view: int = VIEW, me: str = "", packed: bool = True) -> Snapshot:
        """Up to `heaviest` of the heaviest pending tasks heavier than the default weight 1, the
        rest of the `window` from the front of the queue, and the `view` workers with the most
        free slots (plus `me`). Packed unless a packed window does not split (WindowMismatch)."""
        reply = self.scripts["snapshot"](*self._snapshot_call(window, heaviest, view, me, packed))
        try:
            return parse_snapshot(reply, view)
        except WindowMismatch:
            return self.snapshot(window, heaviest, view, me, packed=False)

    def _snapshot_call(
        self, window: int, heaviest: int, view: int, me: str, packed: bool = True
    ) -> tuple[list[str], list[Any]]:
        k = self.keys
        keys = [k.pending, k.pending_meta, k.workers, k.loads, k.pending_by_weight, k.free_slots, k.idle]
        return keys, [window, heaviest, view, me, "1" if packed else "0"]

    def claim(
        self, worker_id: str, task_ids: Sequence[str], lease_ms: int, wanted: int | None = None
    ) -> list[ClaimedTask]:
        """Claim the first `wanted` (default: all) of `task_ids` that are still pending, in order."""
        if not task_ids:
            return []
        call = self._claim_call(worker_id, task_ids, lease_ms, len(task_ids) if wanted is None else wanted, True)
        return parse_claimed(self.scripts["claim"](*call))

    def _claim_call(
        self, worker_id: str, task_ids: Sequence[str], lease_ms: int, wanted: int, maybe_idle: bool
    ) -> tuple[list[str], list[Any]]:
        if len(task_ids) > MAX_CLAIM_CANDIDATES:
            raise ValueError(f"at most {MAX_CLAIM_CANDIDATES} candidates per claim, got {len(task_ids)}")
        key_list = [*self._worker_keys(worker_id, "claim"), *map(self.keys.task, task_ids)]
        return key_list, [worker_id, lease_ms, wanted, "1" if maybe_idle else "0", *task_ids]

    def complete(
        self, worker_id: str, completions: Sequence[Completion], totals: WorkerTotals = NO_TOTALS
    ) -> CompletionReply:
        """Record results and add `totals` to the worker's counters."""
        if not completions and not totals.tasks:
            return NO_COMPLETION
        replies = []
        for start in range(0, max(len(completions), 1), MAX_COMPLETIONS):
            chunk = completions[start : start + MAX_COMPLETIONS]
            call = self._complete_call(worker_id, chunk, totals if start == 0 else NO_TOTALS)
            replies.append(parse_completion_reply(self.scripts["complete"](*call)))
        return CompletionReply(*([i for r in replies for i in r[part]] for part in range(3)))

    def _complete_call(
        self, worker_id: str, completions: Sequence[Completion], totals: WorkerTotals
    ) -> tuple[list[str], list[Any]]:
        if len(completions) > MAX_COMPLETIONS:
            raise ValueError(f"at most {MAX_COMPLETIONS} completions per call, got {len(completions)}")
        k = self.keys
        key_list = list(self._worker_keys(worker_id, "complete"))
        argv: list[Any] = [
            worker_id,
            k.done_channel,
            totals.tasks,
            repr(totals.work),
            repr(totals.busy_seconds),
            self.list_retention,
            self.max_listed,
        ]
        for c in completions:
            task_key = k.task(c.task_id)
            key_list.extend((task_key, k.result(c.task_id), k.batch(c.batch) if c.batch else task_key))
            argv.extend((c.task_id, c.token, c.result_json))
        return key_list, argv

    def cycle(self, request: CycleRequest) -> CycleReply:
        """One claim cycle in one call of cycle.lua on the held connection: complete (and add the
        totals), claim, then read the next snapshot, which already reflects the claim. Raises
        what Redis replied (redis.ResponseError) or connection errors."""
        r = request
        complete_keys, complete_args = (
            self._complete_call(r.worker_id, r.completions, r.totals) if r.completions or r.totals.tasks else NO_PART
        )
        claim_keys, claim_args = (
            self._claim_call(r.worker_id, r.claim_ids, r.lease_ms, r.wanted, r.maybe_idle) if r.claim_ids else NO_PART
        )
        snapshot_keys, snapshot_args = (
            self._snapshot_call(r.window, r.heaviest, r.view, r.worker_id) if r.window else NO_PART
        )
        n_keys = len(complete_keys) + len(claim_keys) + len(snapshot_keys)
        if not n_keys:  # all three parts skipped
            return CycleReply(NO_COMPLETION, [], None)
        script = self.scripts["cycle"]
        command = [
            "EVALSHA",
            script.sha,
            n_keys,
            *complete_keys,
            *claim_keys,
            *snapshot_keys,
            len(complete_keys),  # each part's keys, then args
            len(claim_keys),
            len(snapshot_keys),
            len(complete_args),
            len(claim_args),
            len(snapshot_args),
            *complete_args,
            *claim_args,
            *snapshot_args,
        ]
        reply = self.held.call(*command)
        if isinstance(reply, redis.exceptions.NoScriptError):  # the server lost its script cache: nothing ran
            reply = script(keys=command[3 : 3 + n_keys], args=command[3 + n_keys :])
        elif isinstance(reply, Exception):
            raise reply
        won, done, seen = reply[-3:]  # one flat reply: claimed, completed, snapshot, their lengths
        try:
            snapshot = parse_snapshot(reply[won + done : won + done + seen], r.view) if seen else None
        except WindowMismatch:
            snapshot = self.snapshot(r.window, r.heaviest, r.view, r.worker_id, packed=False)
        return CycleReply(
            parse_completion_reply(reply[won : won + done]) if done else NO_COMPLETION,
            parse_claimed(reply[:won]) if won else [],
            snapshot,
        )

    def _worker_keys(self, worker_id: str, script: str) -> tuple[str, ...]:
        """The fixed keys of a worker's claim or complete call, built once per worker."""
        cached = self._fixed_keys.get((worker_id, script))
        if cached is None:
            k = self.keys
            if script == "claim":
                cached = (
                    k.pending,
                    k.pending_meta,
                    k.running,
                    k.loads,
                    k.claims(worker_id),
                    k.pending_by_weight,
                    k.free_slots,
                    k.idle,
                )
            else:
                cached = (k.running, k.loads, k.claims(worker_id), k.stats, k.worker_totals, k.free_slots, k.finals)
            self._fixed_keys[(worker_id, script)] = cached
        return cached

    def fail(
        self, worker_id: str, task: ClaimedTask, error: str, *, retryable: bool, backoff_ms: int, busy_seconds: float
    ) -> str:
        """Record a failed attempt; returns "scheduled", "failed", "cancelled" or "stale"."""
        k = self.keys
        task_key = k.task(task.id)
        key_list = [
            k.running,
            k.loads,
            k.claims(worker_id),
            k.stats,
            k.pending_meta,
            k.scheduled,
            k.dead,
            task_key,
            k.worker_totals,
            k.free_slots,
            k.batch(task.batch) if task.batch else task_key,
        ]
        argv = [
            worker_id,
            task.id,
            task.token,
            error,
            "1" if retryable else "0",
            backoff_ms,
            k.done_channel,
            repr(busy_seconds),
        ]
        return text(self.scripts["fail"](keys=key_list, args=argv))

    def heartbeat(
        self, worker_id: str, info: dict[str, Any], ttl_ms: int, lease_ms: int, held: Sequence[str] = ()
    ) -> Heartbeat:
        k = self.keys
        now, drain, renewed, epoch = self.scripts["heartbeat"](
            keys=[k.workers, k.running, k.claims(worker_id), k.loads, k.draining, k.free_slots, k.deadlines, k.epoch],
            args=[worker_id, json.dumps(info), ttl_ms, lease_ms, *held],
        )
        return Heartbeat(int(now), bool(int(drain)), int(renewed), text(epoch))

    def wake(self, worker_id: str) -> None:
        """Wake an idle worker on its own channel (as enqueue.lua does for new work)."""
        self.redis.publish(self.keys.wake_channel(worker_id), 0)
