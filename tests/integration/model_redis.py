"""The Redis side of the model-based test (test_protocol_model.py): a redis-server restarted from
its own files, from an older copy of them, or empty; and the check of one cluster's whole state in
Redis against the model (protocol_model.py)."""

from __future__ import annotations

import os
import shutil
import signal
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from protocol_model import FINAL, Model

from pids.client import Client
from pids.embedded import EmbeddedRedis


class RestartingRedis:
    """An EmbeddedRedis with its AOF fsynced at every write: a restart loses nothing acknowledged."""

    def __init__(self, server: EmbeddedRedis) -> None:
        self.server = server
        self.data_dir = Path(str(server.client(decode_responses=True).config_get("dir")["dir"]))

    def files(self) -> list[Path]:
        """What Redis persists (the AOF file or directory, an RDB file), not its log."""
        return [p for p in self.data_dir.iterdir() if p.name.startswith("appendonly") or p.suffix == ".rdb"]

    def copy_files(self, target: Path) -> None:
        """This moment's data set (every acknowledged write is in the files)."""
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()
        for path in self.files():
            (shutil.copytree if path.is_dir() else shutil.copy2)(path, target / path.name)

    def restart(self, *, crash: bool, files: Path | None = None) -> None:
        """Stop it (SIGKILL or SIGTERM) and start it again: from its own files, or from a copy of
        them (`files`; an empty or missing directory: Redis starts empty)."""
        if crash and self.server.pid is not None:
            os.kill(self.server.pid, signal.SIGKILL)
        self.server.stop()
        if files is not None:
            for path in self.files():
                shutil.rmtree(path) if path.is_dir() else path.unlink()
            for path in files.iterdir() if files.exists() else ():
                (shutil.copytree if path.is_dir() else shutil.copy2)(path, self.data_dir / path.name)
        self.server.start()


def check_redis_state(
    client: Client, model: Model, ids: Sequence[str], workers: Sequence[str], batches: Sequence[str], slots: int
) -> None:
    """Everything the cluster keeps in Redis is what the model says: each task's record and result
    (no task lost, none left over from a lost data set), the index holding it, the counters (and
    that they agree with the records), the epoch, each worker's claims and load, the batches."""
    k, m = client.keys, model
    pipe = client.redis.pipeline(transaction=False)
    for task_id in ids:
        pipe.hgetall(k.task(task_id))
        pipe.get(k.result(task_id))
    pipe.zrange(k.pending, 0, -1, withscores=True)
    for index in (k.scheduled, k.running, k.dead):
        pipe.zrange(index, 0, -1)
    pipe.hkeys(k.pending_meta)
    pipe.zrange(k.pending_by_weight, 0, -1)
    pipe.hgetall(k.stats)
    pipe.get(k.epoch)
    pipe.hgetall(k.loads)
    pipe.hkeys(k.workers)
    pipe.zrange(k.deadlines, 0, -1)
    pipe.zrange(k.free_slots, 0, -1, withscores=True)
    for worker in workers:
        pipe.smembers(k.claims(worker))
    for batch in batches:
        pipe.lrange(k.batch(batch), 0, -1)
    replies = iter(pipe.execute())
    final_states: Counter[str] = Counter()
    records = 0
    for task_id in ids:
        record, result = next(replies), next(replies)
        task = m.tasks.get(task_id)
        if task is None:  # never enqueued in this data set, or lost with an older one
            assert (record, result) == ({}, None), task_id
            continue
        records += 1
        assert (
            record.get("state"),
            record.get("claim"),
            record.get("cancel_requested"),
            record.get("error"),
            result,
        ) == (task.state, task.token, "1" if task.cancel_requested else "0", task.error, task.result)
        if task.state in FINAL:  # recorded once: it never changes after
            final_states[task.state] += 1
            task.finished_at = task.finished_at or record["finished_at"]
            assert record["finished_at"] == task.finished_at
    pending, scheduled, running, dead, metas, heavy, stats = (next(replies) for _ in range(7))

    def indexed(index: str) -> set[str]:
        return {t.id for t in m.tasks.values() if t.index == index}

    assert dict(pending) == {t.id: float(t.order) for t in m.tasks.values() if t.index == "pending"}
    assert (set(scheduled), set(running), set(dead)) == (indexed("scheduled"), indexed("running"), indexed("dead"))
    assert set(metas) == indexed("pending") | indexed("scheduled")
    assert set(heavy) == {i for i in indexed("pending") if m.tasks[i].weight > 1}
    counters = ("enqueued", "seq", "succeeded", "failed", "cancelled", "retried", "released", "stale")
    assert {c: int(stats.get(c, 0)) for c in counters} == {c: m.stats[c] for c in counters}
    assert int(stats.get("enqueued", 0)) == records  # (tasks are kept until deleted)
    assert {s: int(stats.get(s, 0)) for s in FINAL} == {s: final_states[s] for s in FINAL}
    epoch, loads, table, deadlines, free = (next(replies) for _ in range(5))
    if m.epoch_made:
        m.learn_epoch(epoch or "")
    else:
        assert epoch is None
    assert set(table) == set(deadlines) == set(m.workers)
    for worker in workers:
        mine = m.running(worker)
        assert next(replies) == {t.id for t in mine}, worker
        assert float(loads.get(f"{worker}:n", 0)) == len(mine)
        assert float(loads.get(worker, 0)) == sum(t.weight for t in mine)
        if worker in m.workers:
            assert dict(free)[worker] == slots - len(mine)
    for batch in batches:
        assert next(replies) == m.batches.get(batch, [])
