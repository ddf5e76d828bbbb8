"""Bad input on a real cluster: a task for a missing cluster, a forbidden function and an
unreachable external Redis each end in a clear phase or condition with a reason, and the
rest keeps working.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from helpers_pids import (
    cluster_manifest,
    get,
    release,  # noqa: F401  (module fixture)
    wait_cluster_ready,
    wait_task_phase,
    wait_until,
)

pytestmark = pytest.mark.e2e
CLUSTER = "bad-input"


def single_task(name: str, cluster: str, function: str, args: list[Any]) -> str:
    return json.dumps({
        "apiVersion": "pids.dev/v1alpha1",
        "kind": "PidsTask",
        "metadata": {"name": name},
        "spec": {"clusterRef": {"name": cluster}, "function": function, "args": args},
    })


def status_of(release: Any, kind: str, name: str) -> dict[str, Any]:  # noqa: F811
    return (get(release.kubectl, release.namespace, kind, name) or {}).get("status") or {}


def test_task_for_a_missing_cluster_waits_with_the_reason(release):  # noqa: F811
    release.apply(single_task("orphan", "no-such-cluster", "pids.tasks:echo", [1]))
    status = wait_until(lambda: (s := status_of(release, "pidstask", "orphan")).get("reason") == "ClusterNotFound" and s,
                        90, "PidsTask orphan reports ClusterNotFound", lambda: release.diag("pidstask/orphan"))
    assert status["phase"] == "Pending"
    assert "no-such-cluster" in status["message"]


def test_forbidden_function_fails_and_the_cluster_keeps_working(release):  # noqa: F811
    release.apply(cluster_manifest(CLUSTER, 1))
    wait_cluster_ready(release.kubectl, release.namespace, CLUSTER, 1)
    release.apply(single_task("forbidden", CLUSTER, "os:system", ["true"]))
    status = wait_task_phase(release.kubectl, release.namespace, "forbidden", ("Failed",), timeout=90)["status"]
    assert status["reason"] == "FunctionNotAllowed"
    assert "os" in status["message"] and "pids.tasks" in status["message"]
    release.apply(single_task("fine", CLUSTER, "pids.tasks:square", [7]))
    status = wait_task_phase(release.kubectl, release.namespace, "fine", timeout=120)["status"]
    assert json.loads(status["result"]["value"]) == 49  # the result as JSON text


def test_unreachable_external_redis_is_degraded_with_the_error(release):  # noqa: F811
    body = json.loads(cluster_manifest("nowhere", 1))
    body["spec"]["redis"] = {"external": {"url": "redis://pids-no-such-host.invalid:6379/0"}}
    release.apply(json.dumps(body))

    def degraded() -> dict[str, Any] | None:
        status = status_of(release, "pidscluster", "nowhere")
        for c in status.get("conditions") or []:
            if c.get("type") == "Degraded" and c.get("status") == "True":
                return c
        return None

    condition = wait_until(degraded, 120, "PidsCluster nowhere Degraded", lambda: release.diag("pidscluster/nowhere"))
    assert condition["reason"] and "pids-no-such-host.invalid" in condition["message"]
    # the healthy cluster of this namespace is unaffected
    assert status_of(release, "pidscluster", CLUSTER).get("phase") == "Ready"
