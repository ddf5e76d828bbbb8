"""Pure scaling decisions: how many workers a cluster wants, and how to shrink
without killing work.

Scale-down drains first: the least-loaded workers are asked to stop claiming
(drain_worker); a draining worker's pod is removed once it holds nothing, or
when the grace period runs out (its SIGTERM drain then releases what is left).
The pod to remove gets the lowest `controller.kubernetes.io/pod-deletion-cost`,
so the ReplicaSet deletes exactly that pod when replicas drop.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .spec import ClusterSpec

# Deletion cost of a pod cleared to go: far below the default 0 of the others.
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
REMOVE_COST = -1000


@dataclass(frozen=True)
class WorkerLoad:
    """What Redis says about one worker (by pod name)."""

    held: int = 0
    load: float = 0.0
    draining: bool = False


@dataclass
class ScalePlan:
    replicas: int
    drain: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    draining: dict[str, float] = field(default_factory=dict)

    @property
    def deletion_costs(self) -> dict[str, int]:
        return dict.fromkeys(self.remove, REMOVE_COST)


def staying_pods(pods: Sequence[Mapping[str, Any]]) -> list[str]:
    """Names of pods not already cleared to go: a pod marked with REMOVE_COST is
    leaving (its ReplicaSet may take a moment to delete it) and must not be
    counted, or drained twice over, on the next tick."""
    out = []
    for pod in pods:
        annotations = pod.get("metadata", {}).get("annotations") or {}
        if annotations.get(DELETION_COST) != str(REMOVE_COST):
            out.append(pod["metadata"]["name"])
    return out


def desired_workers(spec: ClusterSpec, backlog: int, running: int) -> int:
    """spec.workers, or with autoscaling ceil((backlog + running) / target) clamped to [min, max]."""
    a = spec.autoscaling
    if not a.enabled:
        return spec.workers
    need = math.ceil(max(0, backlog + running) / a.target_backlog_per_worker)
    return max(a.min_workers, min(a.max_workers, need))


def plan_scaling(
    desired: int,
    pods: list[str],
    loads: Mapping[str, WorkerLoad] | None,
    draining: Mapping[str, float],
    now: float,
    grace_seconds: float,
) -> ScalePlan:
    """Replicas to set now, workers to start draining, and draining pods that may go.

    `pods` are the live (not terminating) worker pods; `draining` maps pods
    already asked to drain to when that started. Workers Redis does not know
    (not started yet) count as idle, so they go first; with `loads` None (Redis
    unreachable) every worker counts as busy and leaves only after the grace.
    """
    unknown = WorkerLoad() if loads is not None else WorkerLoad(held=1)
    table = loads or {}

    def load(p: str) -> WorkerLoad:
        return table.get(p, unknown)

    still = {p: since for p, since in draining.items() if p in pods}
    active = [p for p in pods if p not in still]
    drain: list[str] = []
    if len(active) > desired:
        by_idleness = sorted(active, key=lambda p: (load(p).held, load(p).load, p))
        drain = by_idleness[: len(active) - desired]
        for p in drain:
            still[p] = now
    remove = sorted(p for p, since in still.items() if load(p).held == 0 or now - since >= grace_seconds)
    for p in remove:
        still.pop(p)
    return ScalePlan(replicas=desired + len(still), drain=drain, remove=remove, draining=still)
