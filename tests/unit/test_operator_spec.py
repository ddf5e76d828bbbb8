"""The operator's spec dataclasses repeat the CRD defaults; they must agree. Worker settings
have no CRD default: the worker's own (pids.settings.WorkerSettings) are the only ones."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from pids import __version__
from pids.settings import WorkerSettings
from pids_operator.config import OperatorConfig
from pids_operator.spec import (
    WORKER_SETTING_PATHS,
    ClusterSpec,
    TaskSpec,
    worker_settings,
)

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
    assert c.worker.image_pull_policy == default(s, "worker", "imagePullPolicy")
    assert c.worker.health_port == default(s, "worker", "healthPort")
    assert c.worker.positions.from_node == default(s, "worker", "positions", "fromNode")
    assert c.managed_redis is not None and c.external_redis is None
    assert default(s, "redis") == {"managed": {}}
    assert c.managed_redis.size == default(s, "redis", "managed", "persistence", "size")
    assert c.managed_redis.persistence is default(s, "redis", "managed", "persistence", "enabled") is True
    assert c.managed_redis.appendfsync == default(s, "redis", "managed", "persistence", "appendfsync")
    assert c.managed_redis.replicas == default(s, "redis", "managed", "replicas")
    ha = c.managed_redis.ha
    assert ha.ack_replicas == default(s, "redis", "managed", "ha", "ackReplicas")
    assert ha.min_replicas_to_write == default(s, "redis", "managed", "ha", "minReplicasToWrite")
    assert ha.down_after_milliseconds == default(s, "redis", "managed", "ha", "downAfterMilliseconds")


def test_images_default_to_this_release() -> None:
    s = spec_schema("pidsclusters")
    c = ClusterSpec.parse({})
    assert (
        c.worker.image == f"pids-worker:{__version__}"
        and "default" not in s["properties"]["worker"]["properties"]["image"]
    )
    assert c.managed_redis is not None and c.managed_redis.image == f"pids-redis:{__version__}"


@pytest.mark.parametrize("name", sorted(WORKER_SETTING_PATHS))
def test_worker_settings_have_no_crd_default_so_the_worker_decides(name: str) -> None:
    node = spec_schema("pidsclusters")
    for key in WORKER_SETTING_PATHS[name]:
        node = node["properties"][key]
    assert "default" not in node, (
        f"spec.{'.'.join(WORKER_SETTING_PATHS[name])} has a CRD default; the worker's is {getattr(WorkerSettings, name)!r}"
    )
    assert name in {f.name for f in dataclasses.fields(WorkerSettings)}


def test_a_spec_keeps_only_the_worker_settings_it_sets() -> None:
    assert ClusterSpec.parse({}).worker_settings == {}
    assert worker_settings({"physics": {"G": 0.5}, "allowedModules": ["a", "b"], "worker": {"image": "x"}}) == {
        "G": 0.5,
        "allowed_modules": ("a", "b"),
    }
    c = ClusterSpec.parse({})
    assert (c.allowed_modules, c.policy, c.drain_seconds) == (
        WorkerSettings.allowed_modules,
        WorkerSettings.policy,
        WorkerSettings.drain_seconds,
    )


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
    assert c.external_redis is not None and (c.external_redis.secret_name, c.external_redis.secret_key) == (
        "s",
        "password",
    )


def test_operator_config_from_env() -> None:
    c = OperatorConfig.from_env(
        {"POD_NAMESPACE": "pids-system", "PIDS_OPERATOR_PEERING": "pids", "PIDS_OPERATOR_METRICS_PORT": "9100"}
    )
    assert c.namespaces == ("pids-system",) and c.peering == "pids" and c.metrics_port == 9100 and not c.clusterwide
    c = OperatorConfig.from_env({"PIDS_OPERATOR_NAMESPACES": "a, b", "PIDS_OPERATOR_CLUSTERWIDE": "true"})
    assert c.namespaces == ("a", "b") and c.clusterwide
