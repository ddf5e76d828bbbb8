"""Names, labels and owner references shared by every child object.

Child names are `<cluster>-<suffix>`; the longest suffix decides how long a
cluster name may be (validation.py checks it), so every child stays a valid
DNS label (63 characters).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

GROUP = "pids.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CLUSTER_KIND = "PidsCluster"
TASK_KIND = "PidsTask"
CLUSTER_PLURAL = "pidsclusters"
TASK_PLURAL = "pidstasks"

PART_OF = "pids"
MANAGED_BY = "pids-operator"
CLUSTER_LABEL = f"{GROUP}/cluster"
COMPONENT_LABEL = "app.kubernetes.io/component"
WORKER = "worker"
REDIS = "redis"

SUFFIXES = {
    "workers": "workers",
    "redis": "redis",
    "redis-secret": "redis-auth",
    "redis-data": "redis-data",  # the PVC of the Deployment-based Redis of older operators
    "redis-pods": "redis-pods",
    "redis-scripts": "redis-boot",
    "config": "config",
    "service-account": "worker",
    "app-secret": "app",
}
DNS_LABEL_MAX = 63
# A Deployment's pods are named <deployment>-<10 char hash>-<5 chars>.
POD_NAME_OVERHEAD = 17
MAX_CLUSTER_NAME = DNS_LABEL_MAX - POD_NAME_OVERHEAD - 1 - max(len(s) for s in SUFFIXES.values())

Body = Mapping[str, Any]
Manifest = dict[str, Any]


def child_name(cluster: str, what: str) -> str:
    """Name of one child object of a cluster, e.g. child_name("demo", "redis") == "demo-redis"."""
    return f"{cluster}-{SUFFIXES[what]}"


def selector_labels(cluster: str, component: str) -> dict[str, str]:
    """Labels that select a component's pods; never change them on a live Deployment."""
    return {
        "app.kubernetes.io/name": f"pids-{component}",
        "app.kubernetes.io/instance": cluster,
        CLUSTER_LABEL: cluster,
    }


def labels(cluster: str, component: str) -> dict[str, str]:
    return {
        **selector_labels(cluster, component),
        COMPONENT_LABEL: component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def selector_string(selector: Mapping[str, str]) -> str:
    """A label selector as the scale subresource wants it: "k=v,k=v"."""
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


def owner_reference(owner: Body) -> dict[str, Any]:
    """Owner reference to a PidsCluster, so Kubernetes deletes children with it."""
    return {
        "apiVersion": owner.get("apiVersion", API_VERSION),
        "kind": owner.get("kind", CLUSTER_KIND),
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def object_meta(owner: Body, what: str, component: str, **extra: Any) -> dict[str, Any]:
    """metadata of a child: name, namespace, labels, owner reference."""
    cluster = owner["metadata"]["name"]
    meta: dict[str, Any] = {
        "name": child_name(cluster, what),
        "namespace": owner["metadata"]["namespace"],
        "labels": labels(cluster, component),
        "ownerReferences": [owner_reference(owner)],
    }
    meta.update(extra)
    return meta
