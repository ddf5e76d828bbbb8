"""Typed views of PidsCluster and PidsTask specs, with the CRD's defaults.

The API server applies the CRD defaults already; repeating them here keeps the
builders correct for bodies that skipped defaulting (tests, old objects).
tests/unit/test_operator_spec.py checks these defaults against the CRDs.

Worker settings are the exception: the CRD has no defaults for them and a spec
keeps only those it sets (`worker_settings`); the worker's own defaults
(pids.settings.WorkerSettings) apply to the rest. Images default to this
release's version (pids.__version__).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pids import __version__
from pids.settings import WorkerSettings

# Where a PidsCluster spec sets each worker setting (a WorkerSettings field name).
WORKER_SETTING_PATHS: dict[str, tuple[str, ...]] = {
    "concurrency": ("worker", "concurrency"),
    "speed": ("worker", "speed"),
    "drain_seconds": ("worker", "drainSeconds"),
    "policy": ("physics", "policy"),
    "G": ("physics", "G"),
    "distance_offset": ("physics", "distanceOffset"),
    "window": ("physics", "window"),
    "lease_seconds": ("timing", "leaseSeconds"),
    "heartbeat_seconds": ("timing", "heartbeatSeconds"),
    "allowed_modules": ("allowedModules",),
}


def _section(spec: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = spec.get(key)
    return value if isinstance(value, Mapping) else {}


@dataclass(frozen=True)
class Autoscaling:
    enabled: bool = False
    min_workers: int = 1
    max_workers: int = 10
    target_backlog_per_worker: int = 10
    scale_down_grace_seconds: int = 300

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Autoscaling:
        d = cls()
        return cls(
            enabled=bool(raw.get("enabled", d.enabled)),
            min_workers=int(raw.get("minWorkers", d.min_workers)),
            max_workers=int(raw.get("maxWorkers", d.max_workers)),
            target_backlog_per_worker=int(raw.get("targetBacklogPerWorker", d.target_backlog_per_worker)),
            scale_down_grace_seconds=int(raw.get("scaleDownGraceSeconds", d.scale_down_grace_seconds)),
        )


def worker_settings(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The worker settings the spec sets, by WorkerSettings field name (lists as tuples)."""
    found: dict[str, Any] = {}
    for name, path in WORKER_SETTING_PATHS.items():
        node: Any = spec
        for key in path:
            node = node.get(key) if isinstance(node, Mapping) else None
        if node is not None:
            found[name] = tuple(node) if isinstance(node, list) else node
    return found


@dataclass(frozen=True)
class Positions:
    from_node: bool = True
    zone: str = ""

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Positions:
        return cls(
            from_node=bool(raw.get("fromNode", True)),
            zone=str(raw.get("zone", "")),
        )


@dataclass(frozen=True)
class WorkerSpec:
    image: str = f"pids-worker:{__version__}"
    image_pull_policy: str = "IfNotPresent"
    health_port: int = 8080
    positions: Positions = field(default_factory=Positions)
    resources: Mapping[str, Any] = field(default_factory=dict)
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: list[Mapping[str, Any]] = field(default_factory=list)
    pod_annotations: Mapping[str, str] = field(default_factory=dict)
    env: list[Mapping[str, str]] = field(default_factory=list)

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> WorkerSpec:
        d = cls()
        return cls(
            image=str(raw.get("image", d.image)),
            image_pull_policy=str(raw.get("imagePullPolicy", d.image_pull_policy)),
            health_port=int(raw.get("healthPort", d.health_port)),
            positions=Positions.parse(_section(raw, "positions")),
            resources=dict(_section(raw, "resources")),
            node_selector=dict(_section(raw, "nodeSelector")),
            tolerations=list(raw.get("tolerations") or []),
            pod_annotations=dict(_section(raw, "podAnnotations")),
            env=list(raw.get("env") or []),
        )


@dataclass(frozen=True)
class RedisHA:
    """Primary + replicas + a Sentinel beside each, for managed Redis with replicas > 1."""

    ack_replicas: int = 1  # an enqueue returns once this many replicas hold it (WAIT)
    min_replicas_to_write: int = 1  # the primary refuses writes with fewer replicas connected
    down_after_milliseconds: int = 3000  # Sentinels call the primary down after this long silent

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> RedisHA:
        d = cls()
        return cls(
            ack_replicas=int(raw.get("ackReplicas", d.ack_replicas)),
            min_replicas_to_write=int(raw.get("minReplicasToWrite", d.min_replicas_to_write)),
            down_after_milliseconds=int(raw.get("downAfterMilliseconds", d.down_after_milliseconds)),
        )


@dataclass(frozen=True)
class ManagedRedis:
    image: str = f"pids-redis:{__version__}"
    image_pull_policy: str = "IfNotPresent"
    resources: Mapping[str, Any] = field(default_factory=dict)
    persistence: bool = True
    size: str = "1Gi"
    storage_class: str = ""
    appendfsync: str = "everysec"
    replicas: int = 1
    ha: RedisHA = field(default_factory=RedisHA)

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> ManagedRedis:
        d = cls()
        persistence = _section(raw, "persistence")
        return cls(
            image=str(raw.get("image", d.image)),
            image_pull_policy=str(raw.get("imagePullPolicy", d.image_pull_policy)),
            resources=dict(_section(raw, "resources")),
            persistence=bool(persistence.get("enabled", d.persistence)),
            size=str(persistence.get("size", d.size)),
            storage_class=str(persistence.get("storageClassName", "")),
            appendfsync=str(persistence.get("appendfsync", d.appendfsync)),
            replicas=int(raw.get("replicas", d.replicas)),
            ha=RedisHA.parse(_section(raw, "ha")),
        )

    @property
    def sentinel(self) -> bool:
        """Replicas watched by Sentinel: clients find the primary through the Sentinels."""
        return self.replicas > 1


@dataclass(frozen=True)
class ExternalSentinel:
    hosts: tuple[str, ...]
    master_name: str
    db: int = 0
    authenticate: bool = True

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> ExternalSentinel:
        return cls(
            hosts=tuple(str(h) for h in raw.get("hosts") or ()),
            master_name=str(raw.get("masterName", "")),
            db=int(raw.get("db", 0)),
            authenticate=bool(raw.get("authenticate", True)),
        )


@dataclass(frozen=True)
class ExternalRedis:
    url: str = ""
    sentinel: ExternalSentinel | None = None
    secret_name: str = ""
    secret_key: str = "password"

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> ExternalRedis:
        ref = _section(raw, "passwordSecretRef")
        sentinel = raw.get("sentinel")
        return cls(
            url=str(raw.get("url", "")),
            sentinel=ExternalSentinel.parse(sentinel) if isinstance(sentinel, Mapping) else None,
            secret_name=str(ref.get("name", "")),
            secret_key=str(ref.get("key", "password")),
        )


@dataclass(frozen=True)
class ClusterSpec:
    workers: int = 1
    autoscaling: Autoscaling = field(default_factory=Autoscaling)
    worker: WorkerSpec = field(default_factory=WorkerSpec)
    managed_redis: ManagedRedis | None = field(default_factory=ManagedRedis)
    external_redis: ExternalRedis | None = None
    worker_settings: Mapping[str, Any] = field(default_factory=dict)  # only what the spec sets
    allow_unsafe_modules: bool = False

    @classmethod
    def parse(cls, spec: Mapping[str, Any]) -> ClusterSpec:
        redis = spec.get("redis")
        if not isinstance(redis, Mapping):
            redis = {"managed": {}}
        external = redis.get("external")
        managed = redis.get("managed")
        return cls(
            workers=int(spec.get("workers", 1)),
            autoscaling=Autoscaling.parse(_section(spec, "autoscaling")),
            worker=WorkerSpec.parse(_section(spec, "worker")),
            managed_redis=ManagedRedis.parse(managed) if isinstance(managed, Mapping) else None,
            external_redis=ExternalRedis.parse(external) if isinstance(external, Mapping) else None,
            worker_settings=worker_settings(spec),
            allow_unsafe_modules=bool(spec.get("allowUnsafeModules", False)),
        )

    @property
    def allowed_modules(self) -> tuple[str, ...]:
        return tuple(self.worker_settings.get("allowed_modules") or WorkerSettings.allowed_modules)

    @property
    def policy(self) -> str:
        return str(self.worker_settings.get("policy", WorkerSettings.policy))

    @property
    def drain_seconds(self) -> float:
        return float(self.worker_settings.get("drain_seconds", WorkerSettings.drain_seconds))

    @property
    def managed(self) -> bool:
        return self.external_redis is None


@dataclass(frozen=True)
class TaskSpec:
    cluster: str
    function: str
    args: list[Any] = field(default_factory=list)
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    items: list[Any] | None = None
    weight: float = 1.0
    position: str = ""
    priority: int = 0
    max_attempts: int = 3
    timeout: float | None = None

    @classmethod
    def parse(cls, spec: Mapping[str, Any]) -> TaskSpec:
        timeout = spec.get("timeoutSeconds")
        items = spec.get("items")
        return cls(
            cluster=str(_section(spec, "clusterRef").get("name", "")),
            function=str(spec.get("function", "")),
            args=list(spec.get("args") or []),
            kwargs=dict(_section(spec, "kwargs")),
            items=list(items) if items is not None else None,
            weight=float(spec.get("weight", 1.0)),
            position=str(spec.get("position", "")),
            priority=int(spec.get("priority", 0)),
            max_attempts=int(spec.get("maxAttempts", 3)),
            timeout=float(timeout) if timeout is not None else None,
        )

    @property
    def is_batch(self) -> bool:
        return self.items is not None

    @property
    def module(self) -> str:
        return self.function.partition(":")[0]
