"""cluster_ops wiring over an in-memory stand-in for the Kube wrapper."""

from __future__ import annotations

import base64
import copy
from dataclasses import dataclass, field
from typing import Any

import pytest

from pids_operator import cluster_ops
from pids_operator.connections import Connections
from pids_operator.redis_ops import RedisChanging
from pids_operator.redis_status import RedisObservation
from pids_operator.scaling import REMOVE_COST
from pids_operator.spec import ClusterSpec
from tests.unit.test_redis_status import report

BODY = {
    "apiVersion": "pids.dev/v1alpha1",
    "kind": "PidsCluster",
    "metadata": {"name": "demo", "namespace": "ns", "uid": "u", "generation": 2},
    "spec": {"workers": 2},
}


class MemoryKube:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.pods: list[str] = []
        self.annotations: dict[str, dict[str, str]] = {}
        self.secrets: dict[str, str] = {}
        self.deleted: list[tuple[str, str, bool]] = []
        self.old_redis_pods: list[dict[str, Any]] = []
        self.pod_status: dict[str, dict[str, Any]] = {}

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        self.objects[(manifest["kind"], manifest["metadata"]["name"])] = copy.deepcopy(manifest)
        return manifest

    def create_if_absent(self, manifest: dict[str, Any]) -> bool:
        key = (manifest["kind"], manifest["metadata"]["name"])
        if key in self.objects:
            return False
        self.objects[key] = copy.deepcopy(manifest)
        if manifest["kind"] == "Secret":
            self.secrets[manifest["metadata"]["name"]] = manifest["stringData"]["password"]
        return True

    def exists(self, kind: str, namespace: str, name: str) -> bool:
        return (kind, name) in self.objects

    def secret_value(self, namespace: str, name: str, key: str) -> str | None:
        return self.secrets.get(name)

    def deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        d = self.objects.get(("Deployment", name))
        if d is None:
            return None
        return {**d, "status": {"replicas": d["spec"]["replicas"], "readyReplicas": d["spec"]["replicas"]}}

    def statefulset(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get(("StatefulSet", name))

    def delete(self, kind: str, namespace: str, name: str, orphan: bool = False) -> None:
        self.deleted.append((kind, name, orphan))
        self.objects.pop((kind, name), None)

    def redis_pods(self, namespace: str, cluster: str) -> list[dict[str, Any]]:
        return self.old_redis_pods

    def set_replicas(self, namespace: str, name: str, replicas: int) -> None:
        self.objects[("Deployment", name)]["spec"]["replicas"] = replicas

    def worker_pods(self, namespace: str, cluster: str) -> list[dict[str, Any]]:
        return [
            {"metadata": {"name": p, "annotations": self.annotations.get(p, {})}, "status": self.pod_status.get(p, {})}
            for p in self.pods
        ]

    def annotate_pod(self, namespace: str, name: str, annotations: dict[str, str]) -> None:
        self.annotations.setdefault(name, {}).update(annotations)


@dataclass
class Worker:
    id: str
    held: int
    load: float
    draining: bool = False
    alive: bool = True


@dataclass
class Stats:
    backlog: int = 0
    scheduled: int = 0
    running: int = 0
    succeeded: int = 7
    failed: int = 0
    workers: list[Worker] = field(default_factory=list)
    balance_score: float = 1.0


class FakeClient:
    def __init__(self, stats: Stats) -> None:
        self.stats = stats
        self.drained: list[str] = []

    def cluster_stats(self) -> Stats:
        return self.stats

    def drain_worker(self, worker_id: str) -> None:
        self.drained.append(worker_id)


def connections_for(client: Any) -> Connections:
    return Connections(factory=lambda url, cluster, password, ack: client)


def healthy(client: Any) -> RedisObservation:
    return RedisObservation(reachable=True, epoch="e1", report=report())


def refresh(kube: MemoryKube, client: Any, body: dict[str, Any], status: dict[str, Any], now: float) -> dict[str, Any]:
    spec = ClusterSpec.parse(body["spec"])
    return cluster_ops.refresh(kube, connections_for(client), body, spec, status, now=now, observe=healthy)  # type: ignore[arg-type]


def test_reconcile_creates_every_child_and_one_password() -> None:
    kube = MemoryKube()
    spec = ClusterSpec.parse(BODY["spec"])
    assert cluster_ops.reconcile(kube, BODY, spec) == 2  # type: ignore[arg-type]
    kinds = sorted(kind for kind, _ in kube.objects)
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "Secret",
        "Secret",
        "Service",
        "Service",
        "Service",
        "ServiceAccount",
        "StatefulSet",
    ]
    password = kube.secrets["demo-redis-auth"]
    cluster_ops.reconcile(kube, BODY, spec)  # type: ignore[arg-type]
    assert kube.secrets["demo-redis-auth"] == password


def test_reconcile_publishes_the_connection_secret_with_the_generated_password() -> None:
    kube = MemoryKube()
    cluster_ops.reconcile(kube, BODY, ClusterSpec.parse(BODY["spec"]))  # type: ignore[arg-type]
    data = {k: base64.b64decode(v).decode() for k, v in kube.objects[("Secret", "demo-app")]["data"].items()}
    password = kube.secrets["demo-redis-auth"]
    assert data == {
        "url": f"redis://:{password}@demo-redis.ns.svc:6379/0",
        "host": "demo-redis.ns.svc",
        "port": "6379",
        "password": password,
        "cluster": "demo",
    }


def test_reconcile_keeps_the_replicas_the_scaler_set() -> None:
    kube = MemoryKube()
    spec = ClusterSpec.parse(BODY["spec"])
    cluster_ops.reconcile(kube, BODY, spec)  # type: ignore[arg-type]
    kube.set_replicas("ns", "demo-workers", 5)
    assert cluster_ops.reconcile(kube, BODY, spec) == 5  # type: ignore[arg-type]


def test_external_redis_makes_no_redis_children() -> None:
    kube = MemoryKube()
    spec = ClusterSpec.parse({"redis": {"external": {"url": "redis://r:6379/0"}}})
    cluster_ops.reconcile(kube, BODY, spec)  # type: ignore[arg-type]
    assert ("StatefulSet", "demo-redis") not in kube.objects and ("Secret", "demo-redis-auth") not in kube.objects


def test_autoscaling_starts_within_bounds() -> None:
    assert (
        cluster_ops.initial_replicas(
            ClusterSpec.parse({"workers": 50, "autoscaling": {"enabled": True, "maxWorkers": 4}})
        )
        == 4
    )
    assert (
        cluster_ops.initial_replicas(
            ClusterSpec.parse({"workers": 0, "autoscaling": {"enabled": True, "minWorkers": 2}})
        )
        == 2
    )


def test_refresh_scales_down_by_draining_and_marks_the_idle_pod() -> None:
    kube = MemoryKube()
    body = {**BODY, "spec": {"workers": 3}}
    spec = ClusterSpec.parse(body["spec"])
    cluster_ops.reconcile(kube, body, spec)  # type: ignore[arg-type]
    kube.pods = ["p1", "p2", "p3"]
    body = {**BODY, "spec": {"workers": 1}}
    client = FakeClient(Stats(workers=[Worker("p1", 2, 2.0), Worker("p2", 0, 0.0), Worker("p3", 1, 1.0)]))
    status = refresh(kube, client, body, {}, now=100.0)
    assert client.drained == ["p2", "p3"]
    assert kube.annotations == {"p2": {"controller.kubernetes.io/pod-deletion-cost": str(REMOVE_COST)}}
    assert kube.objects[("Deployment", "demo-workers")]["spec"]["replicas"] == 2
    assert status["draining"] == [{"name": "p3", "since": 100.0}]
    assert status["desiredReplicas"] == 1 and status["succeeded"] == 7 and status["phase"] != "Degraded"


def test_refresh_with_redis_down_is_degraded_but_still_reports_replicas() -> None:
    kube = MemoryKube()
    spec = ClusterSpec.parse(BODY["spec"])
    cluster_ops.reconcile(kube, BODY, spec)  # type: ignore[arg-type]

    def broken(url: str, cluster: str, password: str | None, ack: int) -> Any:
        raise ConnectionError("connection refused")

    status = cluster_ops.refresh(kube, Connections(factory=broken), BODY, spec, {}, now=1.0)  # type: ignore[arg-type]
    assert status["phase"] == "Degraded" and status["replicas"] == 2
    assert "connection refused" in status["conditions"][2]["message"]
    assert status["conditions"][2]["reason"] == "RedisUnreachable" and status["conditions"][0]["status"] == "False"


def test_pods_cleared_to_go_are_not_drained_again_on_the_next_tick() -> None:
    kube = MemoryKube()
    body = {**BODY, "spec": {"workers": 1}}
    spec = ClusterSpec.parse(body["spec"])
    cluster_ops.reconcile(kube, body, spec)  # type: ignore[arg-type]
    kube.pods = ["p1", "p2", "p3"]  # the ReplicaSet has not deleted the leaving pods yet
    client = FakeClient(Stats(workers=[Worker("p1", 1, 1.0), Worker("p2", 0, 0.0), Worker("p3", 0, 0.0)]))
    status = refresh(kube, client, body, {}, now=1.0)
    assert sorted(kube.annotations) == ["p2", "p3"] and status["draining"] == []
    client.drained.clear()
    refresh(kube, client, body, status, now=11.0)
    assert client.drained == [] and sorted(kube.annotations) == ["p2", "p3"]
    assert kube.objects[("Deployment", "demo-workers")]["spec"]["replicas"] == 1


def test_the_deployment_based_redis_of_an_older_operator_is_replaced_by_a_statefulset() -> None:
    kube = MemoryKube()
    spec = ClusterSpec.parse(BODY["spec"])
    owner = [{"kind": "PidsCluster", "uid": "u"}]
    kube.objects[("Deployment", "demo-redis")] = {
        "metadata": {"name": "demo-redis", "ownerReferences": owner},
        "spec": {"replicas": 1},
    }
    with pytest.raises(RedisChanging, match="Deployment-based"):
        cluster_ops.reconcile(kube, BODY, spec)  # type: ignore[arg-type]
    assert kube.deleted == [("Deployment", "demo-redis", False)]
    kube.old_redis_pods = [{"metadata": {"name": "demo-redis-5d-x", "ownerReferences": [{"kind": "ReplicaSet"}]}}]
    with pytest.raises(RedisChanging, match="demo-redis-5d-x"):  # its pod may still be writing
        cluster_ops.reconcile(kube, BODY, spec)  # type: ignore[arg-type]
    assert ("StatefulSet", "demo-redis") not in kube.objects
    kube.old_redis_pods = []
    cluster_ops.reconcile(kube, BODY, spec)  # type: ignore[arg-type]
    assert kube.objects[("StatefulSet", "demo-redis")]["spec"]["volumeClaimTemplates"]


def test_a_deployment_of_the_same_name_that_is_not_ours_is_left_alone() -> None:
    kube = MemoryKube()
    kube.objects[("Deployment", "demo-redis")] = {
        "metadata": {"name": "demo-redis", "ownerReferences": []},
        "spec": {"replicas": 1},
    }
    cluster_ops.reconcile(kube, BODY, ClusterSpec.parse(BODY["spec"]))  # type: ignore[arg-type]
    assert kube.deleted == [] and ("StatefulSet", "demo-redis") in kube.objects


def test_the_persistent_volume_of_an_older_operator_keeps_serving_a_single_redis() -> None:
    kube = MemoryKube()
    kube.objects[("PersistentVolumeClaim", "demo-redis-data")] = {"metadata": {"name": "demo-redis-data"}}
    cluster_ops.reconcile(kube, BODY, ClusterSpec.parse(BODY["spec"]))  # type: ignore[arg-type]
    sts = kube.objects[("StatefulSet", "demo-redis")]
    assert sts["spec"]["volumeClaimTemplates"] == []
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "demo-redis-data"}} in sts["spec"]["template"][
        "spec"
    ]["volumes"]


def test_turning_persistence_off_replaces_the_statefulset_keeping_its_pods() -> None:
    kube = MemoryKube()
    cluster_ops.reconcile(kube, BODY, ClusterSpec.parse(BODY["spec"]))  # type: ignore[arg-type]
    ephemeral = ClusterSpec.parse({**BODY["spec"], "redis": {"managed": {"persistence": {"enabled": False}}}})
    with pytest.raises(RedisChanging, match="volume claims"):
        cluster_ops.reconcile(kube, BODY, ephemeral)  # type: ignore[arg-type]
    assert kube.deleted == [("StatefulSet", "demo-redis", True)]
    cluster_ops.reconcile(kube, BODY, ephemeral)  # type: ignore[arg-type]
    assert kube.objects[("StatefulSet", "demo-redis")]["spec"]["volumeClaimTemplates"] == []


def test_ha_reconcile_adds_the_sentinel_scripts() -> None:
    kube = MemoryKube()
    cluster_ops.reconcile(kube, BODY, ClusterSpec.parse({**BODY["spec"], "redis": {"managed": {"replicas": 3}}}))  # type: ignore[arg-type]
    assert ("ConfigMap", "demo-redis-boot") in kube.objects
    assert kube.objects[("Service", "demo-redis")]["spec"]["ports"][0]["name"] == "sentinel"


def test_refresh_reports_what_redis_is() -> None:
    kube = MemoryKube()
    cluster_ops.reconcile(kube, BODY, ClusterSpec.parse(BODY["spec"]))  # type: ignore[arg-type]
    status = refresh(kube, FakeClient(Stats()), BODY, {}, now=1.0)
    assert status["redis"]["mode"] == "durable" and status["redis"]["evictionPolicy"] == "noeviction"
    assert status["redis"]["epoch"] == "e1" and status["redis"]["persistence"] == "aof-everysec"
    ephemeral = {c["type"]: c for c in status["conditions"]}["RedisEphemeral"]
    assert ephemeral["status"] == "False" and "appendfsync everysec" in ephemeral["message"]


def test_workers_stuck_on_their_image_make_the_cluster_degraded_with_the_reason() -> None:
    kube = MemoryKube()
    spec = ClusterSpec.parse(BODY["spec"])
    cluster_ops.reconcile(kube, BODY, spec)  # type: ignore[arg-type]
    kube.pods = ["demo-workers-a", "demo-workers-b"]
    waiting = {"reason": "ErrImageNeverPull", "message": 'Container image "pids-worker:nope" is not present'}
    for p in kube.pods:
        kube.pod_status[p] = {"containerStatuses": [{"name": "worker", "state": {"waiting": waiting}}]}
    client = FakeClient(Stats())
    status = refresh(kube, client, BODY, {}, now=100.0)
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert status["phase"] == "Degraded" and degraded["status"] == "True" and degraded["reason"] == "ErrImageNeverPull"
    assert "2 of 2 worker pods" in degraded["message"] and "pids-worker:nope" in degraded["message"]
    kube.pod_status.clear()  # the image fixed: the next tick is healthy again
    status = refresh(kube, client, BODY, status, now=110.0)
    assert next(c for c in status["conditions"] if c["type"] == "Degraded")["status"] == "False"
