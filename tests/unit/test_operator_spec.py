"""The operator's spec dataclasses repeat the CRD defaults; they must agree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pids_operator.config import OperatorConfig
from pids_operator.spec import ClusterSpec, TaskSpec

CRDS = Path(__file__).resolve().parents[2] / "crds"


def spec_schema(plural: str) -> dict[str, Any]:
    crd = yaml.safe_load((CRDS / f"{plural}.pids.dev.yaml").read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


def default(schema: dict[str, Any], *path: str) -> Any:
    for key in path:
        schema = schema["properties"][key]
    return schema["default"]


def test_cluster_defaults_match_the_crd() -> None:
    s = spec_schema("pidsclusters")
    c = ClusterSpec.parse({})
    assert c.workers == default(s, "workers")
    assert c.autoscaling.enabled == default(s, "autoscaling", "enabled")
    assert c.autoscaling.min_workers == default(s, "autoscaling", "minWorkers")
    assert c.autoscaling.max_workers == default(s, "autoscaling", "maxWorkers")
    assert c.autoscaling.target_backlog_per_worker == default(s, "autoscaling", "targetBacklogPerWorker")
    assert c.autoscaling.scale_down_grace_seconds == default(s, "autoscaling", "scaleDownGraceSeconds")
    assert c.physics.policy == default(s, "physics", "policy")
    assert c.physics.G == default(s, "physics", "G")
    assert c.physics.distance_offset == default(s, "physics", "distanceOffset")
    assert c.physics.window == default(s, "physics", "window")
    assert c.worker.image == default(s, "worker", "image")
    assert c.worker.image_pull_policy == default(s, "worker", "imagePullPolicy")
    assert c.worker.concurrency == default(s, "worker", "concurrency")
    assert c.worker.speed == default(s, "worker", "speed")
    assert c.worker.drain_seconds == default(s, "worker", "drainSeconds")
    assert c.worker.health_port == default(s, "worker", "healthPort")
    assert c.worker.positions.from_node == default(s, "worker", "positions", "fromNode")
    assert c.managed_redis is not None and c.external_redis is None
    assert default(s, "redis") == {"managed": {}}
    assert c.managed_redis.image == default(s, "redis", "managed", "image")
    assert c.managed_redis.size == default(s, "redis", "managed", "persistence", "size")
    assert c.managed_redis.persistence is default(s, "redis", "managed", "persistence", "enabled") is True
    assert c.managed_redis.appendfsync == default(s, "redis", "managed", "persistence", "appendfsync")
    assert c.managed_redis.replicas == default(s, "redis", "managed", "replicas")
    ha = c.managed_redis.ha
    assert ha.ack_replicas == default(s, "redis", "managed", "ha", "ackReplicas")
    assert ha.min_replicas_to_write == default(s, "redis", "managed", "ha", "minReplicasToWrite")
    assert ha.down_after_milliseconds == default(s, "redis", "managed", "ha", "downAfterMilliseconds")
    assert list(c.allowed_modules) == default(s, "allowedModules")
    assert c.timing.lease_seconds == default(s, "timing", "leaseSeconds")
    assert c.timing.heartbeat_seconds == default(s, "timing", "heartbeatSeconds")


def test_task_defaults_match_the_crd() -> None:
    s = spec_schema("pidstasks")
    t = TaskSpec.parse({"clusterRef": {"name": "c"}, "function": "m:f"})
    assert t.weight == default(s, "weight")
    assert t.position == default(s, "position")
    assert t.priority == default(s, "priority")
    assert t.max_attempts == default(s, "maxAttempts")
    assert t.timeout is None and not t.is_batch and t.module == "m"


def test_external_redis_parses_secret_ref() -> None:
    c = ClusterSpec.parse({"redis": {"external": {"url": "redis://h:1/0", "passwordSecretRef": {"name": "s"}}}})
    assert c.managed_redis is None and not c.managed
    assert c.external_redis is not None and (c.external_redis.secret_name, c.external_redis.secret_key) == ("s", "password")


def test_operator_config_from_env() -> None:
    c = OperatorConfig.from_env({"POD_NAMESPACE": "pids-system", "PIDS_OPERATOR_PEERING": "pids", "PIDS_OPERATOR_METRICS_PORT": "9100"})
    assert c.namespaces == ("pids-system",) and c.peering == "pids" and c.metrics_port == 9100 and not c.clusterwide
    c = OperatorConfig.from_env({"PIDS_OPERATOR_NAMESPACES": "a, b", "PIDS_OPERATOR_CLUSTERWIDE": "true"})
    assert c.namespaces == ("a", "b") and c.clusterwide
