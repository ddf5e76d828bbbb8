"""Pure builders of a managed Redis: password Secret, Deployment, Service, PVC.

Each takes the PidsCluster body (for names and the owner reference) and the
parsed spec, and returns a plain manifest dict for handlers to apply.
"""

from __future__ import annotations

import secrets
from typing import Any

from . import meta
from .meta import Body, Manifest
from .podsecurity import container_security_context, pod_security_context, tmp_volume
from .spec import ManagedRedis

PORT = 6379
PASSWORD_KEY = "password"
DEFAULT_RESOURCES = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}}


def generate_password() -> str:
    return secrets.token_urlsafe(32)


def redis_host(owner: Body) -> str:
    """Cluster-local DNS name of the managed Redis Service."""
    m = owner["metadata"]
    return f"{meta.child_name(m['name'], 'redis')}.{m['namespace']}.svc"


def redis_url(owner: Body) -> str:
    """URL of the managed Redis, without the password (that travels in a Secret)."""
    return f"redis://{redis_host(owner)}:{PORT}/0"


def build_redis_secret(owner: Body, password: str) -> Manifest:
    """The generated password; created once and never overwritten."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta.object_meta(owner, "redis-secret", meta.REDIS),
        "type": "Opaque",
        "stringData": {PASSWORD_KEY: password},
    }


def build_redis_pvc(owner: Body, redis: ManagedRedis) -> Manifest:
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": redis.size}},
    }
    if redis.storage_class:
        spec["storageClassName"] = redis.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": meta.object_meta(owner, "redis-data", meta.REDIS),
        "spec": spec,
    }


def build_redis_deployment(owner: Body, redis: ManagedRedis) -> Manifest:
    """One Redis pod; appendonly when persistent, a pure cache otherwise."""
    cluster = owner["metadata"]["name"]
    persistent = redis.persistence
    args = ["--port", str(PORT), "--bind", "0.0.0.0", "--requirepass", "$(REDIS_PASSWORD)", "--dir", "/data", "--protected-mode", "no"]
    args += ["--appendonly", "yes"] if persistent else ["--appendonly", "no", "--save", ""]
    data_volume: dict[str, Any] = (
        {"name": "data", "persistentVolumeClaim": {"claimName": meta.child_name(cluster, "redis-data")}}
        if persistent
        else {"name": "data", "emptyDir": {}}
    )
    tmp, tmp_mount = tmp_volume("64Mi")
    probe = {"tcpSocket": {"port": "redis"}, "periodSeconds": 10, "timeoutSeconds": 2, "failureThreshold": 3}
    container = {
        "name": "redis",
        "image": redis.image,
        "imagePullPolicy": redis.image_pull_policy,
        "command": ["redis-server"],  # explicit, whatever the image's ENTRYPOINT
        "args": args,
        "env": [
            {
                "name": "REDIS_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": meta.child_name(cluster, "redis-secret"), "key": PASSWORD_KEY}},
            }
        ],
        "ports": [{"name": "redis", "containerPort": PORT, "protocol": "TCP"}],
        "livenessProbe": {**probe, "initialDelaySeconds": 5},
        "readinessProbe": {**probe, "periodSeconds": 5},
        "resources": dict(redis.resources) or DEFAULT_RESOURCES,
        "securityContext": container_security_context(),
        "volumeMounts": [{"name": "data", "mountPath": "/data"}, tmp_mount],
    }
    selector = meta.selector_labels(cluster, meta.REDIS)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta.object_meta(owner, "redis", meta.REDIS),
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": meta.labels(cluster, meta.REDIS)},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": pod_security_context(),
                    "containers": [container],
                    "volumes": [data_volume, tmp],
                },
            },
        },
    }


def build_redis_service(owner: Body) -> Manifest:
    cluster = owner["metadata"]["name"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta.object_meta(owner, "redis", meta.REDIS),
        "spec": {
            "type": "ClusterIP",
            "selector": meta.selector_labels(cluster, meta.REDIS),
            "ports": [{"name": "redis", "port": PORT, "targetPort": "redis", "protocol": "TCP"}],
        },
    }
