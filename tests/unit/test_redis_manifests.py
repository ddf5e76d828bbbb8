"""The managed Redis builders: durable by default, sized below its memory limit, probes that
understand LOADING, Sentinel beside each Redis with replicas; and when a StatefulSet must be replaced."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from pids.connection import parse_sentinel_url
from pids_operator.redis_config import maxmemory_bytes, quantity_bytes, redis_args, sentinel_quorum
from pids_operator.redis_manifests import (
    build_redis_pods_service,
    build_redis_scripts,
    build_redis_service,
    build_redis_statefulset,
    redis_url,
)
from pids_operator.redis_ops import recreate_reason
from pids_operator.spec import ClusterSpec, ManagedRedis
from pids_operator.worker_manifests import build_configmap

OWNER = {
    "apiVersion": "pids.dev/v1alpha1",
    "kind": "PidsCluster",
    "metadata": {"name": "demo", "namespace": "ns1", "uid": "1234-uid"},
}
HA = ManagedRedis(replicas=3)


def managed(**raw: Any) -> ManagedRedis:
    r = ClusterSpec.parse({"redis": {"managed": raw}}).managed_redis
    assert r is not None
    return r


def containers(sts: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in sts["spec"]["template"]["spec"]["containers"]}


def arg(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_default_redis_is_a_statefulset_with_a_volume_claim_per_pod() -> None:
    sts = build_redis_statefulset(OWNER, managed())
    spec = sts["spec"]
    assert sts["kind"] == "StatefulSet" and spec["replicas"] == 1
    assert spec["serviceName"] == "demo-redis-pods"
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"] == {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Delete", "whenScaled": "Retain"}
    assert {"name": "data", "mountPath": "/data"} in containers(sts)["redis"]["volumeMounts"]
    assert not any(v["name"] == "data" for v in spec["template"]["spec"]["volumes"])


def test_default_redis_appends_every_write_fsyncs_every_second_and_never_evicts() -> None:
    args = redis_args(managed())
    assert arg(args, "--appendonly") == "yes" and arg(args, "--appendfsync") == "everysec"
    assert arg(args, "--maxmemory-policy") == "noeviction"
    assert arg(args, "--dir") == "/data"


def test_appendfsync_always_and_storage_class_are_options() -> None:
    r = managed(persistence={"appendfsync": "always", "storageClassName": "fast", "size": "5Gi"})
    assert arg(redis_args(r), "--appendfsync") == "always"
    (claim,) = build_redis_statefulset(OWNER, r)["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["storageClassName"] == "fast" and claim["spec"]["resources"]["requests"]["storage"] == "5Gi"


def test_maxmemory_leaves_headroom_below_the_memory_limit() -> None:
    assert maxmemory_bytes(managed()) == int(2**30 * 0.7)  # the default limit, 1Gi
    assert arg(redis_args(managed()), "--maxmemory") == str(int(2**30 * 0.7))
    assert maxmemory_bytes(managed(resources={"limits": {"memory": "2Gi"}})) == int(2 * 2**30 * 0.7)
    assert maxmemory_bytes(managed(resources={"requests": {"memory": "500M"}})) == 350_000_000
    assert maxmemory_bytes(managed(resources={"requests": {"cpu": "1"}})) is None
    assert "--maxmemory" not in redis_args(managed(resources={"requests": {"cpu": "1"}}))


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ("1Gi", 2**30),
        ("512Mi", 512 * 2**20),
        ("1.5Gi", 3 * 2**29),
        ("1G", 10**9),
        ("100k", 100_000),
        (12345, 12345),
    ],
)
def test_memory_quantities_in_bytes(quantity: str | int, expected: int) -> None:
    assert quantity_bytes(quantity) == expected


def test_a_malformed_quantity_is_named() -> None:
    with pytest.raises(ValueError, match="1GB"):
        quantity_bytes("1GB")


def test_ephemeral_redis_keeps_no_append_only_file_and_uses_an_emptydir() -> None:
    r = managed(persistence={"enabled": False})
    sts = build_redis_statefulset(OWNER, r)
    assert sts["spec"]["volumeClaimTemplates"] == []
    assert {"name": "data", "emptyDir": {}} in sts["spec"]["template"]["spec"]["volumes"]
    args = redis_args(r)
    assert arg(args, "--appendonly") == "no" and arg(args, "--save") == ""


def test_redis_password_comes_from_the_secret_by_env_expansion() -> None:
    c = containers(build_redis_statefulset(OWNER, managed()))["redis"]
    assert c["command"] == ["redis-server"]
    assert arg(c["args"], "--requirepass") == "$(REDISCLI_AUTH)" == arg(c["args"], "--masterauth")
    env = {e["name"]: e.get("valueFrom") for e in c["env"]}
    assert env["REDISCLI_AUTH"] == {"secretKeyRef": {"name": "demo-redis-auth", "key": "password"}}


def probe_replies(probe: dict[str, Any]) -> str:
    command = probe["exec"]["command"]
    assert command[:2] == ["sh", "-c"]
    return str(command[2])


def test_liveness_accepts_a_loading_redis_and_readiness_does_not() -> None:
    c = containers(build_redis_statefulset(OWNER, managed()))["redis"]
    assert "LOADING*" in probe_replies(c["livenessProbe"]) and "LOADING*" in probe_replies(c["startupProbe"])
    assert "in PONG)" in probe_replies(c["readinessProbe"])


@pytest.mark.parametrize(
    ("reply", "live", "ready"),
    [
        ("PONG", True, True),
        ("LOADING Redis is loading the dataset in memory", True, False),
        ("MASTERDOWN Link with MASTER is down", True, False),
        ("", False, False),
    ],
)
def test_probe_commands_judge_redis_replies(reply: str, live: bool, ready: bool, tmp_path: Any) -> None:
    """Runs the probes' shell with a redis-cli that prints `reply` (the real sh, a stand-in cli)."""
    cli = tmp_path / "redis-cli"
    cli.write_text(f"#!/bin/sh\necho '{reply}'\n")
    cli.chmod(0o755)
    c = containers(build_redis_statefulset(OWNER, managed()))["redis"]
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    for probe, expected in (("livenessProbe", live), ("readinessProbe", ready)):
        rc = subprocess.run(c[probe]["exec"]["command"], env=env, check=False).returncode
        assert (rc == 0) is expected, f"{probe} on {reply!r}"


def test_legacy_claim_is_mounted_instead_of_a_claim_template() -> None:
    sts = build_redis_statefulset(OWNER, managed(), legacy_claim="demo-redis-data")
    assert sts["spec"]["volumeClaimTemplates"] == []
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "demo-redis-data"}} in sts["spec"]["template"][
        "spec"
    ]["volumes"]


def test_single_redis_is_reached_through_its_service() -> None:
    r = managed()
    assert redis_url(OWNER, r) == "redis://demo-redis.ns1.svc:6379/0"
    assert build_redis_service(OWNER, r)["spec"]["ports"] == [
        {"name": "redis", "port": 6379, "targetPort": "redis", "protocol": "TCP"}
    ]
    assert set(containers(build_redis_statefulset(OWNER, r))) == {"redis"}


def test_ha_runs_a_sentinel_beside_each_redis_from_the_scripts() -> None:
    sts = build_redis_statefulset(OWNER, HA)
    c = containers(sts)
    assert set(c) == {"redis", "sentinel"} and sts["spec"]["replicas"] == 3
    assert c["redis"]["command"] == ["sh", "/scripts/redis-ha.sh"] and c["redis"]["args"] == redis_args(HA)
    assert c["sentinel"]["command"] == ["sh", "/scripts/sentinel.sh"]
    env = {e["name"]: e.get("value") for e in c["sentinel"]["env"]}
    assert env["PIDS_SENTINEL_QUORUM"] == "2" and env["PIDS_REDIS_REPLICAS"] == "3"
    assert env["PIDS_REDIS_PODS"] == "demo-redis-pods.ns1.svc" and env["PIDS_REDIS_SET"] == "demo-redis"
    assert env["PIDS_SENTINEL_DOWN_AFTER_MS"] == "3000"
    scripts = next(v for v in sts["spec"]["template"]["spec"]["volumes"] if v["name"] == "scripts")
    assert scripts["configMap"]["name"] == build_redis_scripts(OWNER)["metadata"]["name"] == "demo-redis-boot"
    assert sts["spec"]["podManagementPolicy"] == "Parallel"
    assert c["redis"]["lifecycle"]["preStop"]["exec"]["command"] == ["sh", "/scripts/switchover.sh"]
    assert "lifecycle" not in containers(build_redis_statefulset(OWNER, managed()))["redis"]


def test_ha_primary_refuses_writes_without_a_connected_replica() -> None:
    args = redis_args(managed(replicas=5, ha={"minReplicasToWrite": 2}))
    assert arg(args, "--min-replicas-to-write") == "2" and arg(args, "--min-replicas-max-lag") == "2"
    slow = redis_args(managed(replicas=3, ha={"downAfterMilliseconds": 10000}))
    assert arg(slow, "--min-replicas-max-lag") == "9"  # below the down-after time
    assert arg(redis_args(managed(replicas=3, ha={"downAfterMilliseconds": 500})), "--min-replicas-max-lag") == "1"
    assert "--min-replicas-to-write" not in redis_args(managed())


@pytest.mark.parametrize(("replicas", "quorum"), [(3, 2), (4, 3), (5, 3)])
def test_sentinel_quorum_is_a_majority(replicas: int, quorum: int) -> None:
    assert sentinel_quorum(ManagedRedis(replicas=replicas)) == quorum


def test_ha_clients_find_the_primary_through_every_pods_sentinel() -> None:
    address = parse_sentinel_url(redis_url(OWNER, HA))
    assert address.sentinels == tuple((f"demo-redis-{i}.demo-redis-pods.ns1.svc", 26379) for i in range(3))
    assert address.service == "pids" and address.db == 0 and address.authenticate
    assert build_redis_service(OWNER, HA)["spec"]["ports"][0]["port"] == 26379
    data = build_configmap(OWNER, ClusterSpec.parse({"redis": {"managed": {"replicas": 3, "ha": {"ackReplicas": 2}}}}))[
        "data"
    ]
    assert data["PIDS_REDIS_URL"] == redis_url(OWNER, HA) and data["PIDS_ACK_REPLICAS"] == "2"


def test_pod_dns_names_exist_before_the_pods_are_ready() -> None:
    svc = build_redis_pods_service(OWNER)["spec"]
    assert svc["clusterIP"] == "None" and svc["publishNotReadyAddresses"] is True
    assert {p["port"] for p in svc["ports"]} == {6379, 26379}


def test_scripts_are_valid_shell() -> None:
    for name, text in build_redis_scripts(OWNER)["data"].items():
        r = subprocess.run(["sh", "-n"], input=text, text=True, capture_output=True, check=False)
        assert r.returncode == 0, f"{name}: {r.stderr}"


def live(sts: dict[str, Any], **spec: Any) -> dict[str, Any]:
    """The StatefulSet as the API server returns it: defaults filled in."""
    out = {**sts, "spec": {**sts["spec"], **spec}}
    out["spec"]["volumeClaimTemplates"] = [
        {
            **t,
            "spec": {
                **t["spec"],
                "volumeMode": "Filesystem",
                "storageClassName": t["spec"].get("storageClassName", "standard"),
            },
        }
        for t in sts["spec"]["volumeClaimTemplates"]
    ]
    return out


def test_a_statefulset_is_updated_in_place_when_only_mutable_fields_change() -> None:
    existing = live(build_redis_statefulset(OWNER, managed()))
    assert recreate_reason(existing, build_redis_statefulset(OWNER, managed(replicas=3))) is None
    assert recreate_reason(existing, build_redis_statefulset(OWNER, managed(image="pids-redis:0.2.0"))) is None


@pytest.mark.parametrize(
    "change",
    [
        {"persistence": {"enabled": False}},
        {"persistence": {"size": "2Gi"}},
        {"persistence": {"storageClassName": "fast"}},
    ],
)
def test_a_statefulset_is_replaced_when_its_volume_claims_change(change: dict[str, Any]) -> None:
    existing = live(build_redis_statefulset(OWNER, managed()))
    assert "volume claims" in (recreate_reason(existing, build_redis_statefulset(OWNER, managed(**change))) or "")
