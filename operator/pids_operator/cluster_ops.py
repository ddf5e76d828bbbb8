"""What a PidsCluster reconcile and its status timer do against the API and Redis.

reconcile(): apply every child built by the pure builders.
refresh(): read Redis and the Deployment, decide scaling, drain, return status.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from . import meta
from .app_secret import publish_app_secret
from .cluster_status import QueueCounts, build_cluster_status
from .connections import Connections
from .degradation import workers_problem
from .kube import Kube
from .redis_ops import observe_redis, reconcile_redis
from .redis_status import RedisObservation, describe_error, redis_health
from .scaling import DELETION_COST, WorkerLoad, desired_workers, plan_scaling, staying_pods
from .spec import ClusterSpec
from .worker_manifests import (
    build_configmap,
    build_service_account,
    build_worker_deployment,
    build_worker_service,
    worker_redis_url,
)


def initial_replicas(spec: ClusterSpec) -> int:
    """Workers a new cluster starts with (autoscaling starts at min, or `workers` if larger)."""
    if spec.autoscaling.enabled:
        return max(spec.autoscaling.min_workers, min(spec.workers, spec.autoscaling.max_workers))
    return spec.workers


def reconcile(kube: Kube, body: Mapping[str, Any], spec: ClusterSpec) -> int:
    """Create or update every child; returns the worker Deployment's replicas."""
    ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
    if spec.managed_redis is not None:
        reconcile_redis(kube, body, spec.managed_redis)
    kube.apply(build_service_account(body))
    kube.apply(build_configmap(body, spec))
    existing = kube.deployment(ns, meta.child_name(name, "workers"))
    replicas = int(existing["spec"]["replicas"]) if existing else initial_replicas(spec)
    kube.apply(build_worker_deployment(body, spec, replicas))
    kube.apply(build_worker_service(body, spec))
    publish_app_secret(kube, body, spec)
    return replicas


def read_redis(connections: Connections, kube: Kube, body: Mapping[str, Any]) -> tuple[Any, Any]:
    """(client, ClusterStats); raises whatever made Redis unreadable."""
    client = connections.for_cluster(kube, body)
    return client, client.cluster_stats()


def refresh(
    kube: Kube,
    connections: Connections,
    body: Mapping[str, Any],
    spec: ClusterSpec,
    status: Mapping[str, Any],
    now: float | None = None,
    observe: Callable[[Any], RedisObservation] = observe_redis,
) -> dict[str, Any]:
    """One status tick: counters, scaling with drain, Redis health, conditions."""
    now = time.time() if now is None else now
    ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
    client = counts = loads = None
    observation = RedisObservation(reachable=False)
    try:
        client, stats = read_redis(connections, kube, body)
        counts = QueueCounts.from_stats(stats)
        loads = {
            w.id: WorkerLoad(held=int(w.held), load=float(w.load), draining=bool(w.draining)) for w in stats.workers
        }
        observation = observe(client)
    except Exception as e:
        observation = RedisObservation(reachable=False, error=describe_error(e))
    health = redis_health(spec, status.get("redis") or {}, observation, now)
    deployment = kube.deployment(ns, meta.child_name(name, "workers"))
    current = int(deployment["spec"]["replicas"]) if deployment else 0
    if counts is not None:
        desired = desired_workers(spec, counts.backlog, counts.running)
    else:
        desired = current if spec.autoscaling.enabled else spec.workers
    draining = {d["name"]: float(d["since"]) for d in status.get("draining") or [] if "name" in d}
    replicas = current
    worker_pods = kube.worker_pods(ns, name) if deployment is not None else []
    stuck = workers_problem(worker_pods)
    if deployment is not None:
        pods = staying_pods(worker_pods)
        plan = plan_scaling(desired, pods, loads, draining, now, spec.autoscaling.scale_down_grace_seconds)
        if client is not None:
            for worker in plan.drain:
                client.drain_worker(worker)
        for pod, cost in plan.deletion_costs.items():
            kube.annotate_pod(ns, pod, {DELETION_COST: str(cost)})
        if plan.replicas != current:
            kube.set_replicas(ns, meta.child_name(name, "workers"), plan.replicas)
        draining, replicas = plan.draining, plan.replicas
    # Redis first: workers cannot run without it, whatever their pods say
    degraded = health.degraded or ((stuck.reason, stuck.message) if stuck else None)
    new = build_cluster_status(
        name=name,
        generation=body["metadata"].get("generation"),
        previous=status,
        deployment_status=(deployment or {}).get("status"),
        replicas=replicas,
        desired=desired,
        counts=counts,
        draining=draining,
        redis_url=worker_redis_url(body, spec),
        degraded=degraded[1] if degraded else None,
        degraded_reason=degraded[0] if degraded else "AsExpected",
        extra_conditions=health.conditions,
        now=now,
    )
    new["redis"] = health.block
    return new
