"""What a reconcile does for a managed Redis against the API, and what the status timer reads
from any Redis.

reconcile_redis(): the Secret, Services, scripts and StatefulSet; replaces the Deployment of
older operators, and a StatefulSet whose unchangeable fields (volumes, service) differ.
observe_redis(): epoch, configuration report and primary, or why Redis could not be read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import meta
from .kube import Kube
from .redis_manifests import (
    build_redis_pods_service,
    build_redis_scripts,
    build_redis_secret,
    build_redis_service,
    build_redis_statefulset,
    generate_password,
)
from .redis_status import RedisObservation, describe_error
from .spec import ManagedRedis


class RedisChanging(Exception):
    """An old Redis object is on its way out; reconcile again shortly."""


def owned_by(obj: Mapping[str, Any], owner: Mapping[str, Any]) -> bool:
    uid = owner["metadata"]["uid"]
    return any(r.get("uid") == uid for r in obj.get("metadata", {}).get("ownerReferences") or [])


def _claims_signature(statefulset: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """What of the volume claim templates the API server never lets change (defaults aside)."""
    out = []
    for t in statefulset.get("spec", {}).get("volumeClaimTemplates") or []:
        spec = t.get("spec") or {}
        storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
        out.append((t["metadata"]["name"], str(storage), spec.get("storageClassName") or ""))
    return out


def recreate_reason(existing: Mapping[str, Any], desired: Mapping[str, Any]) -> str | None:
    """Why the existing StatefulSet cannot be updated into the desired one, or None."""
    old, new = existing.get("spec") or {}, desired["spec"]
    if (
        old.get("serviceName") != new["serviceName"]
        or old.get("podManagementPolicy", "OrderedReady") != new["podManagementPolicy"]
    ):
        return "its Service or pod management changed"
    ours = _claims_signature(desired)
    theirs = _claims_signature(existing)
    # a storage class left empty is filled in by the API server with the default class
    if [(n, s) for n, s, _ in ours] != [(n, s) for n, s, _ in theirs] or any(
        c and c != t for (_, _, c), (_, _, t) in zip(ours, theirs)
    ):
        return "its volume claims changed (persistence, size or storage class)"
    return None


def reconcile_redis(kube: Kube, body: Mapping[str, Any], redis: ManagedRedis) -> None:
    """Apply the managed Redis; RedisChanging while an older Redis object is replaced."""
    ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
    if not kube.exists("Secret", ns, meta.child_name(name, "redis-secret")):
        kube.create_if_absent(build_redis_secret(body, generate_password()))
    _retire_deployment(kube, body)
    legacy = meta.child_name(name, "redis-data")
    legacy_claim = (
        legacy
        if redis.persistence and redis.replicas == 1 and kube.exists("PersistentVolumeClaim", ns, legacy)
        else None
    )
    kube.apply(build_redis_service(body, redis))
    kube.apply(build_redis_pods_service(body))
    if redis.sentinel:
        kube.apply(build_redis_scripts(body))
    desired = build_redis_statefulset(body, redis, legacy_claim)
    existing = kube.statefulset(ns, desired["metadata"]["name"])
    if existing is not None and existing["metadata"].get("deletionTimestamp"):
        raise RedisChanging("waiting for the replaced Redis StatefulSet to be deleted")
    if existing is not None and (reason := recreate_reason(existing, desired)):
        # its pods stay (orphaned) and the new StatefulSet adopts and rolls them; PVCs stay
        kube.delete("StatefulSet", ns, desired["metadata"]["name"], orphan=True)
        raise RedisChanging(f"replacing the Redis StatefulSet: {reason}")
    kube.apply(desired)


def _retire_deployment(kube: Kube, body: Mapping[str, Any]) -> None:
    """Delete the Redis Deployment an older operator made for this cluster, and wait until its
    pod is gone (it may still be writing its append-only file)."""
    ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
    old = kube.deployment(ns, meta.child_name(name, "redis"))
    if old is not None and owned_by(old, body):
        kube.delete("Deployment", ns, old["metadata"]["name"])
        raise RedisChanging("deleted the Deployment-based Redis of an older operator; a StatefulSet replaces it")
    leftovers = [
        p
        for p in kube.redis_pods(ns, name)
        if any(r.get("kind") == "ReplicaSet" for r in p["metadata"].get("ownerReferences") or [])
    ]
    if leftovers:
        raise RedisChanging(f"waiting for the old Redis pod {leftovers[0]['metadata']['name']} to stop")


def observe_redis(client: Any) -> RedisObservation:
    """Epoch, configuration and primary of the cluster's Redis; unreachable with the reason."""
    from pids.redis_info import inspect  # the data plane's; imported late like the Client

    try:
        report = inspect(client.redis)
        epoch = str(client.epoch())
    except Exception as e:
        return RedisObservation(reachable=False, error=describe_error(e))
    pool = client.redis.connection_pool
    primary = ""
    if hasattr(pool, "get_master_address"):  # through Sentinel
        host, port = pool.get_master_address()
        primary = f"{host}:{port}"
    return RedisObservation(reachable=True, epoch=epoch, report=report, primary=primary)
