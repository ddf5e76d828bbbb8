"""Crash recovery: when a worker pod dies, give its claims back at once
instead of waiting for their leases to run out.

Releases on: the pod deleted (gone for good), the pod Failed (evicted, OOM at
pod level), or the worker container restarted (its liveness probe failed, or it
crashed): the new process starts empty, so whatever the old one held is orphaned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

WORKER_CONTAINER = "worker"


def worker_restarts(pod: Mapping[str, Any]) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return sum(int(s.get("restartCount") or 0) for s in statuses if s.get("name") == WORKER_CONTAINER)


@dataclass
class PodMemory:
    """What the operator saw of each worker pod (by uid), kept in the memo."""

    restarts: dict[str, int] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)

    def forget(self, uid: str) -> None:
        self.restarts.pop(uid, None)
        self.failed.discard(uid)


def release_reason(event_type: str | None, pod: Mapping[str, Any], memory: PodMemory) -> str | None:
    """Why this pod event means its worker's claims are orphaned, or None. Updates `memory`."""
    uid = str(pod.get("metadata", {}).get("uid", ""))
    if event_type == "DELETED":
        memory.forget(uid)
        return "PodDeleted"
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Failed", "Succeeded"):
        if uid in memory.failed:
            return None
        memory.failed.add(uid)
        return "PodFailed"
    restarts = worker_restarts(pod)
    before = memory.restarts.get(uid)
    memory.restarts[uid] = restarts
    if before is not None and restarts > before:
        return "ContainerRestarted"
    return None


def release(client: Any, worker_id: str, reason: str) -> int:
    """Put everything the worker holds back to pending; a deleted worker is also forgotten."""
    released = int(client.release_worker(worker_id))
    if reason == "PodDeleted":
        forget = getattr(client, "forget_worker", None)
        if callable(forget):
            forget(worker_id)
    return released
