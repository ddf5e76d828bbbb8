"""What one cluster's data plane must hold, predicted in plain Python from the operations made on
it: the model that tests/integration/test_protocol_model.py checks the real Redis against. Each
method mirrors one Lua script's rules (lua/*.lua) and returns the reply the script must give."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from pids.wire import CompletionReply, parse_claim

PRIORITY_STEP = 1 << 40  # queue order = seq - priority * step (enqueue.lua)
FINAL = ("succeeded", "failed", "cancelled")


@dataclass
class Task:
    id: str
    batch: str
    weight: float
    priority: int
    max_attempts: int
    order: int
    state: str = "pending"  # the hash's state field
    index: str = "pending"  # the set holding it: pending, scheduled, running, dead, or "" (final, none)
    token: str = ""  # the claim field: the last claim's fencing token
    lease_short: bool = False  # its lease runs out at once (else it outlives the test)
    due: bool = False  # scheduled without a backoff: the next reaper turn queues it
    cancel_requested: bool = False
    completed_with: str = ""  # the token whose completion was recorded
    result: str | None = None  # the result key's value
    error: str = ""
    finished_at: str | None = None  # read once it is final: it must never change

    @property
    def holder(self) -> str:
        return parse_claim(self.token).worker if self.state == "running" else ""

    @property
    def attempt(self) -> int:
        return parse_claim(self.token).attempt


@dataclass
class Model:
    epoch: str = ""  # "" until a script reports one
    epoch_made: bool = False  # a script that makes the epoch ran (enqueue, heartbeat)
    old_epochs: list[str] = field(default_factory=list)
    tasks: dict[str, Task] = field(default_factory=dict)
    batches: dict[str, list[str]] = field(default_factory=dict)
    stats: Counter[str] = field(default_factory=Counter)
    events: list[str] = field(default_factory=list)  # done events published since the last check
    workers: dict[str, bool] = field(default_factory=dict)  # in the worker table -> its heartbeat TTL is short

    def learn_epoch(self, epoch: str) -> None:
        """A script reported the epoch: the first one in a data set is new, then it never changes."""
        self.epoch_made = True
        if not self.epoch:
            if not epoch or epoch in self.old_epochs:
                raise AssertionError(f"a fresh data set reported epoch {epoch!r}, not a new one")
            self.epoch = epoch
        elif epoch != self.epoch:
            raise AssertionError(f"epoch changed from {self.epoch} to {epoch} while Redis kept its data")

    def lose_everything(self) -> None:
        """Redis came back empty."""
        if self.epoch:
            self.old_epochs.append(self.epoch)
        self.epoch, self.epoch_made = "", False
        self.tasks.clear()
        self.batches.clear()
        self.stats.clear()
        self.events.clear()
        self.workers.clear()

    def running(self, worker: str) -> list[Task]:
        return [t for t in self.tasks.values() if t.holder == worker]

    # -- the scripts ------------------------------------------------------------------------------
    def enqueue(self, specs: list[tuple[str, float, int, int]], batch: str = "") -> int:
        """specs: (id, weight, priority, max attempts). Returns the number created."""
        created = 0
        for task_id, weight, priority, max_attempts in specs:
            if task_id in self.tasks:
                continue
            self.stats["seq"] += 1
            order = self.stats["seq"] - priority * PRIORITY_STEP
            self.tasks[task_id] = Task(task_id, batch, weight, priority, max_attempts, order)
            if batch:
                self.batches.setdefault(batch, []).append(task_id)
            created += 1
        self.stats["enqueued"] += created
        return created

    def claim(self, worker: str, candidates: list[str], wanted: int) -> list[tuple[str, int]]:
        """The (id, attempt) pairs won; the caller sets each token from the reply (claimed)."""
        won: list[tuple[str, int]] = []
        for task_id in candidates:
            if len(won) == wanted:
                break
            task = self.tasks.get(task_id)
            if task is not None and task.index == "pending":
                task.index = "running"  # (a task listed twice is won once)
                won.append((task_id, task.attempt + 1))
        return won

    def claimed(self, task_id: str, token: str, lease_short: bool) -> None:
        task = self.tasks[task_id]
        task.state, task.index, task.token, task.lease_short = "running", "running", token, lease_short

    def complete(self, completions: list[tuple[str, str, str]]) -> CompletionReply:
        """completions: (id, token, result json), in order."""
        reply = CompletionReply([], [], [])
        for task_id, token, result in completions:
            task = self.tasks.get(task_id)
            if task is not None and task.state == "running" and task.token == token:
                task.state = "cancelled" if task.cancel_requested else "succeeded"
                task.index, task.completed_with, task.error = "", token, ""
                task.result = None if result == "null" else result
                self.stats[task.state] += 1
                self.events.append(f"{task_id}:{len(result.encode())}")
                reply.accepted.append(task_id)
            elif task is not None and task.completed_with == token:
                reply.already.append(task_id)
            else:
                self.stats["stale"] += 1
                reply.stale.append(task_id)
        return reply

    def fail(self, task_id: str, token: str, error: str, retryable: bool, due: bool) -> str:
        task = self.tasks.get(task_id)
        if task is None or task.state != "running" or task.token != token:
            self.stats["stale"] += 1
            return "stale"
        task.error = error
        if task.cancel_requested:
            return self._finish(task, "cancelled")
        if retryable and task.attempt < task.max_attempts:
            task.state = task.index = "scheduled"
            task.due = due
            self.stats["retried"] += 1
            return "scheduled"
        return self._finish(task, "failed")

    def release(self, worker: str, task_ids: list[str], only_expired: bool, reason: str) -> tuple[int, int]:
        """Returns (requeued, dead-lettered); with only_expired, the short leases have run out."""
        requeued = dead = 0
        for task_id in task_ids:
            task = self.tasks.get(task_id)
            if task is None or task.holder != worker or (only_expired and not task.lease_short):
                continue
            self.stats["released"] += 1
            task.error = reason
            if task.cancel_requested:
                self._finish(task, "cancelled")
            elif task.attempt >= task.max_attempts:
                self._finish(task, "failed")
                dead += 1
            else:
                task.state = task.index = "pending"
                requeued += 1
        return requeued, dead

    def _finish(self, task: Task, state: str) -> str:
        task.state = state
        task.index = "dead" if state == "failed" else ""
        self.stats[state] += 1
        self.events.append(f"{task.id}:{state[0].upper()}")
        return state

    def cancel(self, task_id: str) -> str:
        task = self.tasks.get(task_id)
        if task is None:
            return "missing"
        if task.state in ("pending", "scheduled"):
            return self._finish(task, "cancelled")
        if task.state == "running":
            task.cancel_requested = True
            return "cancelling"
        return task.state

    def heartbeat(self, worker: str, ttl_short: bool, lease_short: bool, held: list[str]) -> None:
        self.workers[worker] = ttl_short
        for task_id in held:
            task = self.tasks.get(task_id)
            if task is not None and task.holder == worker:
                task.lease_short = lease_short

    def dead_workers(self) -> list[str]:
        """The workers whose (short) heartbeat ran out: their tasks are released, then they are forgotten."""
        dead = sorted(w for w, short in self.workers.items() if short)
        for worker in dead:
            self.release(worker, [t.id for t in self.running(worker)], False, f"worker {worker} stopped heartbeating")
            del self.workers[worker]
        return dead

    def expire_leases(self) -> tuple[int, int]:
        """The reaper's turn once the short leases ran out (reaper.release_expired_leases)."""
        requeued = dead = 0
        for worker in sorted({t.holder for t in self.tasks.values() if t.holder and t.lease_short}):
            r, d = self.release(worker, [t.id for t in self.running(worker)], True, f"lease expired on worker {worker}")
            requeued, dead = requeued + r, dead + d
        return requeued, dead

    def queue_due_retries(self) -> int:
        """The reaper's turn queues the retries whose backoff is over (promote.lua)."""
        due = [t for t in self.tasks.values() if t.index == "scheduled" and t.due]
        for task in due:
            task.index = task.state = "pending"
        return len(due)

    def snapshot(self, window: int, heaviest: int) -> list[str]:
        """The window's ids (snapshot.lua)."""
        pending = sorted((t for t in self.tasks.values() if t.index == "pending"), key=lambda t: t.order)
        heavy = sorted((t for t in pending if t.weight > 1), key=lambda t: (t.weight, t.id), reverse=True)[:heaviest]
        ids = [t.id for t in pending[: max(0, window - len(heavy))]]
        return ids + [t.id for t in heavy if t.id not in ids]
