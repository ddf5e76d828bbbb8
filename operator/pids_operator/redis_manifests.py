"""Pure builders of a managed Redis: password Secret, StatefulSet, Services, scripts ConfigMap.

One StatefulSet whatever the shape: one pod (replicas 1), or a primary and replicas with a
Sentinel container beside each Redis (replicas >= 3). Data lives on a PersistentVolumeClaim
per pod unless persistence is off. Each builder takes the PidsCluster body (for names and the
owner reference) and the parsed spec, and returns a plain manifest dict for handlers to apply.
"""

from __future__ import annotations

import secrets
from importlib import resources as package_files
from typing import Any

from pids.connection import SentinelAddress

from . import meta
from .meta import Body, Manifest
from .podsecurity import container_security_context, pod_security_context, tmp_volume
from .redis_config import (
    DATA_DIR,
    PORT,
    SENTINEL_FAILOVER_TIMEOUT_MS,
    SENTINEL_PORT,
    SENTINEL_PRIMARY,
    SENTINEL_RESOURCES,
    redis_args,
    resources,
    sentinel_quorum,
)
from .spec import ManagedRedis

PASSWORD_KEY = "password"
PASSWORD_ENV = "REDISCLI_AUTH"  # redis-cli (the probes) reads it; redis-server gets it by $(VAR)
SCRIPTS = ("common.sh", "redis-ha.sh", "sentinel.sh", "switchover.sh")
SCRIPTS_DIR = "/scripts"
DATA_VOLUME = "data"
# A primary's switchover (up to ~15 s), then Redis on SIGTERM fsyncs its AOF and waits up to
# 10 s (shutdown-timeout) for replicas to catch up
TERMINATION_GRACE_SECONDS = 40
# Liveness passes while Redis answers at all: loading its data set, a replica cut off from its
# primary, a long script. Only a Redis that does not answer is restarted.
LIVE_REPLIES = "PONG|LOADING*|MASTERDOWN*|BUSY*"


def generate_password() -> str:
    return secrets.token_urlsafe(32)


def redis_host(owner: Body) -> str:
    """Cluster-local DNS name of the managed Redis Service."""
    m = owner["metadata"]
    return f"{meta.child_name(m['name'], 'redis')}.{m['namespace']}.svc"


def pods_domain(owner: Body) -> str:
    """DNS domain of the Redis pods (their headless Service): <pod>.<this>."""
    m = owner["metadata"]
    return f"{meta.child_name(m['name'], 'redis-pods')}.{m['namespace']}.svc"


def pod_host(owner: Body, ordinal: int) -> str:
    return f"{meta.child_name(owner['metadata']['name'], 'redis')}-{ordinal}.{pods_domain(owner)}"


def redis_url(owner: Body, redis: ManagedRedis) -> str:
    """Where clients find the managed Redis, without the password (that travels in a Secret):
    the Service, or with Sentinel every pod's Sentinel."""
    if redis.sentinel:
        sentinels = tuple((pod_host(owner, i), SENTINEL_PORT) for i in range(redis.replicas))
        return SentinelAddress(sentinels, SENTINEL_PRIMARY).url
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


def build_redis_scripts(owner: Body) -> Manifest:
    """The start scripts of Redis with Sentinel (package data, shown as they run)."""
    folder = package_files.files("pids_operator") / "scripts"
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta.object_meta(owner, "redis-scripts", meta.REDIS),
        "data": {name: (folder / name).read_text() for name in SCRIPTS},
    }


def _redis_cli_probe(port: int, replies: str, period: int, timeout: int, failures: int) -> dict[str, Any]:
    check = f'case "$(redis-cli --no-auth-warning -p {port} ping)" in {replies}) exit 0;; *) exit 1;; esac'
    return {
        "exec": {"command": ["sh", "-c", check]},
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failures,
    }


def _password_env(cluster: str) -> dict[str, Any]:
    return {
        "name": PASSWORD_ENV,
        "valueFrom": {"secretKeyRef": {"name": meta.child_name(cluster, "redis-secret"), "key": PASSWORD_KEY}},
    }


def _topology_env(owner: Body, redis: ManagedRedis) -> list[dict[str, Any]]:
    """What the Sentinel scripts need to find their peers (common.sh)."""
    return [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "PIDS_REDIS_SET", "value": meta.child_name(owner["metadata"]["name"], "redis")},
        {"name": "PIDS_REDIS_PODS", "value": pods_domain(owner)},
        {"name": "PIDS_REDIS_REPLICAS", "value": str(redis.replicas)},
        {"name": "PIDS_SENTINEL_PRIMARY", "value": SENTINEL_PRIMARY},
    ]


def _mounts(redis: ManagedRedis, tmp_mount: dict[str, Any]) -> list[dict[str, Any]]:
    mounts = [{"name": DATA_VOLUME, "mountPath": DATA_DIR}, tmp_mount]
    if redis.sentinel:
        mounts.append({"name": "scripts", "mountPath": SCRIPTS_DIR, "readOnly": True})
    return mounts


def _redis_container(owner: Body, redis: ManagedRedis, tmp_mount: dict[str, Any]) -> dict[str, Any]:
    cluster = owner["metadata"]["name"]
    env = [_password_env(cluster)]
    command = ["redis-server"]  # explicit, whatever the image's ENTRYPOINT
    extra: dict[str, Any] = {}
    if redis.sentinel:
        env += _topology_env(owner, redis)
        command = ["sh", f"{SCRIPTS_DIR}/redis-ha.sh"]
        # a primary being deleted hands over to a replica first (switchover.sh)
        extra["lifecycle"] = {"preStop": {"exec": {"command": ["sh", f"{SCRIPTS_DIR}/switchover.sh"]}}}
    return {
        "name": "redis",
        "image": redis.image,
        "imagePullPolicy": redis.image_pull_policy,
        "command": command,
        "args": redis_args(redis),
        "env": env,
        "ports": [{"name": "redis", "containerPort": PORT, "protocol": "TCP"}],
        "startupProbe": _redis_cli_probe(PORT, LIVE_REPLIES, period=2, timeout=5, failures=30),
        "livenessProbe": _redis_cli_probe(PORT, LIVE_REPLIES, period=10, timeout=5, failures=6),
        "readinessProbe": _redis_cli_probe(PORT, "PONG", period=2, timeout=2, failures=1),
        "resources": resources(redis),
        "securityContext": container_security_context(),
        "volumeMounts": _mounts(redis, tmp_mount),
        **extra,
    }


def _sentinel_container(owner: Body, redis: ManagedRedis, tmp_mount: dict[str, Any]) -> dict[str, Any]:
    cluster = owner["metadata"]["name"]
    return {
        "name": "sentinel",
        "image": redis.image,
        "imagePullPolicy": redis.image_pull_policy,
        "command": ["sh", f"{SCRIPTS_DIR}/sentinel.sh"],
        "env": [
            _password_env(cluster),
            *_topology_env(owner, redis),
            {"name": "PIDS_SENTINEL_QUORUM", "value": str(sentinel_quorum(redis))},
            {"name": "PIDS_SENTINEL_DOWN_AFTER_MS", "value": str(redis.ha.down_after_milliseconds)},
            {"name": "PIDS_SENTINEL_FAILOVER_TIMEOUT_MS", "value": str(SENTINEL_FAILOVER_TIMEOUT_MS)},
        ],
        "ports": [{"name": "sentinel", "containerPort": SENTINEL_PORT, "protocol": "TCP"}],
        "livenessProbe": {
            **_redis_cli_probe(SENTINEL_PORT, "PONG", period=10, timeout=5, failures=6),
            "initialDelaySeconds": 30,
        },
        "readinessProbe": _redis_cli_probe(SENTINEL_PORT, "PONG", period=5, timeout=2, failures=1),
        "resources": SENTINEL_RESOURCES,
        "securityContext": container_security_context(),
        "volumeMounts": _mounts(redis, tmp_mount),
    }


def volume_claim_templates(redis: ManagedRedis, legacy_claim: str | None = None) -> list[dict[str, Any]]:
    """One PVC per pod (data-<statefulset>-<ordinal>); none when ephemeral or on a legacy claim."""
    if not redis.persistence or legacy_claim:
        return []
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": redis.size}}}
    if redis.storage_class:
        spec["storageClassName"] = redis.storage_class
    return [{"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": DATA_VOLUME}, "spec": spec}]


def build_redis_statefulset(owner: Body, redis: ManagedRedis, legacy_claim: str | None = None) -> Manifest:
    """The Redis pods. `legacy_claim`: the PVC of the Deployment-based Redis of older operators,
    mounted by a single persistent pod so its data carries over."""
    cluster = owner["metadata"]["name"]
    tmp, tmp_mount = tmp_volume("64Mi")
    volumes: list[dict[str, Any]] = [tmp]
    if not redis.persistence:
        volumes.append({"name": DATA_VOLUME, "emptyDir": {}})
    elif legacy_claim:
        volumes.append({"name": DATA_VOLUME, "persistentVolumeClaim": {"claimName": legacy_claim}})
    containers = [_redis_container(owner, redis, tmp_mount)]
    if redis.sentinel:
        containers.append(_sentinel_container(owner, redis, tmp_mount))
        volumes.append(
            {"name": "scripts", "configMap": {"name": meta.child_name(cluster, "redis-scripts"), "defaultMode": 0o555}}
        )
    selector = meta.selector_labels(cluster, meta.REDIS)
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
        "securityContext": pod_security_context(),
        "containers": containers,
        "volumes": volumes,
    }
    if redis.sentinel:  # spread the copies over nodes where there are several
        pod_spec["affinity"] = {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "topologyKey": "kubernetes.io/hostname",
                            "labelSelector": {"matchLabels": selector},
                        },
                    }
                ]
            }
        }
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": meta.object_meta(owner, "redis", meta.REDIS),
        "spec": {
            "replicas": redis.replicas,
            "serviceName": meta.child_name(cluster, "redis-pods"),
            "podManagementPolicy": "Parallel",  # the Sentinels of all pods start together
            "updateStrategy": {"type": "RollingUpdate"},
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Retain"},
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": meta.labels(cluster, meta.REDIS)}, "spec": pod_spec},
            "volumeClaimTemplates": volume_claim_templates(redis, legacy_claim),
        },
    }


def build_redis_service(owner: Body, redis: ManagedRedis) -> Manifest:
    """The address clients use: Redis itself, or with Sentinel any pod's Sentinel."""
    cluster = owner["metadata"]["name"]
    port = (
        {"name": "sentinel", "port": SENTINEL_PORT, "targetPort": "sentinel", "protocol": "TCP"}
        if redis.sentinel
        else {"name": "redis", "port": PORT, "targetPort": "redis", "protocol": "TCP"}
    )
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta.object_meta(owner, "redis", meta.REDIS),
        "spec": {"type": "ClusterIP", "selector": meta.selector_labels(cluster, meta.REDIS), "ports": [port]},
    }


def build_redis_pods_service(owner: Body) -> Manifest:
    """Headless: a DNS name per Redis pod, from its start (replication and Sentinels need it early)."""
    cluster = owner["metadata"]["name"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta.object_meta(owner, "redis-pods", meta.REDIS),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": meta.selector_labels(cluster, meta.REDIS),
            "ports": [
                {"name": "redis", "port": PORT, "targetPort": "redis", "protocol": "TCP"},
                {"name": "sentinel", "port": SENTINEL_PORT, "targetPort": SENTINEL_PORT, "protocol": "TCP"},
            ],
        },
    }
