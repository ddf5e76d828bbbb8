"""Tables people read: the cluster's workers, and the per-worker balance of a run."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from .cluster_state import ClusterStats, WorkerInfo
from .scoring import balance_score, jain_index, max_over_mean


def worker_rows(workers: list[WorkerInfo]) -> list[dict[str, object]]:
    return [
        {"worker": w.id, "tasks": w.tasks_done, "work": round(w.work_done, 3), "busy_seconds": round(w.busy_seconds, 3)}
        for w in workers
    ]


def balance_table(workers: list[WorkerInfo], title: str = "work per worker") -> Table:
    table = Table(title=title)
    for column in ("worker", "tasks", "work", "busy (s)", "share"):
        table.add_column(column, justify="left" if column == "worker" else "right")
    total = sum(w.work_done for w in workers) or 1.0
    for w in workers:
        table.add_row(
            w.id, str(w.tasks_done), f"{w.work_done:.1f}", f"{w.busy_seconds:.2f}", f"{100 * w.work_done / total:.0f}%"
        )
    return table


def balance_summary(workers: list[WorkerInfo]) -> dict[str, float]:
    work = [w.work_done for w in workers]
    return {"balance_score": balance_score(work), "jain_index": jain_index(work), "max_over_mean": max_over_mean(work)}


def cluster_table(stats: ClusterStats) -> Table:
    table = Table(
        title=f"pending {stats.backlog} · scheduled {stats.scheduled} · running {stats.running} · "
        f"succeeded {stats.succeeded} · failed {stats.failed} · balance {stats.balance_score:.2f}"
    )
    for column in ("worker", "alive", "slots", "held", "load", "done", "work", "position"):
        table.add_column(column)
    for w in stats.workers:
        table.add_row(
            w.id,
            "yes" if w.alive else "no",
            str(w.slots),
            str(w.held),
            f"{w.load:.1f}",
            str(w.tasks_done),
            f"{w.work_done:.1f}",
            w.position or "-",
        )
    return table


def settings_table(by_worker: dict[str, dict[str, Any]]) -> Table:
    """The settings in effect: one column per distinct set of them, headed by the workers using it."""
    groups: dict[str, list[str]] = {}
    values: dict[str, dict[str, Any]] = {}
    for worker, settings in by_worker.items():
        key = repr(sorted((k, v) for k, v in settings.items() if k != "worker_id"))
        groups.setdefault(key, []).append(worker)
        values[key] = settings
    table = Table(title="settings in effect")
    table.add_column("setting")
    for workers in groups.values():
        table.add_column(", ".join(workers[:3]) + (f" (+{len(workers) - 3})" if len(workers) > 3 else ""))
    names = sorted({name for settings in values.values() for name in settings if name != "worker_id"})
    for name in names:
        table.add_row(name, *(str(values[key].get(name, "-")) for key in groups))
    return table
