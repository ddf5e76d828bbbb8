"""What the plugin prints, computed from plain records: a PidsTask's items (results, describe),
a cluster's workers and queue (top). Pure, so the formatting is tested without a cluster."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..cluster_state import ClusterStats
from ..task import TaskInfo, TaskState

OUTPUTS = ("table", "json", "csv")


@dataclass(frozen=True)
class Item:
    """One task of a PidsTask, in item order."""

    item: int
    id: str
    state: str
    result: Any  # the JSON value; None unless it succeeded
    error: str  # the last error (type, message, traceback tail), "" if none
    pod: str  # the worker (pod) of the last attempt
    attempts: int
    max_attempts: int
    wait_seconds: float | None
    run_seconds: float | None

    @property
    def error_line(self) -> str:
        return self.error.splitlines()[0] if self.error else ""

    @property
    def outcome_error(self) -> str:
        """The error that decided the item: none once it succeeded (an earlier attempt's is kept in `error`)."""
        return "" if self.state == TaskState.SUCCEEDED.value else self.error


def items(ids: Sequence[str], infos: Sequence[TaskInfo | None], results: Sequence[Any]) -> list[Item]:
    rows = []
    for i, (task_id, info, result) in enumerate(zip(ids, infos, results)):
        if info is None:
            rows.append(Item(i, task_id, "missing", None, "", "", 0, 0, None, None))
            continue
        succeeded = info.state is TaskState.SUCCEEDED
        rows.append(
            Item(
                i,
                task_id,
                info.state.value,
                result if succeeded else None,
                info.error,
                info.worker,
                info.attempt,
                info.max_attempts,
                _rounded(info.wait_seconds),
                _rounded(info.run_seconds),
            )
        )
    return rows


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def results_json(rows: Sequence[Item]) -> str:
    return json.dumps(
        [
            {"item": r.item, "id": r.id, "state": r.state, "result": r.result, "error": r.outcome_error or None}
            for r in rows
        ],
        indent=2,
    )


def results_csv(rows: Sequence[Item]) -> str:
    """item,id,state,result,error: the result as JSON, or the first line of the error that ended the item."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["item", "id", "state", "result", "error"])
    for r in rows:
        result = json.dumps(r.result, separators=(",", ":")) if r.state == TaskState.SUCCEEDED.value else ""
        writer.writerow([r.item, r.id, r.state, result, r.outcome_error.partition("\n")[0]])
    return out.getvalue()


def results_table(title: str, rows: Sequence[Item]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("item", "state", "result / error"):
        table.add_column(column, justify="right" if column == "item" else "left", overflow="fold")
    for r in rows:
        shown = json.dumps(r.result) if r.state == TaskState.SUCCEEDED.value else r.error_line
        table.add_row(str(r.item), Text(r.state, style=_STATE_STYLES.get(r.state, "")), shown)
    return table


_STATE_STYLES = {"succeeded": "green", "failed": "red", "cancelled": "yellow", "running": "cyan"}


def describe(name: str, body: dict[str, Any], rows: Sequence[Item], max_tracebacks: int = 10) -> Group:
    """A PidsTask: what it runs, where each item ran, and the tracebacks of the failed ones."""
    spec, status = body.get("spec") or {}, body.get("status") or {}
    counts = Counter(r.state for r in rows)
    pods = Counter(r.pod for r in rows if r.pod)
    head = Table.grid(padding=(0, 2))
    for label, value in (
        ("Name", f"{name} (namespace {body.get('metadata', {}).get('namespace', '')})"),
        ("Cluster", (spec.get("clusterRef") or {}).get("name", "")),
        ("Function", spec.get("function", "")),
        (
            "Phase",
            " ".join(
                [
                    status.get("phase") or "none yet",
                    *[f"({str(status[k]).splitlines()[0]})" for k in ("reason", "message") if status.get(k)],
                ]
            ),
        ),
        ("Task id", f"{status.get('taskId', '')}" + (" (a batch: items are <id>-<i>)" if status.get("batch") else "")),
        ("Items", ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "none"),
        ("Pods", ", ".join(f"{pod}: {n}" for pod, n in sorted(pods.items())) or "none yet"),
    ):
        head.add_row(Text(label + ":", style="bold"), Text(str(value)))
    table = Table(title="items", title_justify="left")
    for column in ("item", "state", "attempts", "pod", "wait s", "run s", "last error"):
        table.add_column(
            column, justify="right" if column in ("item", "attempts", "wait s", "run s") else "left", overflow="fold"
        )
    for r in rows:
        table.add_row(
            str(r.item),
            Text(r.state, style=_STATE_STYLES.get(r.state, "")),
            f"{r.attempts}/{r.max_attempts}",
            r.pod or "-",
            _seconds(r.wait_seconds),
            _seconds(r.run_seconds),
            r.error_line,
        )
    parts: list[Any] = [head, table]
    failed = [r for r in rows if r.state == TaskState.FAILED.value]
    for r in failed[:max_tracebacks]:
        parts.append(
            Text(f"\nitem {r.item} ({r.id}) failed at attempt {r.attempts} on {r.pod or '?'}:", style="bold red")
        )
        parts.append(Text(r.error))
    if len(failed) > max_tracebacks:
        parts.append(
            Text(f"\n... and {len(failed) - max_tracebacks} more failed item(s): kubectl pids results {name} -o json")
        )
    return Group(*parts)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


@dataclass(frozen=True)
class WorkerRow:
    """One worker as `top` shows it."""

    worker: str  # its id: the pod name
    pod: str  # the pod's phase, "gone" without a pod
    alive: bool
    draining: bool
    slots: int
    free_slots: int
    load: float
    held: int
    position: str
    speed: float
    heartbeat_age: float | None  # seconds since its last heartbeat
    claims_per_second: float | None  # None: its metrics could not be read


@dataclass(frozen=True)
class QueueRow:
    pending: int
    scheduled: int
    running: int
    dead_letters: int
    succeeded: int
    failed: int


def heartbeat_age(deadline_ms: float | None, now_ms: int, ttl_ms: float) -> float | None:
    """Seconds since a heartbeat that set `deadline_ms` = its time + the TTL."""
    return None if deadline_ms is None else round(max(0.0, (now_ms - (deadline_ms - ttl_ms)) / 1000), 1)


def worker_rows(
    stats: ClusterStats,
    free_slots: dict[str, float],
    deadlines: dict[str, float],
    now_ms: int,
    ttl_ms: float,
    pods: dict[str, str],
    claims: dict[str, float | None],
) -> list[WorkerRow]:
    """The workers Redis knows (live or with totals) and the worker pods without a record yet."""
    known = {w.id: w for w in stats.workers}
    rows = []
    for worker_id in sorted(set(known) | set(pods)):
        w = known.get(worker_id)
        rows.append(
            WorkerRow(
                worker=worker_id,
                pod=pods.get(worker_id, "gone"),
                alive=bool(w and w.alive),
                draining=bool(w and w.draining),
                slots=w.slots if w else 0,
                free_slots=int(free_slots.get(worker_id, 0)),
                load=round(w.load, 3) if w else 0.0,
                held=w.held if w else 0,
                position=w.position if w else "",
                speed=w.speed if w else 0.0,
                heartbeat_age=heartbeat_age(deadlines.get(worker_id), now_ms, ttl_ms),
                claims_per_second=claims.get(worker_id),
            )
        )
    return rows


def top_json(cluster: str, queue: QueueRow, rows: Sequence[WorkerRow]) -> str:
    return json.dumps({"cluster": cluster, "queue": asdict(queue), "workers": [asdict(r) for r in rows]}, indent=2)


def top_table(cluster: str, queue: QueueRow, rows: Sequence[WorkerRow]) -> Table:
    title = (
        f"PidsCluster {cluster}: pending {queue.pending} · scheduled {queue.scheduled} · running {queue.running} · "
        f"dead letters {queue.dead_letters} · succeeded {queue.succeeded} · failed {queue.failed}"
    )
    table = Table(title=title, title_justify="left")
    for column in (
        "worker",
        "pod",
        "state",
        "load",
        "held",
        "free slots",
        "position",
        "speed",
        "heartbeat",
        "claims/s",
    ):
        table.add_column(column, justify="left" if column in ("worker", "pod", "state", "position") else "right")
    for r in rows:
        state = "draining" if r.draining else ("alive" if r.alive else "dead")
        table.add_row(
            r.worker,
            r.pod,
            Text(state, style="green" if state == "alive" else "yellow"),
            f"{r.load:g}",
            str(r.held),
            f"{r.free_slots}/{r.slots}",
            r.position or "-",
            f"{r.speed:g}",
            "-" if r.heartbeat_age is None else f"{r.heartbeat_age:.1f}s ago",
            "-" if r.claims_per_second is None else f"{r.claims_per_second:.1f}",
        )
    return table
