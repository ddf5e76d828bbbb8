"""Everything the handlers share, kept in Kopf's memo as `memo.pids`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from .config import OperatorConfig
from .connections import Connections
from .kube import Kube
from .metrics import OperatorMetrics
from .recovery import PodMemory

Warner = Callable[[Mapping[str, Any], str, str], None]
EVENT_MESSAGE_LIMIT = 1000  # the API server caps an Event's message at 1 KiB


def kopf_warning(body: Mapping[str, Any], reason: str, message: str) -> None:
    """A Warning Event on the object, posted by Kopf."""
    kopf.warn(body, reason=reason, message=message[:EVENT_MESSAGE_LIMIT])  # type: ignore[arg-type]


@dataclass
class OperatorState:
    config: OperatorConfig
    kube: Kube
    metrics: OperatorMetrics
    connections: Connections = field(default_factory=Connections)
    pods: PodMemory = field(default_factory=PodMemory)
    clusters: set[tuple[str, str]] = field(default_factory=set)
    task_phases: dict[str, str] = field(default_factory=dict)
    warn: Warner = kopf_warning

    def set_task_phase(self, uid: str, phase: str | None) -> None:
        """Track a task's phase (None: deleted) and refresh the tasks-by-phase gauge."""
        if phase is None:
            self.task_phases.pop(uid, None)
        else:
            self.task_phases[uid] = phase
        for p in ("Pending", "Running", "Succeeded", "Failed"):
            self.metrics.tasks.labels(p).set(sum(1 for v in self.task_phases.values() if v == p))

    def set_cluster(self, key: tuple[str, str], present: bool) -> None:
        (self.clusters.add if present else self.clusters.discard)(key)
        self.metrics.clusters.set(len(self.clusters))
