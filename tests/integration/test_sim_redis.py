"""The simulator's queue model (pids_bench.sim_redis) against the real Lua scripts on a real
redis-server: the same operations on both give the same windows, views, loads, claims,
completions, idle set and wake-ups."""

from __future__ import annotations

import time
from typing import Any

from pids.client import Client
from pids.protocol import Protocol
from pids.task import TaskOptions, TaskSpec
from pids.wire import Completion, CycleReply, CycleRequest, Snapshot
from pids_bench.sim_redis import SimRedis, SimTask

# weights with ties and exact binary fractions, so loads add up alike in Redis's long doubles
WEIGHTS = [1, 0.5, 5, 5, 40, 1, 2.5, 5, 1, 40, 0.25, 5, 1, 2.5, 1, 5, 1, 1, 40, 1]


class Twin:
    """One cluster on the real scripts and the same cluster in the model, driven alike."""

    def __init__(self, client: Client) -> None:
        self.real: Protocol = client.protocol
        self.client = client
        self.model = SimRedis()
        self.now = 0.0
        self.tokens: tuple[dict[str, str], dict[str, str]] = ({}, {})  # task id -> its claim token, on each side

    def tick(self) -> float:
        """Both clocks move on (the model's by a millisecond, the server's by its own)."""
        time.sleep(0.002)
        self.now += 0.002
        return self.now

    def enqueue(self, tasks: list[SimTask]) -> list[str]:
        self.real.enqueue(
            [
                TaskSpec(
                    "pids.tasks:noop",
                    options=TaskOptions(weight=t.weight, priority=t.priority, position=t.position),
                    task_id=t.id,
                )
                for t in tasks
            ]
        )
        return self.model.enqueue(tasks, self.tick())

    def heartbeat(self, worker_id: str, slots: int, prefetch: int = 0) -> None:
        info = {"slots": slots, "prefetch": prefetch, "speed": 1.0, "capacity": float(slots)}
        self.real.heartbeat(worker_id, info, 60_000, 60_000)
        self.model.heartbeat(worker_id, info, self.tick(), 60_000)

    def cycle(
        self, request: CycleRequest, completed: tuple[str, ...] = (), stale: tuple[str, ...] = ()
    ) -> tuple[CycleReply, CycleReply]:
        """`request` with completions of the tasks `completed` (each side's own claim token) and
        of the tasks `stale` (a token no claim holds)."""
        replies = []
        for side, call in enumerate((self.real.cycle, lambda r: self.model.cycle(r, self.tick()))):
            tokens = self.tokens[side]
            completions = [Completion(t, tokens[t], "null", 0.0) for t in completed] + [
                Completion(t, "1|0|old|x", "null", 0.0) for t in stale
            ]
            reply = call(request._replace(completions=completions))
            tokens.update((task.id, task.token) for task in reply.won)
            replies.append(reply)
        return replies[0], replies[1]

    def snapshot(self, window: int, heaviest: int, view: int = 32, me: str = "") -> tuple[Snapshot, Snapshot]:
        return self.real.snapshot(window, heaviest, view, me), self.model.snapshot(
            window, heaviest, view, me, self.tick()
        )

    def idle(self) -> tuple[list[str], list[str]]:
        real = self.client.redis.zrange(self.client.keys.idle, 0, -1)
        return sorted(real), sorted(self.model.idle)


def same_snapshot(real: Snapshot, model: Snapshot) -> None:
    assert model.task_ids == real.task_ids
    assert [without_time(m) for m in model.task_meta] == [without_time(m) for m in real.task_meta]
    assert list(model.workers) == list(real.workers)
    assert {w: without_deadline(i) for w, i in model.workers.items()} == {
        w: without_deadline(i) for w, i in real.workers.items()
    }
    assert model.loads == real.loads


def without_time(meta: str | None) -> str:
    """A task's metadata but its enqueue time (the two clocks differ)."""
    return (meta or "").rsplit("\t", 1)[0]


def without_deadline(info: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in info.items() if k != "deadline"}


def claim(
    worker: str, candidates: list[str], wanted: int, window: int = 0, heaviest: int = 0, maybe_idle: bool = True
) -> CycleRequest:
    return CycleRequest(
        worker,
        claim_ids=candidates,
        wanted=wanted,
        lease_ms=60_000,
        maybe_idle=maybe_idle,
        window=window,
        heaviest=heaviest,
    )


def test_the_model_reads_the_same_window_as_snapshot_lua(client: Client) -> None:
    """The heaviest pending tasks heavier than 1 (equal weights: the greater id first, as text),
    the rest from the front of the queue, priorities first."""
    twin = Twin(client)
    twin.enqueue([SimTask(f"b-{i}", w) for i, w in enumerate(WEIGHTS)])
    twin.enqueue([SimTask("urgent", 2.5, priority=3), SimTask("late", 5, priority=-1, position="z1/n2")])
    for window, heaviest in [(8, 0), (8, 2), (8, 4), (12, 6), (6, 6), (40, 10), (3, 2)]:
        same_snapshot(*twin.snapshot(window, heaviest))


def test_the_model_sees_the_same_worker_view_as_snapshot_lua(client: Client) -> None:
    """The V workers with the most free slots (ties: the greater id first), then the caller."""
    twin = Twin(client)
    for i in range(12):
        twin.heartbeat(f"w{i:02d}", 1 + i % 3, prefetch=i % 2)
    twin.enqueue([SimTask(f"t{i}", w) for i, w in enumerate(WEIGHTS)])
    real, model = twin.cycle(claim("w11", ["t2", "t4", "t0"], 3))
    assert [t.id for t in model.won] == [t.id for t in real.won] == ["t2", "t4", "t0"]
    for view, me in [(4, "w00"), (4, "w11"), (5, ""), (32, "w03")]:
        same_snapshot(*twin.snapshot(4, 1, view, me))


def test_the_model_claims_the_first_wanted_candidates_still_pending(client: Client) -> None:
    twin = Twin(client)
    twin.heartbeat("a", 2, prefetch=2)
    twin.heartbeat("b", 1)
    twin.enqueue([SimTask(f"t{i}", w) for i, w in enumerate(WEIGHTS)])
    real, model = twin.cycle(claim("b", ["t4", "t3"], 1, window=8, heaviest=2))
    assert [t.id for t in model.won] == [t.id for t in real.won] == ["t4"]
    same_snapshot(real.snapshot, model.snapshot)
    real, model = twin.cycle(claim("a", ["t4", "t9", "t3", "t5", "t6"], 3, window=8, heaviest=2))
    assert [(t.id, t.attempt, t.weight) for t in model.won] == [(t.id, t.attempt, t.weight) for t in real.won]
    assert [t.id for t in real.won] == ["t9", "t3", "t5"]
    same_snapshot(real.snapshot, model.snapshot)


def test_the_model_completes_and_claims_in_one_cycle_with_the_load_netted(client: Client) -> None:
    """complete (fenced by the claim token), then claim, then the snapshot that sees both; a
    worker holding nothing afterwards has exact zeros."""
    twin = Twin(client)
    twin.heartbeat("a", 2)
    twin.enqueue([SimTask(f"t{i}", w) for i, w in enumerate(WEIGHTS)])
    twin.cycle(claim("a", ["t0", "t1"], 2))
    real, model = twin.cycle(claim("a", ["t2", "t3"], 1, window=6, heaviest=1), completed=("t0",), stale=("t1",))
    assert model.completed == real.completed
    assert real.completed.accepted == ["t0"] and real.completed.stale == ["t1"]
    assert [t.id for t in model.won] == [t.id for t in real.won] == ["t2"]
    same_snapshot(real.snapshot, model.snapshot)
    assert real.snapshot.loads == {"a": 5.5, "a:n": 2.0}
    real, model = twin.cycle(CycleRequest("a", window=4), completed=("t1", "t2", "t0"))
    assert model.completed == real.completed
    assert (real.completed.accepted, real.completed.already) == (["t1", "t2"], ["t0"])
    same_snapshot(real.snapshot, model.snapshot)
    assert real.snapshot.loads == {"a": 0.0, "a:n": 0.0}


def test_the_model_releases_a_dead_workers_tasks_back_to_their_place(client: Client) -> None:
    twin = Twin(client)
    twin.heartbeat("a", 4)
    twin.heartbeat("b", 1)
    twin.enqueue([SimTask(f"t{i}", w) for i, w in enumerate(WEIGHTS)])
    twin.cycle(claim("a", ["t1", "t4", "t0"], 3))
    twin.cycle(claim("b", ["t2"], 1))
    assert twin.real.release_worker("a", reason="test") == (3, 0)
    assert twin.model.release_worker("a") == 3
    same_snapshot(*twin.snapshot(8, 2, me="b"))
    assert twin.real.forget_worker("a") and twin.model.forget_worker("a")
    same_snapshot(*twin.snapshot(8, 2, me="b"))


def test_the_model_keeps_the_idle_set_and_wakes_the_workers_idle_longest(client: Client) -> None:
    """A snapshot that finds no pending task puts its worker in the idle set; enqueue wakes one
    per task created, the longest idle first; a claim takes a worker out if it may be in."""
    twin = Twin(client)
    for w in ("c", "a", "d", "b"):
        twin.heartbeat(w, 1)
        real, model = twin.snapshot(8, 2, me=w)
        assert real.task_ids == model.task_ids == []
    assert twin.idle() == (["a", "b", "c", "d"], ["a", "b", "c", "d"])
    assert twin.enqueue([SimTask("x", 5), SimTask("y")]) == ["c", "a"]
    assert twin.idle() == (["b", "d"], ["b", "d"])
    twin.cycle(claim("d", ["y"], 1, maybe_idle=False))
    assert twin.idle() == (["b", "d"], ["b", "d"])
    twin.cycle(claim("b", ["x"], 1))
    assert twin.idle() == (["d"], ["d"])
