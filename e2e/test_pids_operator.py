"""PIDS on a real cluster (issue 6): the chart, the examples, printer columns,
scaling with drain, an operator restart, and what the API server rejects.

One `helm install pids charts/pids` per module (fixture `release`); the tests
share the example cluster "demo" and run in file order.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from helpers_pids import (
    EXAMPLES,
    FIGURES,
    OPERATOR_DEPLOYMENT,
    OPERATOR_SELECTOR,
    RedisAccess,
    batch_task,
    check_batch,
    get,
    pod_ready,
    release,  # noqa: F401  (module fixture)
    restart_count,
    wait_cluster_ready,
    wait_task_phase,
    wait_until,
    worker_pods,
)

pytestmark = pytest.mark.e2e
CLUSTER = "demo"  # examples/cluster.yaml
SQUARES = "squares"  # examples/task.yaml


@pytest.fixture(scope="module")
def redis_demo(release) -> Any:  # noqa: F811
    """Redis of the example cluster, reached through a port-forward (after the first test made it)."""
    wait_until(
        lambda: get(release.kubectl, release.namespace, "secret", f"{CLUSTER}-redis-auth"),
        120,
        "the managed Redis password Secret",
        lambda: release.diag(f"pidscluster/{CLUSTER}"),
    )
    access = RedisAccess(release.kubectl, release.namespace, CLUSTER)
    yield access
    access.close()


def stats(redis_demo: RedisAccess) -> Any:
    return redis_demo.call(lambda c: c.cluster_stats())


def parse_tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """`kubectl get a,b` output: one table per kind, separated by blank lines.
    Columns are split on runs of 2+ spaces (no value here contains them)."""
    import re

    tables = []
    for block in text.strip().split("\n\n"):
        lines = [line for line in block.splitlines() if line.strip()]
        if not lines:
            continue
        split = [re.split(r"\s{2,}", line.strip()) for line in lines]
        tables.append((split[0], split[1:]))
    return tables


# -- the examples -----------------------------------------------------------------
def test_example_cluster_and_batch(release):  # noqa: F811
    """kubectl apply -f examples/cluster.yaml and examples/task.yaml: 200 squares, all right."""
    k, ns = release.kubectl, release.namespace
    t0 = time.monotonic()
    release.apply_file(EXAMPLES / "cluster.yaml")
    wait_cluster_ready(k, ns, CLUSTER, 3, timeout=240)
    FIGURES.record("apply cluster.yaml -> 3 workers Ready (PidsCluster phase Ready)", time.monotonic() - t0)

    t1 = time.monotonic()
    release.apply_file(EXAMPLES / "task.yaml")
    wait_task_phase(k, ns, SQUARES, ("Running", "Succeeded"), timeout=120)
    FIGURES.record("apply task.yaml -> PidsTask Running (or done)", time.monotonic() - t1)
    pt = wait_task_phase(k, ns, SQUARES, timeout=240)
    FIGURES.record("apply task.yaml -> 200 squares Succeeded (status)", time.monotonic() - t1)

    s = pt["status"]
    assert s["total"] == 200 and s["progress"] == "200/200" and s["counts"] == {"succeeded": 200}, s
    assert s["taskId"] == pt["metadata"]["uid"], "the CR uid is the batch id"

    access = RedisAccess(k, ns, CLUSTER)
    try:
        check = check_batch(access, s["taskId"], 200, expected=lambda i: i * i)
        st = access.call(lambda c: c.cluster_stats())
    finally:
        access.close()
    assert check.max_attempt == 1, f"no worker was disturbed, yet a task needed {check.max_attempt} attempts"
    assert st.succeeded == 200 and st.enqueued == 200 and st.failed == 0, st
    assert sum(s["claimedBy"].values()) == 200, s["claimedBy"]


def test_printer_columns_filled(release):  # noqa: F811
    """kubectl get pidsclusters,pidstasks (and -o wide): no column reads <none>."""
    k, ns = release.kubectl, release.namespace

    def filled() -> str | None:
        out = k("get", "pidsclusters,pidstasks", "-n", ns).stdout
        wide = k("get", "pidsclusters,pidstasks", "-n", ns, "-o", "wide").stdout
        done = (get(k, ns, "pidscluster", CLUSTER) or {}).get("status", {}).get("succeeded")
        return None if "<none>" in out + wide or done != 200 else out + "\n" + wide

    # the cluster's status timer (every 10 s) catches up with the counters within an interval
    text = wait_until(
        filled,
        45,
        "printer columns without <none>, DONE 200",
        lambda: k("get", "pidsclusters,pidstasks", "-n", ns, "-o", "wide").stdout,
    )
    print(text)
    tables = parse_tables(k("get", "pidsclusters,pidstasks", "-n", ns, "-o", "wide").stdout)
    assert len(tables) == 2, text
    (cl_head, cl_rows), (pt_head, pt_rows) = tables
    assert cl_head == [
        "NAME",
        "DESIRED",
        "READY",
        "BACKLOG",
        "RUNNING",
        "DONE",
        "BALANCE",
        "REDIS",
        "STATUS",
        "THROUGHPUT",
        "AGE",
    ], cl_head
    demo = dict(zip(cl_head, next(r for r in cl_rows if r[0].endswith(CLUSTER))))
    assert demo["DESIRED"] == "3" and demo["READY"] == "3" and demo["DONE"] == "200" and demo["STATUS"] == "Ready", demo
    assert demo["REDIS"] == "durable", demo
    assert demo["BACKLOG"] == "0" and demo["RUNNING"] == "0", demo
    assert 0.0 <= float(demo["BALANCE"]) <= 1.0 and float(demo["THROUGHPUT"]) >= 0.0, demo
    assert pt_head == ["NAME", "CLUSTER", "PHASE", "DONE", "ATTEMPTS", "FUNCTION", "REASON", "AGE"], pt_head
    sq = dict(zip(pt_head, next(r for r in pt_rows if r[0].endswith(SQUARES))))
    assert sq["CLUSTER"] == CLUSTER and sq["PHASE"] == "Succeeded" and sq["DONE"] == "200/200", sq
    assert sq["ATTEMPTS"] == "1" and sq["FUNCTION"] == "pids.tasks:square" and sq["REASON"] == "AllSucceeded", sq


# -- scaling -------------------------------------------------------------------------
def _deployment_replicas(k, ns) -> int:
    return int(k.json("get", "deployment", f"{CLUSTER}-workers", "-n", ns)["spec"]["replicas"])


def test_scale_up_then_down_during_a_batch(release, redis_demo):  # noqa: F811
    """kubectl scale pidscluster: the Deployment and the status follow; a
    scale-down in the middle of a batch drains and loses nothing."""
    k, ns = release.kubectl, release.namespace
    diag = lambda: release.diag(f"pidscluster/{CLUSTER}", f"deployment/{CLUSTER}-workers")  # noqa: E731

    t0 = time.monotonic()
    k("scale", "pidscluster", CLUSTER, "-n", ns, "--replicas=5")
    wait_until(lambda: _deployment_replicas(k, ns) == 5, 60, "worker Deployment replicas 5", diag, interval=0.5)
    FIGURES.record("kubectl scale 3->5 -> Deployment replicas 5", time.monotonic() - t0)
    pc = wait_cluster_ready(k, ns, CLUSTER, 5, timeout=180)
    FIGURES.record("kubectl scale 3->5 -> status readyReplicas 5", time.monotonic() - t0)
    assert pc["status"]["desiredReplicas"] == 5 and pc["spec"]["workers"] == 5, pc["status"]
    scale = k.json("get", "pidscluster", CLUSTER, "-n", ns, "--subresource=scale")
    assert scale["spec"]["replicas"] == 5 and scale["status"]["replicas"] == 5, scale

    before = stats(redis_demo)
    n = 1500  # sleep(0.2) each: ~15 s on 5 workers x 4 slots, ~35 s once 2 are left
    k.apply(batch_task("sleepers", CLUSTER, "pids.tasks:sleep", [[0.2]] * n, maxAttempts=3), "-n", ns)
    batch_id = k.json("get", "pidstask", "sleepers", "-n", ns)["metadata"]["uid"]

    def progressed() -> bool:
        return stats(redis_demo).succeeded - before.succeeded >= n // 10

    wait_until(progressed, 90, "10% of the batch done before scaling down", diag, interval=0.3)
    old_pods = {p["metadata"]["name"] for p in worker_pods(k, ns, CLUSTER)}
    restarts: dict[str, int] = {}  # a drained worker must wait for its pod to go, not exit (and be restarted)

    def replicas_dropped() -> bool:
        for p in worker_pods(k, ns, CLUSTER):
            restarts[p["metadata"]["name"]] = restart_count(p)
        return _deployment_replicas(k, ns) == 2

    t1 = time.monotonic()
    k("scale", "pidscluster", CLUSTER, "-n", ns, "--replicas=2")
    wait_until(replicas_dropped, 90, "worker Deployment replicas 2 (drained pods removed)", diag, interval=0.5)
    done_at_scale_down = stats(redis_demo).succeeded - before.succeeded
    FIGURES.record("kubectl scale 5->2 -> Deployment replicas 2 (after drain)", time.monotonic() - t1)

    def two_left() -> bool:
        pods = worker_pods(k, ns, CLUSTER)
        restarts.update({p["metadata"]["name"]: restart_count(p) for p in pods})
        s = (get(k, ns, "pidscluster", CLUSTER) or {}).get("status") or {}
        return (
            len(pods) == 2
            and all(pod_ready(p) for p in pods)
            and s.get("replicas") == 2
            and s.get("readyReplicas") == 2
            and not s.get("draining")
        )

    wait_until(two_left, 150, "2 worker pods left and the status following", diag)
    FIGURES.record("kubectl scale 5->2 -> 2 pods left, status replicas 2", time.monotonic() - t1)

    assert not any(restarts.values()), f"worker containers restarted during the scale-down: {restarts}"
    pt = wait_task_phase(k, ns, "sleepers", timeout=240)
    assert done_at_scale_down < n, f"the batch ({n} tasks) finished before the scale-down took effect; make it longer"
    check = check_batch(redis_demo, batch_id, n, expected=lambda i: 0.2)
    after = stats(redis_demo)
    assert after.enqueued - before.enqueued == n, "tasks enqueued twice"
    assert after.succeeded - before.succeeded == n, (
        f"{after.succeeded - before.succeeded} completions recorded for {n} tasks"
    )
    assert after.failed == before.failed
    removed = set(check.claimed_by) - {p["metadata"]["name"] for p in worker_pods(k, ns, CLUSTER)}
    assert removed & old_pods, f"no task ran on a removed worker: {check.claimed_by}"
    print(
        f"scale-down: {done_at_scale_down}/{n} done when replicas dropped; tasks per worker {check.claimed_by}; "
        f"max attempts {check.max_attempt}"
    )
    sc = next(c for c in pt["status"]["conditions"] if c["type"] == "Complete")
    assert sc["status"] == "True", pt["status"]


# -- operator restart ------------------------------------------------------------------
def test_operator_restart_mid_run(release, redis_demo):  # noqa: F811
    """Delete the operator pod while a batch runs and while another PidsTask is
    created: both finish, nothing enqueued or completed twice, nothing lost."""
    k, ns = release.kubectl, release.namespace
    before = stats(redis_demo)
    n1, n2 = 600, 250
    k.apply(batch_task("during-restart", CLUSTER, "pids.tasks:sleep", [[0.1]] * n1), "-n", ns)
    wait_until(
        lambda: stats(redis_demo).succeeded - before.succeeded >= 20,
        90,
        "the batch running",
        lambda: release.diag("pidstask/during-restart"),
        interval=0.3,
    )
    old = {p["metadata"]["name"] for p in k.json("get", "pods", "-n", ns, "-l", OPERATOR_SELECTOR)["items"]}

    t0 = time.monotonic()
    k("delete", "pod", "-n", ns, "-l", OPERATOR_SELECTOR, "--wait=false")
    done_at_restart = stats(redis_demo).succeeded - before.succeeded
    # created while no operator runs: must be enqueued (once) by the next one
    k.apply(batch_task("while-down", CLUSTER, "pids.tasks:square", [[i] for i in range(n2)]), "-n", ns)

    def new_operator_ready() -> bool:
        pods = k.json("get", "pods", "-n", ns, "-l", OPERATOR_SELECTOR)["items"]
        return any(p["metadata"]["name"] not in old and pod_ready(p) for p in pods)

    wait_until(
        new_operator_ready, 180, "a new operator pod Ready", lambda: release.diag(f"deployment/{OPERATOR_DEPLOYMENT}")
    )
    FIGURES.record("operator pod deleted -> new operator Ready", time.monotonic() - t0)

    a = wait_task_phase(k, ns, "during-restart", timeout=240)
    b = wait_task_phase(k, ns, "while-down", timeout=240)
    FIGURES.record("operator pod deleted -> both PidsTasks Succeeded", time.monotonic() - t0)
    assert a["status"]["total"] == n1 and b["status"]["total"] == n2
    assert done_at_restart < n1, "the batch finished before the operator went down; make it longer"
    print(f"operator restart: {done_at_restart}/{n1} done when the operator pod was deleted")
    check_batch(redis_demo, a["metadata"]["uid"], n1, expected=lambda i: 0.1)
    check_batch(redis_demo, b["metadata"]["uid"], n2, expected=lambda i: i * i)
    after = stats(redis_demo)
    assert after.enqueued - before.enqueued == n1 + n2, "a PidsTask was enqueued twice (or lost)"
    assert after.succeeded - before.succeeded == n1 + n2, "duplicate or missing completions"
    assert after.failed == before.failed and after.backlog == 0 and after.running == 0, after


# -- validation by the API server ----------------------------------------------------------
def _cluster(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "pids.dev/v1alpha1", "kind": "PidsCluster", "metadata": {"name": "bad"}, "spec": spec}


def _task(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "pids.dev/v1alpha1", "kind": "PidsTask", "metadata": {"name": "bad"}, "spec": spec}


INVALID = [
    ("negative-workers", _cluster({"workers": -1}), ["spec.workers", "should be greater than or equal to 0"]),
    ("workers-wrong-type", _cluster({"workers": "three"}), ["spec.workers", "must be of type integer"]),
    (
        "min-above-max",
        _cluster({"autoscaling": {"enabled": True, "minWorkers": 5, "maxWorkers": 2}}),
        ["autoscaling.minWorkers must be <= autoscaling.maxWorkers"],
    ),
    (
        "two-redis",
        _cluster({"redis": {"managed": {}, "external": {"url": "redis://r:6379/0"}}}),
        ["set exactly one of redis.managed and redis.external"],
    ),
    (
        "missing-clusterRef",
        _task({"function": "pids.tasks:square", "args": [2]}),
        ["spec.clusterRef", "Required value"],
    ),
    (
        "maxAttempts-wrong-type",
        _task({"clusterRef": {"name": CLUSTER}, "function": "pids.tasks:square", "maxAttempts": "three"}),
        ["spec.maxAttempts", "must be of type integer"],
    ),
    (
        "function-not-module-callable",
        _task({"clusterRef": {"name": CLUSTER}, "function": "os.system"}),
        ["spec.function", "should match"],
    ),
]


@pytest.mark.parametrize("case,body,expected", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_objects_rejected(release, case, body, expected):  # noqa: F811
    k, ns = release.kubectl, release.namespace
    r = k("apply", "-n", ns, "-f", "-", input=json.dumps(body), check=False)
    message = r.stderr.strip()
    print(f"{case}: {message}")
    assert r.returncode != 0, f"{case} was accepted: {r.stdout}"
    assert "is invalid" in message, message
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in the API server's message: {message}"
    assert get(k, ns, body["kind"].lower(), "bad") is None, f"{case}: an invalid object exists"
