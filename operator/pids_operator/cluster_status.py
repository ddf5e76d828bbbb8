"""Pure computation of a PidsCluster's status: replicas and selector for the
scale subresource, queue counters, throughput from counter deltas, balance,
and the Ready / Scaling / Degraded conditions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import meta
from .conditions import Condition, condition, merge_conditions


@dataclass(frozen=True)
class QueueCounts:
    """The part of pids.client.ClusterStats the status shows."""

    backlog: int = 0
    scheduled: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    live_workers: int = 0
    balance: float = 0.0

    @classmethod
    def from_stats(cls, stats: Any) -> QueueCounts:
        workers = getattr(stats, "workers", []) or []
        return cls(
            backlog=int(stats.backlog),
            scheduled=int(stats.scheduled),
            running=int(stats.running),
            succeeded=int(stats.succeeded),
            failed=int(stats.failed),
            live_workers=sum(1 for w in workers if getattr(w, "alive", True)),
            balance=float(getattr(stats, "balance_score", 0.0)),
        )


def throughput(previous_sample: Mapping[str, Any] | None, finished: int, now: float) -> float:
    """Tasks finished per second since the previous sample; 0 after a counter reset."""
    if not previous_sample:
        return 0.0
    elapsed = now - float(previous_sample.get("at", now))
    delta = finished - int(previous_sample.get("finished", finished))
    if elapsed <= 0 or delta < 0:
        return 0.0
    return round(delta / elapsed, 3)


def build_cluster_status(
    *,
    name: str,
    generation: int | None,
    previous: Mapping[str, Any],
    deployment_status: Mapping[str, Any] | None,
    replicas: int,
    desired: int,
    counts: QueueCounts | None,
    draining: Mapping[str, float],
    redis_url: str,
    degraded: str | None,
    degraded_reason: str = "RedisUnreachable",
    extra_conditions: list[Condition] | None = None,
    now: float,
) -> dict[str, Any]:
    """The whole status dict. `counts` None means Redis could not be read: counters keep their
    last values and the cluster is not Ready. `degraded` (a message) makes the phase Degraded."""
    ds = deployment_status or {}
    ready = int(ds.get("readyReplicas") or 0)
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "replicas": int(ds.get("replicas") or 0),
        "readyReplicas": ready,
        "desiredReplicas": desired,
        "selector": meta.selector_string(meta.selector_labels(name, meta.WORKER)),
        "redisUrl": redis_url,
        "draining": [{"name": p, "since": since} for p, since in sorted(draining.items())],
    }
    if counts is not None:
        finished = counts.succeeded + counts.failed
        status.update(
            backlog=counts.backlog,
            scheduled=counts.scheduled,
            running=counts.running,
            succeeded=counts.succeeded,
            failed=counts.failed,
            liveWorkers=counts.live_workers,
            balance=round(counts.balance, 4),
            throughput=throughput(previous.get("sample"), finished, now),
            sample={"finished": finished, "at": now},
        )
    scaling = replicas != desired or status["replicas"] != replicas or bool(draining)
    if draining:
        scaling_reason = "Draining"
    elif replicas > status["replicas"] or desired > replicas:
        scaling_reason = "ScalingUp"
    elif scaling:
        scaling_reason = "ScalingDown"
    else:
        scaling_reason = "Stable"
    is_ready = counts is not None and ready >= desired
    conditions = [
        condition(
            "Ready",
            is_ready,
            "WorkersReady" if is_ready else (degraded_reason if counts is None else "WorkersNotReady"),
            f"{ready}/{desired} workers ready",
        ),
        condition("Scaling", scaling, scaling_reason, f"replicas {status['replicas']} -> {desired}"),
        condition("Degraded", degraded is not None, degraded_reason if degraded else "AsExpected", degraded or ""),
        *(extra_conditions or []),
    ]
    status["conditions"] = merge_conditions(previous.get("conditions"), conditions, generation, now)
    status["phase"] = "Degraded" if degraded else "Ready" if is_ready else "Scaling" if scaling or ready else "Pending"
    return status
