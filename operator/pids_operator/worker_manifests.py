"""Pure builders of a cluster's workers: ConfigMap, ServiceAccount, Deployment, Service.

Worker settings travel as PIDS_* variables in the ConfigMap: those the spec sets,
and the few that Kubernetes needs (KUBERNETES_SETTINGS); the worker's own defaults
(pids.settings) apply to the rest, and it exports what is in effect (`pids status`,
the pids_worker_settings_info metric). The Redis password comes from a Secret, the
worker id and node from the downward API.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from pids.connection import SentinelAddress, sentinel_host_port
from pids.settings import env_var

from . import meta
from .meta import Body, Manifest
from .podsecurity import container_security_context, pod_security_context, tmp_volume
from .redis_manifests import PASSWORD_KEY, redis_url
from .spec import ClusterSpec, ManagedRedis

HEALTH_PORT_NAME = "health"
CONFIG_HASH = f"{meta.GROUP}/config-hash"
DEFAULT_RESOURCES = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}
# Time between SIGTERM's drain deadline and SIGKILL, for releasing and exiting.
TERMINATION_MARGIN_SECONDS = 15
# A worker whose liveness probe fails has a stuck claim loop: it cannot drain, so the kubelet
# need not wait the pod's drain-sized grace period before killing it.
LIVENESS_KILL_GRACE_SECONDS = 5


def worker_redis_url(owner: Body, spec: ClusterSpec) -> str:
    """The PIDS_REDIS_URL of workers and the operator: redis:// or redis+sentinel://."""
    external = spec.external_redis
    if external is None:
        return redis_url(owner, spec.managed_redis or ManagedRedis())
    if external.sentinel is not None:
        s = external.sentinel
        return SentinelAddress(tuple(sentinel_host_port(h) for h in s.hosts), s.master_name, s.db, s.authenticate).url
    return external.url


def ack_replicas(spec: ClusterSpec) -> int:
    """Replicas an enqueue waits for (WAIT): set for a managed Redis with Sentinel."""
    managed = spec.managed_redis
    return managed.ha.ack_replicas if managed is not None and managed.sentinel else 0


def password_secret(owner: Body, spec: ClusterSpec) -> tuple[str, str]:
    """(Secret name, key) holding the Redis password."""
    if spec.external_redis:
        return spec.external_redis.secret_name, spec.external_redis.secret_key
    return meta.child_name(owner["metadata"]["name"], "redis-secret"), PASSWORD_KEY


# The worker settings that differ on Kubernetes, and why (operator/README.md lists them).
KUBERNETES_SETTINGS = {
    "health_host": "0.0.0.0",  # the kubelet probes from outside the pod's loopback
    # drained for a scale-down, a worker stays idle until its pod is removed: a container
    # that exits is restarted by the kubelet, and the fresh process would claim again
    "exit_when_drained": False,
}


def env_value(value: Any) -> str:
    """A setting as the worker parses it back (pids.settings.WorkerSettings.from_env)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def settings_env(spec: ClusterSpec) -> dict[str, str]:
    """PIDS_* of what Kubernetes needs and of the settings the spec sets. Nothing else: the
    worker's defaults are the only ones."""
    settings = {"health_port": spec.worker.health_port, **KUBERNETES_SETTINGS, **spec.worker_settings}
    return {env_var(name): env_value(value) for name, value in settings.items()}


def worker_env(owner: Body, spec: ClusterSpec) -> dict[str, str]:
    """The PIDS_* environment of the workers: their cluster and Redis (with Sentinel, how many
    replicas must acknowledge a completion, and an enqueue of a Client beside them), then
    settings_env."""
    where: dict[str, Any] = {"cluster": owner["metadata"]["name"], "redis_url": worker_redis_url(owner, spec)}
    acks = ack_replicas(spec)
    if acks:
        where["ack_replicas"] = acks
    return {**{env_var(name): env_value(value) for name, value in where.items()}, **settings_env(spec)}


def build_configmap(owner: Body, spec: ClusterSpec) -> Manifest:
    """The workers' non-secret environment (worker_env), and HOME on the writable /tmp."""
    data = {**worker_env(owner, spec), "HOME": "/tmp"}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta.object_meta(owner, "config", meta.WORKER),
        "data": data,
    }


def build_service_account(owner: Body) -> Manifest:
    """Workers talk only to Redis: no API token mounted."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": meta.object_meta(owner, "service-account", meta.WORKER),
        "automountServiceAccountToken": False,
    }


ZONE_LABEL = "topology.kubernetes.io/zone"


def position_value(spec: ClusterSpec) -> str:
    """PIDS_POSITION, "zone/node", by Kubernetes $(VAR) expansion: the fixed zone of the spec, else
    the node's zone label that Kubernetes copies onto the pod (KEP-4742: beta in 1.35, a feature
    gate before; empty when absent, and the worker drops empty parts), then the node name."""
    parts = [spec.worker.positions.zone or "$(PIDS_ZONE)"]
    if spec.worker.positions.from_node:
        parts.append("$(PIDS_NODE)")
    return "/".join(parts)


def config_hash(configmap: Manifest) -> str:
    """Changes whenever the worker configuration does, so pods roll on config changes."""
    return hashlib.sha256(json.dumps(configmap["data"], sort_keys=True).encode()).hexdigest()[:16]


def _env(owner: Body, spec: ClusterSpec) -> list[dict[str, Any]]:
    secret_name, secret_key = password_secret(owner, spec)
    env: list[dict[str, Any]] = [
        {"name": "PIDS_WORKER_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "PIDS_NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "PIDS_ZONE", "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{ZONE_LABEL}']"}}},
        {"name": "PIDS_POSITION", "value": position_value(spec)},
    ]
    if secret_name:
        env.append(
            {"name": "PIDS_REDIS_PASSWORD", "valueFrom": {"secretKeyRef": {"name": secret_name, "key": secret_key}}}
        )
    env += [{"name": e["name"], "value": e.get("value", "")} for e in spec.worker.env]
    return env


def _probes(port: str) -> dict[str, Any]:
    return {
        "startupProbe": {
            "httpGet": {"path": "/healthz", "port": port},
            "periodSeconds": 2,
            "failureThreshold": 30,
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": port},
            "periodSeconds": 10,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
            "terminationGracePeriodSeconds": LIVENESS_KILL_GRACE_SECONDS,
        },
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": port},
            "periodSeconds": 5,
            "timeoutSeconds": 2,
            "failureThreshold": 2,
        },
    }


def build_worker_deployment(owner: Body, spec: ClusterSpec, replicas: int) -> Manifest:
    """The workers; `replicas` comes from the scaling step, never straight from the spec."""
    cluster = owner["metadata"]["name"]
    w = spec.worker
    tmp, tmp_mount = tmp_volume()
    selector = meta.selector_labels(cluster, meta.WORKER)
    container = {
        "name": "worker",
        "image": w.image,
        "imagePullPolicy": w.image_pull_policy,
        "envFrom": [{"configMapRef": {"name": meta.child_name(cluster, "config")}}],
        "env": _env(owner, spec),
        "ports": [{"name": HEALTH_PORT_NAME, "containerPort": w.health_port, "protocol": "TCP"}],
        **_probes(HEALTH_PORT_NAME),
        "resources": dict(w.resources) or DEFAULT_RESOURCES,
        # a worker that fails at start says why on stderr: the status shows it (degradation.py)
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": container_security_context(),
        "volumeMounts": [tmp_mount],
    }
    pod_spec: dict[str, Any] = {
        "serviceAccountName": meta.child_name(cluster, "service-account"),
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": math.ceil(spec.drain_seconds) + TERMINATION_MARGIN_SECONDS,
        "securityContext": pod_security_context(),
        "containers": [container],
        "volumes": [tmp],
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": selector},
            }
        ],
    }
    if w.node_selector:
        pod_spec["nodeSelector"] = dict(w.node_selector)
    if w.tolerations:
        pod_spec["tolerations"] = [dict(t) for t in w.tolerations]
    annotations = {**w.pod_annotations, CONFIG_HASH: config_hash(build_configmap(owner, spec))}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta.object_meta(owner, "workers", meta.WORKER),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}},
            "template": {
                "metadata": {"labels": meta.labels(cluster, meta.WORKER), "annotations": annotations},
                "spec": pod_spec,
            },
        },
    }


def build_worker_service(owner: Body, spec: ClusterSpec) -> Manifest:
    """Headless Service over the workers, for /metrics scraping (ServiceMonitor)."""
    cluster = owner["metadata"]["name"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta.object_meta(owner, "workers", meta.WORKER),
        "spec": {
            "clusterIP": "None",
            "selector": meta.selector_labels(cluster, meta.WORKER),
            "ports": [
                {"name": "metrics", "port": spec.worker.health_port, "targetPort": HEALTH_PORT_NAME, "protocol": "TCP"}
            ],
        },
    }
