"""Turn a Redis snapshot into the placement inputs (WorkerTable, TaskWindow)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .placement import TaskWindow, WorkerTable
from .protocol import Snapshot


def worker_table(snapshot: Snapshot, me: str, my_free_slots: int) -> WorkerTable:
    """Live workers sorted by id. Free slots come from each worker's slots + prefetch minus
    what it holds; a draining worker has none; my own count is the exact local one."""
    live = snapshot.live_workers()
    ids = sorted(live)
    capacity = np.empty(len(ids))
    speed = np.empty(len(ids))
    load = np.empty(len(ids))
    free = np.empty(len(ids), dtype=np.int64)
    positions = []
    for i, w in enumerate(ids):
        info = live[w]
        speed[i] = float(info.get("speed", 1.0))
        capacity[i] = float(info.get("capacity", info.get("slots", 1) * speed[i]))
        load[i] = snapshot.loads.get(w, 0.0)
        if w == me:
            free[i] = my_free_slots
        elif info.get("draining"):
            free[i] = 0
        else:
            held = int(snapshot.loads.get(f"{w}:n", 0))
            free[i] = max(0, int(info.get("slots", 1)) + int(info.get("prefetch", 0)) - held)
        positions.append(str(info.get("position", "")))
    held = np.array([snapshot.loads.get(f"{w}:n", 0.0) for w in ids], dtype=np.float64)
    return WorkerTable(ids=ids, capacity=capacity, load=load, free_slots=free, speed=speed, position=positions, held=held,
                       whole_cluster=snapshot.sees_every_worker)


def task_window(snapshot: Snapshot) -> TaskWindow:
    """The pending window; a task whose metadata vanished (claimed meanwhile) is left out."""
    ids, rows = [], []
    for task_id, meta in zip(snapshot.task_ids, snapshot.task_meta):
        if meta is not None:
            ids.append(task_id)
            rows.append(parse_task_meta(meta))
    weight, priority, position, seq, enqueued_ms = zip(*rows) if rows else ((), (), (), (), ())
    age = np.maximum(0.0, (snapshot.now_ms - np.array(enqueued_ms, dtype=np.float64)) / 1000.0)
    return TaskWindow(ids=ids, weight=np.array(weight, dtype=np.float64), priority=np.array(priority, dtype=np.float64),
                      position=list(position), age=age, seq=np.array(seq, dtype=np.float64))


@lru_cache(maxsize=8192)
def parse_task_meta(meta: str) -> tuple[float, float, str, float, float]:
    """(weight, priority, position, sequence number, enqueued ms) from a pending task's metadata
    (tab-separated: order, weight, priority, position, seq, enqueued ms). Successive windows
    overlap, so a worker sees most tasks in several snapshots: each text is parsed once."""
    _order, weight, priority, position, seq, enqueued_ms = meta.split("\t")
    return float(weight), float(priority), position, float(seq), float(enqueued_ms)
