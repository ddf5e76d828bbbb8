"""The Redis protocol: one typed method per Lua script, scripts loaded once and
called by SHA (redis-py's Script reloads them if the server lost its cache)."""

from __future__ import annotations

import functools
import json
import socket
import struct
from dataclasses import dataclass
from importlib import resources
from typing import Any, NamedTuple, Sequence

import hiredis
import redis

from .errors import TaskArgumentsError
from .keys import Keys
from .task import ENCODED_FIELDS, TaskSpec, parse_claim

ENQUEUE_CHUNK = 500
VIEW = 32  # workers in a claim cycle's view: the ones with the most free slots


CYCLE_PARTS = ("complete", "claim", "snapshot")
# the shared local functions a script uses, put in front of it by the loader (cycle.lua: its parts')
PRELUDES = {
    "claim": ("server_time", "worker_load", "in_slices", "claim_token"),
    "complete": ("server_time", "worker_load", "in_slices", "claim_token"),
    "fail": ("server_time", "worker_load", "claim_token", "pending_meta"),
    "release": ("server_time", "worker_load", "claim_token", "pending_meta"),
    "snapshot": ("server_time", "pending_meta"),
    "enqueue": ("server_time", "pending_meta"),
    "heartbeat": ("server_time",),
    "cancel": ("server_time",),
    "retry": ("claim_token", "pending_meta"),
}
# per script call (Lua's unpack passes at most a few thousand values): the worker sends fewer
MAX_CLAIM_CANDIDATES = 1000
MAX_COMPLETIONS = 1000


def _script_source(name: str) -> str:
    return resources.files("pids").joinpath("lua", f"{name}.lua").read_text()


def _prelude(*names: str) -> str:
    """The shared sources the named scripts use, each once, in order."""
    shared = dict.fromkeys(source for name in names for source in PRELUDES.get(name, ()))
    return "".join(_script_source(source) for source in shared)


def _load_script(client: redis.Redis, name: str) -> Any:
    return client.register_script(_prelude(name) + _script_source(name))


def _load_cycle_script(client: redis.Redis) -> Any:
    """cycle.lua behind the scripts it runs, each as a local function of its own KEYS and ARGV
    (sharing one worker_load.lua, so cycle.lua can net their load changes)."""
    wrapped = [f"local function {name}(KEYS, ARGV)\n{_script_source(name)}\nend\n" for name in CYCLE_PARTS]
    return client.register_script(_prelude(*CYCLE_PARTS) + "".join(wrapped) + _script_source("cycle"))


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


class ClaimedTask(NamedTuple):  # immutable; a tuple builds in a third of a frozen dataclass's time, per task
    id: str
    attempt: int
    fn: str
    args: list[Any]
    kwargs: dict[str, Any]
    timeout: float | None
    weight: float


class Completion(NamedTuple):
    task_id: str
    attempt: int
    result_json: str
    busy_seconds: float
    weight: float = 1.0


class WorkerTotals(NamedTuple):
    """What a worker adds to its counters in worker_totals (tasks completed, their weight, busy
    seconds). It sums its accepted completions and sends the sum every few cycles."""

    tasks: int = 0
    work: float = 0.0
    busy_seconds: float = 0.0

    def plus(self, completions: Sequence[Completion]) -> WorkerTotals:
        return WorkerTotals(self.tasks + len(completions), self.work + sum(c.weight for c in completions),
                            self.busy_seconds + sum(c.busy_seconds for c in completions))


NO_TOTALS = WorkerTotals()
NO_PART: tuple[Sequence[str], Sequence[Any]] = ((), ())  # (keys, args) of a part of cycle.lua that is skipped


class Protocol:
    """Atomic operations on one cluster's keys."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys
        self._cycle_connection: Any = None  # held by the one thread that runs claim cycles
        self._fixed_keys: dict[tuple[str, str], tuple[str, ...]] = {}
        self._enqueue = _load_script(client, "enqueue")
        self._snapshot = _load_script(client, "snapshot")
        self._claim = _load_script(client, "claim")
        self._complete = _load_script(client, "complete")
        self._fail = _load_script(client, "fail")
        self._release = _load_script(client, "release")
        self._heartbeat = _load_script(client, "heartbeat")
        self._forget_worker = _load_script(client, "forget_worker")
        self._cancel = _load_script(client, "cancel")
        self._cycle = _load_cycle_script(client)
        self._retry = _load_script(client, "retry")

    def enqueue(self, specs: Sequence[TaskSpec], batch_id: str = "") -> int:
        """Create the tasks that do not exist yet; returns how many were created."""
        k = self.keys
        created = 0
        for start in range(0, len(specs), ENQUEUE_CHUNK):
            chunk = specs[start : start + ENQUEUE_CHUNK]
            argv: list[str] = [k.new_work_channel, str(ENCODED_FIELDS), "1" if batch_id else "0"]
            for spec in chunk:
                argv.extend(spec.encoded())
            key_list = [k.pending, k.pending_meta, k.stats, k.batch(batch_id or "_"), k.pending_by_weight, k.idle]
            key_list.extend(k.task(spec.task_id) for spec in chunk)
            created += int(self._enqueue(keys=key_list, args=argv))
        return created

    def snapshot(self, window: int, heaviest: int = 0, view: int = VIEW, me: str = "") -> Snapshot:
        """Up to `heaviest` of the heaviest pending tasks heavier than the default weight 1, the
        rest of the `window` from the front of the queue, and the `view` workers with the most
        free slots (plus `me`)."""
        return _parse_snapshot(self._snapshot(*self._snapshot_call(window, heaviest, view, me)), view)

    def _snapshot_call(self, window: int, heaviest: int, view: int, me: str) -> tuple[list[str], list[Any]]:
        k = self.keys
        keys = [k.pending, k.pending_meta, k.scheduled, k.workers, k.loads, k.pending_by_weight, k.free_slots, k.idle]
        return keys, [window, heaviest, view, me]

    def claim(self, worker_id: str, task_ids: Sequence[str], lease_ms: int, wanted: int | None = None) -> list[ClaimedTask]:
        """Claim the first `wanted` (default: all) of `task_ids` that are still pending, in order."""
        if not task_ids:
            return []
        return _parse_claimed(self._claim(*self._claim_call(worker_id, task_ids, lease_ms, wanted, maybe_idle=True)))

    def _claim_call(self, worker_id: str, task_ids: Sequence[str], lease_ms: int,
                    wanted: int | None, maybe_idle: bool) -> tuple[list[str], list[Any]]:
        if len(task_ids) > MAX_CLAIM_CANDIDATES:
            raise ValueError(f"at most {MAX_CLAIM_CANDIDATES} candidates per claim, got {len(task_ids)}")
        k = self.keys
        key_list = [*self._worker_keys(worker_id, "claim"), *map(k.task, task_ids)]
        return key_list, [worker_id, lease_ms, len(task_ids) if wanted is None else wanted, "1" if maybe_idle else "0",
                          *task_ids]

    def complete(self, worker_id: str, completions: Sequence[Completion],
                 totals: WorkerTotals = NO_TOTALS) -> tuple[list[str], list[str]]:
        """Record results and add `totals` to the worker's counters; returns (accepted ids, stale
        ids rejected by the fencing token)."""
        accepted: list[str] = []
        stale: list[str] = []
        if not completions and not totals.tasks:
            return accepted, stale
        for start in range(0, max(len(completions), 1), MAX_COMPLETIONS):
            chunk = completions[start : start + MAX_COMPLETIONS]
            call = self._complete_call(worker_id, chunk, totals if start == 0 else NO_TOTALS)
            chunk_accepted, chunk_stale = _split_completion_reply(self._complete(*call))
            accepted += chunk_accepted
            stale += chunk_stale
        return accepted, stale

    def cycle(
        self, worker_id: str, completions: Sequence[Completion], claim_ids: Sequence[str], lease_ms: int,
        window: int, heaviest: int = 0, view: int = VIEW, *, wanted: int | None = None, read_snapshot: bool = True,
        totals: WorkerTotals = NO_TOTALS, maybe_idle: bool = True,
    ) -> tuple[tuple[list[str], list[str]], list[ClaimedTask], Snapshot | None]:
        """One claim cycle in one call of cycle.lua: complete (and add `totals` to the worker's
        counters), claim (the first `wanted` of `claim_ids` still pending), then read the next
        snapshot (each part skipped when empty or not asked for). The snapshot already reflects
        the claim, so the next cycle can plan from it without another read. maybe_idle: the
        worker's last snapshot found no pending task (and put it in the idle set).

        Raw EVALSHA on a held connection: redis-py's Script call and pipeline add Python layers
        that cost several times the bytes' own packing and parsing."""
        complete_part = self._complete_call(worker_id, completions, totals) if completions or totals.tasks else NO_PART
        claim_part = self._claim_call(worker_id, claim_ids, lease_ms, wanted, maybe_idle) if claim_ids else NO_PART
        snapshot_part = self._snapshot_call(window, heaviest, view, worker_id) if read_snapshot else NO_PART
        if complete_part is claim_part is snapshot_part:  # all three NO_PART
            return ([], []), [], None
        keys = [*complete_part[0], *claim_part[0], *snapshot_part[0]]
        argv = [len(complete_part[0]), len(claim_part[0]), len(snapshot_part[0]),  # each part's keys, then args
                len(complete_part[1]), len(claim_part[1]), len(snapshot_part[1]),
                *complete_part[1], *claim_part[1], *snapshot_part[1]]
        reply = self._call_held("EVALSHA", self._cycle.sha, len(keys), *keys, *argv)
        if isinstance(reply, redis.exceptions.NoScriptError):  # the server lost its script cache: nothing ran
            reply = self._cycle(keys=keys, args=argv)
        elif isinstance(reply, Exception):
            raise reply
        completed_reply, claimed_reply, snapshot_reply = reply
        completed = _split_completion_reply(completed_reply) if completed_reply else ([], [])
        won = _parse_claimed(claimed_reply) if claim_ids else []
        return completed, won, _parse_snapshot(snapshot_reply, view) if read_snapshot else None

    def _call_held(self, *command: Any) -> Any:
        """One command on the claim loop's own connection; an error reply is returned, not raised."""
        try:
            if self._cycle_connection is None:
                self._cycle_connection = self._open_cycle_connection()
            connection = self._cycle_connection
            # hiredis packs str/int arguments itself; redis-py's packer re-checks every argument in Python
            connection.send_packed_command([hiredis.pack_command(command)])
            try:
                return connection.read_response()
            except redis.exceptions.ResponseError as exc:
                return exc
        except (redis.ConnectionError, redis.TimeoutError):
            if self._cycle_connection is not None:
                self._cycle_connection.disconnect()
            self._cycle_connection = None
            raise

    def _open_cycle_connection(self) -> Any:
        """A connection with the pool's settings, outside its count. Once connected (and on every
        reconnect, redis-py's own included) its socket blocks, with the read/write timeout set in
        the kernel (SO_RCVTIMEO, SO_SNDTIMEO): Python polls a socket that has its own timeout
        before every send and receive, two more system calls per cycle. A Redis that stops
        answering still fails the call after the timeout, as ConnectionError."""
        pool = self.redis.connection_pool
        connection = pool.connection_class(**pool.connection_kwargs)
        connection.register_connect_callback(self._move_timeout_to_kernel)
        connection.connect()
        return connection

    def _move_timeout_to_kernel(self, connection: Any) -> None:
        """After the handshake, which keeps Python's timeout (redis-py keeps a callback as a weak method)."""
        timeout = connection.socket_timeout
        if timeout:
            seconds = struct.pack("ll", int(timeout), int(timeout % 1 * 1_000_000))  # struct timeval
            sock = connection._sock
            sock.settimeout(None)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, seconds)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, seconds)

    def _worker_keys(self, worker_id: str, script: str) -> tuple[str, ...]:
        """The fixed keys of a worker's claim or complete call, built once per worker."""
        cached = self._fixed_keys.get((worker_id, script))
        if cached is None:
            k = self.keys
            if script == "claim":
                cached = (k.pending, k.pending_meta, k.running, k.loads, k.claims(worker_id), k.pending_by_weight,
                          k.free_slots, k.idle)
            else:
                cached = (k.running, k.loads, k.claims(worker_id), k.stats, k.worker_totals, k.free_slots)
            self._fixed_keys[(worker_id, script)] = cached
        return cached

    def take_reaper_turn(self, worker_id: str, period_ms: int) -> bool:
        """True for one worker per period: it looks for expired leases and dead workers, so the
        cluster's reaping cost per second stays the same however many workers there are."""
        return bool(self.redis.set(self.keys.reaper, worker_id, nx=True, px=period_ms))

    def _complete_call(self, worker_id: str, completions: Sequence[Completion],
                       totals: WorkerTotals) -> tuple[list[str], list[Any]]:
        if len(completions) > MAX_COMPLETIONS:
            raise ValueError(f"at most {MAX_COMPLETIONS} completions per call, got {len(completions)}")
        k = self.keys
        key_list = list(self._worker_keys(worker_id, "complete"))
        argv: list[Any] = [worker_id, k.done_channel, totals.tasks, repr(totals.work), repr(totals.busy_seconds)]
        for c in completions:
            key_list.extend((k.task(c.task_id), k.result(c.task_id)))
            argv.extend((c.task_id, c.attempt, c.result_json))
        return key_list, argv

    def fail(
        self, worker_id: str, task_id: str, attempt: int, error: str, *, retryable: bool, backoff_ms: int, busy_seconds: float
    ) -> str:
        """Record a failed attempt; returns "scheduled", "failed", "cancelled" or "stale"."""
        k = self.keys
        key_list = [
            k.running, k.loads, k.claims(worker_id), k.stats, k.pending_meta, k.scheduled, k.dead,
            k.task(task_id), k.worker_totals, k.free_slots,
        ]
        argv = [worker_id, task_id, attempt, error, "1" if retryable else "0", backoff_ms, k.done_channel, repr(busy_seconds)]
        return _text(self._fail(keys=key_list, args=argv))

    def release(self, worker_id: str, task_ids: Sequence[str], *, only_expired: bool, reason: str) -> tuple[int, int]:
        """Give tasks held by `worker_id` back; returns (requeued, dead-lettered)."""
        if not task_ids:
            return 0, 0
        k = self.keys
        key_list = [k.running, k.loads, k.claims(worker_id), k.stats, k.pending, k.pending_meta, k.dead, k.pending_by_weight,
                    k.free_slots]
        key_list.extend(k.task(t) for t in task_ids)
        argv = [worker_id, "1" if only_expired else "0", reason, k.new_work_channel, k.done_channel, *task_ids]
        requeued, dead = self._release(keys=key_list, args=argv)
        return int(requeued), int(dead)

    def release_worker(self, worker_id: str, reason: str) -> tuple[int, int]:
        """Release everything a (dead, deleted or draining) worker holds."""
        held = [_text(t) for t in self.redis.smembers(self.keys.claims(worker_id))]
        return self.release(worker_id, held, only_expired=False, reason=reason)

    def release_expired_leases(self, limit: int = 1000) -> tuple[int, int]:
        """Find running tasks whose lease ran out and release them, owner by owner."""
        k = self.keys
        expired = [_text(t) for t in self.redis.zrangebyscore(k.running, "-inf", _server_ms(self.redis), 0, limit)]
        if not expired:
            return 0, 0
        pipe = self.redis.pipeline(transaction=False)
        for task_id in expired:
            pipe.hget(k.task(task_id), "claim")
        by_worker: dict[str, list[str]] = {}
        for task_id, claim in zip(expired, pipe.execute()):
            owner = parse_claim(_text(claim or ""))[2]
            if owner:
                by_worker.setdefault(owner, []).append(task_id)
        requeued = dead = 0
        for owner, ids in by_worker.items():
            r, d = self.release(owner, ids, only_expired=True, reason=f"lease expired on worker {owner}")
            requeued, dead = requeued + r, dead + d
        return requeued, dead

    def release_dead_workers(self, grace_ms: int = 0) -> list[str]:
        """Release the tasks of every worker whose heartbeat deadline passed, then forget it."""
        now = _server_ms(self.redis)
        dead = [_text(w) for w in self.redis.zrangebyscore(self.keys.deadlines, "-inf", now - grace_ms, 0, 100)]
        for worker_id in dead:
            self.release_worker(worker_id, reason=f"worker {worker_id} stopped heartbeating")
            self.forget_worker(worker_id)
        return dead

    def heartbeat(
        self, worker_id: str, info: dict[str, Any], ttl_ms: int, lease_ms: int, held: Sequence[str] = ()
    ) -> tuple[int, bool, int]:
        """Returns (server ms, drain requested, leases renewed of the `held` tasks)."""
        k = self.keys
        now, drain, renewed = self._heartbeat(
            keys=[k.workers, k.running, k.claims(worker_id), k.loads, k.draining, k.free_slots, k.deadlines],
            args=[worker_id, json.dumps(info), ttl_ms, lease_ms, *held],
        )
        return int(now), bool(int(drain)), int(renewed)

    def wake(self, worker_id: str) -> None:
        """Wake an idle worker on its own channel (as enqueue.lua does for new work)."""
        self.redis.publish(self.keys.wake_channel(worker_id), 0)

    def forget_worker(self, worker_id: str) -> bool:
        k = self.keys
        keys = [k.workers, k.loads, k.claims(worker_id), k.draining, k.free_slots, k.deadlines, k.idle]
        return bool(self._forget_worker(keys=keys, args=[worker_id]))

    def cancel(self, task_id: str) -> str:
        k = self.keys
        return _text(
            self._cancel(keys=[k.pending, k.pending_meta, k.scheduled, k.stats, k.task(task_id), k.pending_by_weight],
                         args=[task_id, k.done_channel])
        )

    def retry(self, failed: Sequence[tuple[str, int]], more_attempts: int) -> list[str]:
        """Send dead-lettered tasks, given as (id, the attempt they were seen failing at), back to
        the queue with `more_attempts` more attempts; returns per task "requeued", "stale",
        "missing" or the state it was left in."""
        if not isinstance(more_attempts, int) or more_attempts < 1:
            raise TaskArgumentsError(f"a retry needs at least 1 more attempt, got {more_attempts!r}")
        k = self.keys
        outcomes: list[str] = []
        for start in range(0, len(failed), ENQUEUE_CHUNK):
            chunk = failed[start : start + ENQUEUE_CHUNK]
            key_list = [k.pending, k.pending_meta, k.dead, k.stats, k.pending_by_weight, *(k.task(t) for t, _ in chunk)]
            argv: list[Any] = [k.new_work_channel, more_attempts]
            for task_id, attempt in chunk:
                argv += [task_id, attempt]
            outcomes += _texts(self._retry(keys=key_list, args=argv))
        return outcomes


def _parse_snapshot(reply: list[Any], view: int) -> Snapshot:
    now, ids, metas, worker_ids, infos, load_values = reply
    workers, loads = {}, {}
    for i, (raw_id, info) in enumerate(zip(worker_ids, infos)):
        if info is None:
            continue  # forgotten meanwhile
        worker_id = _text(raw_id)
        workers[worker_id] = _worker_info(info)
        loads[worker_id] = float(load_values[2 * i] or 0.0)
        loads[f"{worker_id}:n"] = float(load_values[2 * i + 1] or 0.0)
    return Snapshot(now_ms=int(now), task_ids=_texts(ids), task_meta=_texts(metas), workers=workers, loads=loads,
                    view=view)


@functools.lru_cache(maxsize=4096)
def _worker_info_cached(raw: str) -> dict[str, Any]:
    return json.loads(raw)


def _worker_info(raw: str) -> dict[str, Any]:
    """A worker's JSON info; it changes only with its heartbeat, so parse each text once.
    A copy, so the cached one is never changed through a snapshot."""
    return dict(_worker_info_cached(raw))


def _parse_claimed(flat: list[Any]) -> list[ClaimedTask]:
    texts = _texts(flat)  # 7 per task: id attempt fn args kwargs timeout weight
    return [ClaimedTask(texts[i], int(texts[i + 1]), texts[i + 2], _json_list(texts[i + 3]), _json_dict(texts[i + 4]),
                        float(texts[i + 5]) if texts[i + 5] else None, float(texts[i + 6]))
            for i in range(0, len(texts), 7)]


def _json_list(raw: str) -> list[Any]:
    return [] if raw == "[]" else json.loads(raw)


def _json_dict(raw: str) -> dict[str, Any]:
    return {} if raw == "{}" else json.loads(raw)


def _split_completion_reply(reply: list[Any]) -> tuple[list[str], list[str]]:
    texts = _texts(reply)
    split = texts.index("|")
    return texts[:split], texts[split + 1 :]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _texts(values: list[Any]) -> list[Any]:
    """A reply's list with its texts decoded (nils and numbers kept): as it is with
    decode_responses (hiredis decoded them), judged by its first value that is not nil."""
    first = next((v for v in values if v is not None), None)
    if isinstance(first, bytes):
        return [v.decode() if isinstance(v, bytes) else v for v in values]
    return values


def _server_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000
