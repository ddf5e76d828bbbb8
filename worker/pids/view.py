"""Turn a Redis snapshot into the placement inputs (WorkerTable, TaskWindow)."""

from __future__ import annotations

import numpy as np

from .placement import TaskWindow, WorkerTable
from .wire import META_FIELDS, Snapshot, held_field, pending_meta_columns


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
            held_now = int(snapshot.loads.get(held_field(w), 0))
            free[i] = max(0, int(info.get("slots", 1)) + int(info.get("prefetch", 0)) - held_now)
        positions.append(str(info.get("position", "")))
    held = np.array([snapshot.loads.get(held_field(w), 0.0) for w in ids], dtype=np.float64)
    return WorkerTable(
        ids=ids,
        capacity=capacity,
        load=load,
        free_slots=free,
        speed=speed,
        position=positions,
        held=held,
        whole_cluster=snapshot.sees_every_worker,
    )


def task_window(snapshot: Snapshot) -> TaskWindow:
    """The pending window; a task whose metadata vanished (claimed meanwhile) is left out.

    Parsed column by column, not text by text: between two snapshots of a worker every worker
    claims, so most of a window is new to it, and per-text parsing was half of its planning."""
    ids = snapshot.task_ids
    metas = [meta for meta in snapshot.task_meta if meta is not None]
    if len(metas) < len(ids):
        ids = [task_id for task_id, meta in zip(ids, snapshot.task_meta) if meta is not None]
    if len(metas) == 0:
        return TaskWindow(
            ids=[], weight=np.empty(0), priority=np.empty(0), position=[], age=np.empty(0), seq=np.empty(0)
        )
    try:
        _, weight, priority, position, seq, enqueued = pending_meta_columns(metas)
        columns = _numbers(weight), _numbers(priority), _numbers(seq), _numbers(enqueued)
    except ValueError:  # a malformed entry: leave it out, plan the rest
        kept = [i for i, meta in enumerate(metas) if _well_formed(meta)]
        if len(kept) == len(metas):
            raise
        kept_metas: list[str | None] = [metas[i] for i in kept]
        return task_window(
            Snapshot(
                snapshot.now_ms, [ids[i] for i in kept], kept_metas, snapshot.workers, snapshot.loads, snapshot.view
            )
        )
    return TaskWindow(
        ids=list(ids),
        weight=columns[0],
        priority=columns[1],
        position=position,
        age=np.maximum(0.0, (snapshot.now_ms - columns[3]) / 1000.0),
        seq=columns[2],
    )


def _well_formed(meta: str) -> bool:
    fields = meta.split("\t")
    try:
        return len(fields) == META_FIELDS and all(float(fields[i]) == float(fields[i]) for i in (1, 2, 4, 5))
    except ValueError:
        return False


def _numbers(texts: list[str]) -> np.ndarray:
    """Floats from texts; a column of one repeated text (the default weight, priority) is parsed once."""
    if texts.count(texts[0]) == len(texts):
        return np.full(len(texts), float(texts[0]))
    return np.array(texts, dtype=np.float64)
