"""PidsTasks the CRD schema lets through but the client rules refuse (pids.limits,
pids.functions): the operator fails them with the reason the client would give, and
the cluster keeps running the others.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers_pids import (
    batch_task,
    cluster_manifest,
    release,  # noqa: F401  (module fixture)
    wait_cluster_ready,
    wait_task_phase,
)

pytestmark = pytest.mark.e2e
CLUSTER = "limits"


def single_task(name: str, function: str, args: list[Any]) -> str:
    return json.dumps(
        {
            "apiVersion": "pids.dev/v1alpha1",
            "kind": "PidsTask",
            "metadata": {"name": name},
            "spec": {"clusterRef": {"name": CLUSTER}, "function": function, "args": args},
        }
    )


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_tasks_outside_the_client_rules_fail_with_the_reason_and_others_run(release):  # noqa: F811
    release.apply(cluster_manifest(CLUSTER, 1))
    wait_cluster_ready(release.kubectl, release.namespace, CLUSTER, 1)
    release.apply(single_task("dunder", "pids.tasks:__setattr__", ["time", 0]))
    release.apply(single_task("deep", "pids.tasks:echo", [nested(150)]))
    release.apply(batch_task("unknown-key", CLUSTER, "pids.tasks:square", [[1], {"args": [2], "priority": 3}]))
    for name, reason, message in [
        ("dunder", "InvalidFunction", "'__setattr__' is private"),
        ("deep", "InvalidArguments", "args nests deeper than 100 levels"),
        ("unknown-key", "InvalidItems", "item 1: unknown keys ['priority']"),
    ]:
        status = wait_task_phase(release.kubectl, release.namespace, name, ("Failed",), timeout=90)["status"]
        assert status["reason"] == reason and message in status["message"], status
    release.apply(single_task("fine", "pids.tasks:sleep", [0.1]))
    status = wait_task_phase(release.kubectl, release.namespace, "fine", timeout=120)["status"]
    assert json.loads(status["result"]["value"]) == 0.1
