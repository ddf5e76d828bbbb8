"""The pure builders: plain dicts in, manifests out."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from pids_operator import meta
from pids_operator.redis_manifests import (
    build_redis_pods_service,
    build_redis_scripts,
    build_redis_secret,
    build_redis_service,
    build_redis_statefulset,
)
from pids_operator.spec import ClusterSpec
from pids_operator.worker_manifests import (
    KUBERNETES_SETTINGS,
    build_configmap,
    build_service_account,
    build_worker_deployment,
    build_worker_service,
    config_hash,
    env_value,
)

OWNER = {
    "apiVersion": "pids.dev/v1alpha1",
    "kind": "PidsCluster",
    "metadata": {"name": "demo", "namespace": "ns1", "uid": "1234-uid"},
}


def spec(**raw: Any) -> ClusterSpec:
    return ClusterSpec.parse(raw)


def all_manifests() -> list[dict[str, Any]]:
    s = spec(redis={"managed": {"replicas": 3}})
    assert s.managed_redis is not None
    return [
        build_redis_secret(OWNER, "pw"),
        build_redis_statefulset(OWNER, s.managed_redis),
        build_redis_service(OWNER, s.managed_redis),
        build_redis_pods_service(OWNER),
        build_redis_scripts(OWNER),
        build_configmap(OWNER, s),
        build_service_account(OWNER),
        build_worker_deployment(OWNER, s, 3),
        build_worker_service(OWNER, s),
    ]


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]["containers"][0]  # type: ignore[no-any-return]


def env_of(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}


@pytest.mark.parametrize("manifest", all_manifests(), ids=lambda m: f"{m['kind']}")
def test_every_child_is_owned_by_the_cluster_and_labelled(manifest: dict[str, Any]) -> None:
    m = manifest["metadata"]
    assert m["namespace"] == "ns1"
    assert m["name"].startswith("demo-")
    assert m["ownerReferences"] == [
        {
            "apiVersion": "pids.dev/v1alpha1",
            "kind": "PidsCluster",
            "name": "demo",
            "uid": "1234-uid",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert m["labels"]["pids.dev/cluster"] == "demo"
    assert m["labels"]["app.kubernetes.io/part-of"] == "pids"
    assert m["labels"]["app.kubernetes.io/managed-by"] == "pids-operator"


@pytest.mark.parametrize(
    "workload",
    [d for d in all_manifests() if d["kind"] in ("Deployment", "StatefulSet")],
    ids=lambda d: d["metadata"]["name"],
)
def test_workloads_are_hardened_and_select_their_own_pods(workload: dict[str, Any]) -> None:
    pod = workload["spec"]["template"]
    selector = workload["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod["metadata"]["labels"].items()
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["spec"]["automountServiceAccountToken"] is False
    for c in pod["spec"]["containers"]:
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["runAsUser"] == 10001
        assert "/tmp" in {m["mountPath"] for m in c["volumeMounts"]}


def test_worker_and_redis_selectors_do_not_overlap() -> None:
    s = spec()
    assert s.managed_redis is not None
    workers = build_worker_deployment(OWNER, s, 1)["spec"]["selector"]["matchLabels"]
    redis = build_redis_statefulset(OWNER, s.managed_redis)["spec"]["selector"]["matchLabels"]
    assert workers != redis
    assert build_worker_service(OWNER, s)["spec"]["selector"] == workers
    assert build_redis_service(OWNER, s.managed_redis)["spec"]["selector"] == redis


def test_worker_probes_hit_healthz_and_readyz_on_the_health_port() -> None:
    c = container(build_worker_deployment(OWNER, spec(worker={"healthPort": 9000}), 2))
    assert c["ports"] == [{"name": "health", "containerPort": 9000, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"


def test_worker_env_wires_identity_password_and_position() -> None:
    c = container(build_worker_deployment(OWNER, spec(worker={"positions": {"zone": "eu1"}}), 1))
    env = env_of(c)
    assert env["PIDS_WORKER_ID"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["PIDS_NODE"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert env["PIDS_POSITION"] == "eu1/$(PIDS_NODE)"
    assert env["PIDS_REDIS_PASSWORD"] == {"secretKeyRef": {"name": "demo-redis-auth", "key": "password"}}
    names = [e["name"] for e in c["env"]]
    assert names.index("PIDS_NODE") < names.index("PIDS_POSITION")  # $(VAR) expands only earlier vars
    assert c["envFrom"] == [{"configMapRef": {"name": "demo-config"}}]


def test_worker_zone_comes_from_the_node_label_copied_onto_the_pod() -> None:
    env_list = container(build_worker_deployment(OWNER, spec(), 1))["env"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in env_list}
    assert env["PIDS_ZONE"] == {"fieldRef": {"fieldPath": "metadata.labels['topology.kubernetes.io/zone']"}}
    assert env["PIDS_POSITION"] == "$(PIDS_ZONE)/$(PIDS_NODE)"
    names = [e["name"] for e in env_list]
    assert names.index("PIDS_ZONE") < names.index("PIDS_POSITION")


def test_external_redis_uses_its_url_and_secret() -> None:
    s = spec(
        redis={"external": {"url": "redis://r.example:6380/2", "passwordSecretRef": {"name": "mine", "key": "pw"}}}
    )
    assert build_configmap(OWNER, s)["data"]["PIDS_REDIS_URL"] == "redis://r.example:6380/2"
    env = env_of(container(build_worker_deployment(OWNER, s, 1)))
    assert env["PIDS_REDIS_PASSWORD"] == {"secretKeyRef": {"name": "mine", "key": "pw"}}


def test_external_redis_without_secret_sets_no_password() -> None:
    s = spec(redis={"external": {"url": "redis://r:6379/0"}})
    assert "PIDS_REDIS_PASSWORD" not in env_of(container(build_worker_deployment(OWNER, s, 1)))


def test_configmap_carries_every_worker_setting_the_spec_sets() -> None:
    s = spec(
        workers=2,
        allowedModules=["pids.tasks", "mylib.jobs"],
        physics={"G": 2.5, "window": 32, "policy": "gravity"},
        timing={"leaseSeconds": 30, "heartbeatSeconds": 2},
        worker={"concurrency": 8, "speed": 2, "drainSeconds": 45},
    )
    data = build_configmap(OWNER, s)["data"]
    assert data == {
        "PIDS_CLUSTER": "demo",
        "PIDS_REDIS_URL": "redis://demo-redis.ns1.svc:6379/0",
        "PIDS_CONCURRENCY": "8",
        "PIDS_SPEED": "2",
        "PIDS_ALLOWED_MODULES": "pids.tasks,mylib.jobs",
        "PIDS_POLICY": "gravity",
        "PIDS_G": "2.5",
        "PIDS_WINDOW": "32",
        "PIDS_LEASE_SECONDS": "30",
        "PIDS_HEARTBEAT_SECONDS": "2",
        "PIDS_HEALTH_PORT": "8080",
        "PIDS_HEALTH_HOST": "0.0.0.0",
        "PIDS_DRAIN_SECONDS": "45",
        "PIDS_EXIT_WHEN_DRAINED": "false",
        "HOME": "/tmp",
    }
    assert all(isinstance(v, str) for v in data.values())


def test_configmap_leaves_unset_settings_to_the_worker() -> None:
    settings = pytest.importorskip("pids.settings")
    data = build_configmap(OWNER, spec())["data"]
    assert set(data) == {
        "PIDS_CLUSTER",
        "PIDS_REDIS_URL",
        "PIDS_HEALTH_PORT",
        "PIDS_HEALTH_HOST",
        "PIDS_EXIT_WHEN_DRAINED",
        "HOME",
    }
    ws = settings.WorkerSettings.from_env(data, worker_id="w")
    defaults = settings.WorkerSettings(worker_id="w")
    assert (ws.G, ws.lease_seconds, ws.heartbeat_seconds, ws.drain_seconds, ws.window, ws.concurrency) == (
        defaults.G,
        defaults.lease_seconds,
        defaults.heartbeat_seconds,
        defaults.drain_seconds,
        defaults.window,
        defaults.concurrency,
    )


def test_every_kubernetes_specific_setting_is_a_worker_setting() -> None:
    settings = pytest.importorskip("pids.settings")
    names = {f.name for f in dataclasses.fields(settings.WorkerSettings)}
    assert set(KUBERNETES_SETTINGS) <= names
    data = build_configmap(OWNER, spec())["data"]
    assert all(data[settings.env_var(n)] == env_value(v) for n, v in KUBERNETES_SETTINGS.items())


def test_configmap_is_readable_by_the_worker_settings() -> None:
    settings = pytest.importorskip("pids.settings")
    data = build_configmap(OWNER, spec(worker={"concurrency": 3}))["data"]
    ws = settings.WorkerSettings.from_env({**data, "PIDS_WORKER_ID": "demo-workers-abc", "PIDS_POSITION": "n1"})
    assert ws.concurrency == 3 and ws.cluster == "demo" and ws.health_port == 8080
    assert ws.exit_when_drained is False  # a drained worker waits for its pod to be removed


def test_termination_grace_outlasts_the_drain() -> None:
    d = build_worker_deployment(OWNER, spec(worker={"drainSeconds": 100}), 1)
    assert d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > 100
    settings = pytest.importorskip("pids.settings")
    d = build_worker_deployment(OWNER, spec(), 1)  # the worker's own default drain
    assert d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > settings.WorkerSettings.drain_seconds


def test_a_worker_failing_liveness_is_killed_without_the_drain_grace() -> None:
    d = build_worker_deployment(OWNER, spec(worker={"drainSeconds": 100}), 1)
    assert container(d)["livenessProbe"]["terminationGracePeriodSeconds"] <= 10


def test_config_change_rolls_the_workers() -> None:
    a = build_worker_deployment(OWNER, spec(physics={"G": 1.0}), 1)
    b = build_worker_deployment(OWNER, spec(physics={"G": 3.0}), 1)
    key = "pids.dev/config-hash"
    assert (
        a["spec"]["template"]["metadata"]["annotations"][key] != b["spec"]["template"]["metadata"]["annotations"][key]
    )
    assert config_hash(build_configmap(OWNER, spec())) == config_hash(build_configmap(OWNER, spec()))


def test_replicas_come_from_the_caller_not_the_spec() -> None:
    assert build_worker_deployment(OWNER, spec(workers=5), 2)["spec"]["replicas"] == 2


def test_default_resources_and_user_resources() -> None:
    assert container(build_worker_deployment(OWNER, spec(), 1))["resources"]["requests"]["cpu"] == "100m"
    res = {"requests": {"cpu": "2"}, "limits": {"memory": "1Gi"}}
    assert container(build_worker_deployment(OWNER, spec(worker={"resources": res}), 1))["resources"] == res


def test_scheduling_knobs_pass_through() -> None:
    s = spec(
        worker={
            "nodeSelector": {"pool": "cpu"},
            "tolerations": [{"key": "k", "operator": "Exists"}],
            "podAnnotations": {"a": "b"},
        }
    )
    pod = build_worker_deployment(OWNER, s, 1)["spec"]["template"]
    assert pod["spec"]["nodeSelector"] == {"pool": "cpu"}
    assert pod["spec"]["tolerations"] == [{"key": "k", "operator": "Exists"}]
    assert pod["metadata"]["annotations"]["a"] == "b"


def test_service_account_mounts_no_token() -> None:
    sa = build_service_account(OWNER)
    assert sa["metadata"]["name"] == "demo-worker" and sa["automountServiceAccountToken"] is False


def test_longest_cluster_name_keeps_pod_names_valid() -> None:
    name = "a" * meta.MAX_CLUSTER_NAME
    owner = {**OWNER, "metadata": {**OWNER["metadata"], "name": name}}
    for m in all_manifests_for(owner):
        assert len(m["metadata"]["name"]) <= 63
    deployment = meta.child_name(name, "workers")
    assert len(f"{deployment}-7d9f8c6b5d-x2x4z") <= 63
    statefulset = meta.child_name(name, "redis")  # pods <sts>-<i>, label controller-revision-hash <sts>-<hash>
    assert len(f"{statefulset}-7d9f8c6b5d") <= 63 and len(f"data-{statefulset}-8") <= 63


def all_manifests_for(owner: dict[str, Any]) -> list[dict[str, Any]]:
    s = spec()
    assert s.managed_redis is not None
    ha = spec(redis={"managed": {"replicas": 3}}).managed_redis
    assert ha is not None
    return [
        build_redis_secret(owner, "p"),
        build_redis_statefulset(owner, ha),
        build_redis_service(owner, ha),
        build_redis_pods_service(owner),
        build_redis_scripts(owner),
        build_configmap(owner, s),
        build_service_account(owner),
        build_worker_deployment(owner, s, 1),
        build_worker_service(owner, s),
    ]
