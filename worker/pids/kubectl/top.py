"""`kubectl pids top`: a cluster's workers and queue from its Redis, and each worker pod's claim
counter from its /metrics, read twice through the API server's pod proxy for claims per second."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pids_operator import meta

from ..client import Client
from ..errors import ConfigError
from ..settings import WorkerSettings
from .kubectl import Kubectl, KubectlError
from .views import QueueRow, WorkerRow, worker_rows

CLAIMED = re.compile(r"^pids_tasks_claimed_total\s+(\S+)\s*$", re.MULTILINE)
HEALTH_PORT_NAME = "health"  # the worker container's port serving /metrics (worker_manifests.py)


def worker_pods(kubectl: Kubectl, cluster: str) -> dict[str, tuple[str, int | None]]:
    """pod name (= worker id) -> (phase, the port of its /metrics)."""
    selector = meta.selector_string(meta.selector_labels(cluster, meta.WORKER))
    pods = {}
    for pod in kubectl.select("pods", selector):
        ports = [
            p for c in pod["spec"]["containers"] for p in c.get("ports") or [] if p.get("name") == HEALTH_PORT_NAME
        ]
        phase = (
            "terminating" if pod["metadata"].get("deletionTimestamp") else (pod.get("status") or {}).get("phase", "?")
        )
        pods[pod["metadata"]["name"]] = (phase, int(ports[0]["containerPort"]) if ports else None)
    return pods


def claimed_total(kubectl: Kubectl, pod: str, port: int | None) -> tuple[float, float] | None:
    """(when, the pod's pids_tasks_claimed_total), or None if its metrics cannot be read."""
    if port is None:
        return None
    try:
        text = kubectl.raw(f"/api/v1/namespaces/{kubectl.namespace}/pods/{pod}:{port}/proxy/metrics")
    except KubectlError:
        return None
    match = CLAIMED.search(text)
    return (time.monotonic(), float(match.group(1))) if match else None


def claim_rates(kubectl: Kubectl, pods: dict[str, tuple[str, int | None]], interval: float) -> dict[str, float | None]:
    """Claims per second of each pod over `interval` seconds (None where unreadable)."""
    if not pods:
        return {}
    with ThreadPoolExecutor(max_workers=min(16, len(pods))) as pool:

        def sample() -> dict[str, tuple[float, float] | None]:
            futures = {pod: pool.submit(claimed_total, kubectl, pod, port) for pod, (_, port) in pods.items()}
            return {pod: f.result() for pod, f in futures.items()}

        first = sample()
        time.sleep(interval)
        second = sample()
    rates: dict[str, float | None] = {}
    for pod in pods:
        a, b = first[pod], second[pod]
        rates[pod] = round(max(0.0, (b[1] - a[1]) / (b[0] - a[0])), 2) if a and b and b[0] > a[0] else None
    return rates


def heartbeat_ttl_ms(kubectl: Kubectl, cluster: dict[str, Any]) -> float:
    """The workers' heartbeat TTL, from the settings their environment gives them (the ConfigMap
    and the cluster's extra env), as the worker itself reads it."""
    name = cluster["metadata"]["name"]
    try:
        environ = dict(kubectl.get("configmap", meta.child_name(name, "config")).get("data") or {})
    except KubectlError:
        environ = {}
    extra = (cluster.get("spec") or {}).get("worker", {}).get("env") or []
    environ.update({e["name"]: str(e.get("value", "")) for e in extra if "name" in e})
    try:
        return WorkerSettings.from_env(environ).heartbeat_ttl_seconds * 1000
    except ConfigError:
        return WorkerSettings().heartbeat_ttl_seconds * 1000


def read(
    client: Client, kubectl: Kubectl, cluster: dict[str, Any], interval: float
) -> tuple[QueueRow, list[WorkerRow]]:
    """The queue and the workers, with claims/s measured over `interval` seconds."""
    pods = worker_pods(kubectl, cluster["metadata"]["name"])
    rates = claim_rates(kubectl, pods, interval)
    stats = client.cluster_stats()
    k = client.keys
    pipe = client.redis.pipeline(transaction=False)
    pipe.time()
    pipe.zrange(k.free_slots, 0, -1, withscores=True)
    pipe.zrange(k.deadlines, 0, -1, withscores=True)
    pipe.zcard(k.dead)
    (seconds, micros), free, deadlines, dead = pipe.execute()
    queue = QueueRow(
        pending=stats.backlog,
        scheduled=stats.scheduled,
        running=stats.running,
        dead_letters=int(dead),
        succeeded=stats.succeeded,
        failed=stats.failed,
    )
    rows = worker_rows(
        stats,
        dict(free),
        dict(deadlines),
        int(seconds) * 1000 + int(micros) // 1000,
        heartbeat_ttl_ms(kubectl, cluster),
        {pod: phase for pod, (phase, _) in pods.items()},
        rates,
    )
    return queue, rows
