"""The operator's Redis-facing logic against a real redis-server: the Kopf
handler functions are called directly, with an in-memory stand-in for the
Kubernetes API (no cluster) and real pids Clients."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

import kopf
import pytest

from pids.client import Client
from pids.task import RETENTION_SECONDS
from pids_operator import cluster_ops, handlers
from pids_operator.config import OperatorConfig
from pids_operator.connections import Connections
from pids_operator.metrics import OperatorMetrics
from pids_operator.spec import ClusterSpec
from pids_operator.state import OperatorState


class ClusterOnlyKube:
    """Knows one PidsCluster (external Redis, no password) and nothing else."""

    def __init__(self, cluster: str, url: str) -> None:
        self.body = {
            "apiVersion": "pids.dev/v1alpha1",
            "kind": "PidsCluster",
            "metadata": {"name": cluster, "namespace": "ns", "uid": "cluster-uid", "generation": 1},
            "spec": {"redis": {"external": {"url": url}}, "allowedModules": ["pids.tasks"], "workers": 2},
        }

    def cluster(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.body if name == self.body["metadata"]["name"] else None

    def deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        return None


@pytest.fixture
def memo(redis_server: Any, cluster: str) -> kopf.Memo:
    kube = ClusterOnlyKube(cluster, redis_server.url)
    state = OperatorState(config=OperatorConfig(), kube=kube, metrics=OperatorMetrics())  # type: ignore[arg-type]
    return kopf.Memo(pids=state)


def task_body(cluster: str, uid: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "t", "namespace": "ns", "uid": uid, "generation": 1},
        "spec": {"clusterRef": {"name": cluster}, "function": "pids.tasks:square", **spec},
    }


def enqueue(memo: kopf.Memo, body: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    patch = kopf.Patch()
    handlers.enqueue_task(
        body=body,
        spec=body["spec"],
        uid=body["metadata"]["uid"],
        namespace="ns",
        status=status or {},
        patch=patch,
        memo=memo,
    )
    return dict(patch.get("status", {}))


def follow(memo: kopf.Memo, body: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    patch = kopf.Patch()
    handlers.follow_task(
        body=body, spec=body["spec"], uid=body["metadata"]["uid"], namespace="ns", status=status, patch=patch, memo=memo
    )
    return {**status, **dict(patch.get("status", {}).items())}


def wait_for(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_enqueueing_the_same_task_body_twice_makes_one_batch(memo: kopf.Memo, client: Client, cluster: str) -> None:
    body = task_body(cluster, "uid-batch", items=[[i] for i in range(200)])
    first = enqueue(memo, body)
    second = enqueue(memo, body)  # a re-delivered create event
    assert first["taskId"] == second["taskId"] == "uid-batch"
    assert first["total"] == 200 and first["phase"] == "Pending"
    assert client.cluster_stats().backlog == 200
    assert client.batch_status("uid-batch").total == 200


def test_enqueueing_a_single_call_twice_makes_one_task(memo: kopf.Memo, client: Client, cluster: str) -> None:
    body = task_body(cluster, "uid-single", args=[7])
    enqueue(memo, body)
    enqueue(memo, body)
    assert client.cluster_stats().backlog == 1
    assert client.task_info("uid-single").state.value == "pending"


def test_forbidden_function_fails_without_touching_redis(memo: kopf.Memo, client: Client, cluster: str) -> None:
    body = task_body(cluster, "uid-bad", function="os:system", args=["true"])
    patch = kopf.Patch()
    with pytest.raises(kopf.PermanentError):
        handlers.enqueue_task(
            body=body, spec=body["spec"], uid="uid-bad", namespace="ns", status={}, patch=patch, memo=memo
        )
    assert patch["status"]["phase"] == "Failed" and patch["status"]["reason"] == "FunctionNotAllowed"
    assert client.cluster_stats().backlog == 0


def test_task_for_a_missing_cluster_waits_with_a_reason(memo: kopf.Memo) -> None:
    body = task_body("nowhere", "uid-orphan", args=[1])
    patch = kopf.Patch()
    with pytest.raises(kopf.TemporaryError):
        handlers.enqueue_task(
            body=body, spec=body["spec"], uid="uid-orphan", namespace="ns", status={}, patch=patch, memo=memo
        )
    assert patch["status"]["phase"] == "Pending" and patch["status"]["reason"] == "ClusterNotFound"


def test_progress_is_followed_to_success_with_results(
    memo: kopf.Memo, cluster: str, client: Client, start_workers: Any
) -> None:
    batch = task_body(cluster, "uid-sq", items=[[i] for i in range(20)])
    single = task_body(cluster, "uid-echo", function="pids.tasks:echo", args=["hi"])
    batch_status, single_status = enqueue(memo, batch), enqueue(memo, single)
    assert follow(memo, batch, batch_status)["phase"] == "Pending"
    start_workers(2)
    wait_for(lambda: client.batch_status("uid-sq").done and client.task_info("uid-echo").state.is_final)
    batch_status, single_status = follow(memo, batch, batch_status), follow(memo, single, single_status)
    assert batch_status["phase"] == "Succeeded" and batch_status["progress"] == "20/20"
    assert batch_status["counts"] == {"succeeded": 20} and sum(batch_status["claimedBy"].values()) == 20
    assert client.results([f"uid-sq-{i}" for i in range(20)]) == [i * i for i in range(20)]
    assert single_status["phase"] == "Succeeded" and single_status["result"]["value"] == '"hi"'
    assert single_status["attempts"] == 1 and "runSecondsP50" in single_status


def test_deleting_a_task_cancels_what_has_not_run(memo: kopf.Memo, client: Client, cluster: str) -> None:
    body = task_body(cluster, "uid-cancel", items=[[i] for i in range(5)])
    status = enqueue(memo, body)
    handlers.cancel_task(spec=body["spec"], uid="uid-cancel", namespace="ns", status=status, retry=0, memo=memo)
    assert client.batch_status("uid-cancel").counts == {"cancelled": 5}


def test_a_pids_tasks_results_stay_while_it_exists_and_expire_after_it_is_deleted(
    memo: kopf.Memo, client: Client, cluster: str, start_workers: Any
) -> None:
    batch = task_body(cluster, "uid-kept", items=[[i] for i in range(6)])
    single = task_body(cluster, "uid-kept-one", args=[3])
    batch_status, single_status = enqueue(memo, batch), enqueue(memo, single)
    start_workers(1)
    wait_for(lambda: client.batch_status("uid-kept").done and client.task_info("uid-kept-one").state.is_final)
    ids = [*client.batch_ids("uid-kept"), "uid-kept-one"]
    keys = [k for i in ids for k in (client.keys.task(i), client.keys.result(i))] + [client.keys.batch("uid-kept")]
    assert [client.redis.pttl(k) for k in keys] == [-1] * len(keys)  # the PidsTask is their record
    for body, status in ((batch, follow(memo, batch, batch_status)), (single, follow(memo, single, single_status))):
        assert status["phase"] == "Succeeded"
        handlers.cancel_task(
            spec=body["spec"], uid=body["metadata"]["uid"], namespace="ns", status=status, retry=0, memo=memo
        )
    day_ms = RETENTION_SECONDS * 1000
    assert all(day_ms - 60_000 < client.redis.pttl(k) <= day_ms for k in keys)
    assert client.results(ids) == [0, 1, 4, 9, 16, 25, 9]  # still there to read until then


def test_cluster_status_comes_from_redis(memo: kopf.Memo, client: Client, cluster: str) -> None:
    client.submit_batch("b", "pids.tasks:square", [[1], [2], [3]])
    state: OperatorState = memo.pids
    body = state.kube.body  # type: ignore[attr-defined]
    status = cluster_ops.refresh(state.kube, state.connections, body, ClusterSpec.parse(body["spec"]), {}, now=100.0)  # type: ignore[arg-type]
    assert status["backlog"] == 3 and status["succeeded"] == 0 and status["sample"] == {"finished": 0, "at": 100.0}
    assert status["redisUrl"] == body["spec"]["redis"]["external"]["url"]
    assert {c["type"]: c["status"] for c in status["conditions"]}["Degraded"] == "False"


def test_unreachable_redis_is_a_degraded_condition(memo: kopf.Memo, cluster: str) -> None:
    state: OperatorState = memo.pids
    body = {**state.kube.body, "spec": {"redis": {"external": {"url": "redis://127.0.0.1:1/0"}}}}  # type: ignore[attr-defined]
    status = cluster_ops.refresh(state.kube, Connections(), body, ClusterSpec.parse(body["spec"]), {}, now=1.0)  # type: ignore[arg-type]
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert status["phase"] == "Degraded" and degraded["status"] == "True" and degraded["reason"] == "RedisUnreachable"


def test_deleted_worker_pod_has_its_claims_released_at_once(
    memo: kopf.Memo, client: Client, cluster: str, start_workers: Any
) -> None:
    (proc,) = start_workers(1, prefix=f"{cluster}-workers-", lease_seconds=600, concurrency=2)
    worker_id = f"{cluster}-workers-0"
    client.submit_batch("long", "pids.tasks:sleep", [[60], [60]])
    wait_for(lambda: client.cluster_stats().running == 2)
    os.killpg(proc.pid, signal.SIGKILL)  # the pod dies without draining
    proc.wait()
    pod = {
        "metadata": {"name": worker_id, "namespace": "ns", "uid": "pod-uid", "labels": {"pids.dev/cluster": cluster}}
    }
    handlers.worker_pod_event(event={"type": "DELETED", "object": pod}, memo=memo)
    stats = client.cluster_stats()
    assert stats.running == 0 and stats.backlog == 2  # back to pending now, not after the 600 s lease
    assert worker_id not in {w.id for w in stats.workers if w.alive}
