"""Bad input on a real cluster: a task for a missing cluster, a forbidden function and an
unreachable external Redis each end in a clear phase or condition with a reason, and the
rest keeps working. What the CRD can say it rejects at the API server (G: 0, a name too long
for the child names, modules that give a shell without the opt-in); workers that cannot run
(an image that does not exist, a crash loop) make the cluster Degraded with the cause and a
warning Event.
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

from pids_operator.meta import MAX_CLUSTER_NAME

pytestmark = pytest.mark.e2e
CLUSTER = "bad-input"


def single_task(name: str, cluster: str, function: str, args: list[Any]) -> str:
    return json.dumps(
        {
            "apiVersion": "pids.dev/v1alpha1",
            "kind": "PidsTask",
            "metadata": {"name": name},
            "spec": {"clusterRef": {"name": cluster}, "function": function, "args": args},
        }
    )


def status_of(release: Any, kind: str, name: str) -> dict[str, Any]:  # noqa: F811
    return (get(release.kubectl, release.namespace, kind, name) or {}).get("status") or {}


def degraded_by(release: Any, name: str, reason: str) -> dict[str, Any] | None:  # noqa: F811
    """The cluster's Degraded condition once it is True for `reason` (a new cluster's Redis may
    be reported first, while it starts)."""
    for c in status_of(release, "pidscluster", name).get("conditions") or []:
        if c.get("type") == "Degraded" and c.get("status") == "True" and c.get("reason") == reason:
            return c
    return None


def warning_events(release: Any, name: str) -> list[dict[str, Any]]:  # noqa: F811
    events = release.kubectl.json(
        "get",
        "events",
        "-n",
        release.namespace,
        "--field-selector",
        f"involvedObject.kind=PidsCluster,involvedObject.name={name}",
    )
    return [e for e in events["items"] if e.get("type") == "Warning"]


def rejected(release: Any, body: dict[str, Any]) -> str:  # noqa: F811
    """The API server's error for creating `body`; fails if it was accepted."""
    r = release.kubectl("apply", "-n", release.namespace, "-f", "-", input=json.dumps(body), check=False)
    assert r.returncode != 0, f"accepted: {r.stdout}"
    return r.stderr


def test_zero_g_is_rejected_by_the_api_server(release):  # noqa: F811
    body = json.loads(cluster_manifest("zero-g", 1, physics={"G": 0}))
    error = rejected(release, body)
    assert "spec.physics.G" in error and "greater than 0" in error, error


def test_a_name_too_long_for_the_child_names_is_rejected(release):  # noqa: F811
    body = json.loads(cluster_manifest("n" * 65, 1))
    error = rejected(release, body)
    assert f"at most {MAX_CLUSTER_NAME} characters" in error, error


def test_modules_that_give_a_shell_are_rejected_without_the_opt_in(release):  # noqa: F811
    body = json.loads(cluster_manifest("shell", 1, allowedModules=["os", "builtins", "subprocess"]))
    error = rejected(release, body)
    assert "set allowUnsafeModules true" in error, error
    body["spec"]["allowUnsafeModules"] = True  # the explicit opt-in is accepted
    r = release.kubectl(
        "apply", "--dry-run=server", "-n", release.namespace, "-f", "-", input=json.dumps(body), check=False
    )
    assert r.returncode == 0, r.stderr


def test_a_worker_image_that_does_not_exist_is_degraded_with_the_pull_error(release):  # noqa: F811
    release.apply(
        cluster_manifest("no-image", 1, worker={"image": "pids-worker:no-such-tag", "imagePullPolicy": "Never"})
    )
    condition = wait_until(
        lambda: degraded_by(release, "no-image", "ErrImageNeverPull"),
        180,
        "PidsCluster no-image Degraded by ErrImageNeverPull",
        lambda: release.diag("pidscluster/no-image"),
    )
    assert "ErrImageNeverPull" in condition["message"] and "pids-worker:no-such-tag" in condition["message"], condition
    assert status_of(release, "pidscluster", "no-image")["phase"] == "Degraded"
    events = wait_until(lambda: warning_events(release, "no-image"), 60, "a warning Event on PidsCluster no-image")
    assert any(e["reason"] == "ErrImageNeverPull" for e in events), events


def test_a_crash_looping_worker_is_degraded_with_its_last_message(release):  # noqa: F811
    bad_env = [{"name": "PIDS_WINDOW", "value": "many"}]  # the worker refuses to start: a number is needed
    release.apply(cluster_manifest("crashing", 1, worker={"env": bad_env}))

    condition = wait_until(
        lambda: degraded_by(release, "crashing", "CrashLoopBackOff"),
        240,
        "PidsCluster crashing Degraded by CrashLoopBackOff",
        lambda: release.diag("pidscluster/crashing"),
    )
    assert "PIDS_WINDOW must be a number, got 'many'" in condition["message"], condition
    assert "exit code 2" in condition["message"], condition


def test_task_for_a_missing_cluster_waits_with_the_reason(release):  # noqa: F811
    release.apply(single_task("orphan", "no-such-cluster", "pids.tasks:echo", [1]))
    status = wait_until(
        lambda: (s := status_of(release, "pidstask", "orphan")).get("reason") == "ClusterNotFound" and s,
        90,
        "PidsTask orphan reports ClusterNotFound",
        lambda: release.diag("pidstask/orphan"),
    )
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
