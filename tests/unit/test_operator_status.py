"""Status computation: conditions, throughput, phases, task progress."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pids_operator.cluster_status import QueueCounts, build_cluster_status, throughput
from pids_operator.conditions import condition, merge_conditions
from pids_operator.task_status import (
    batch_phase,
    build_batch_status,
    build_single_status,
    problem_status,
    with_conditions,
)


def cluster_status(**kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "name": "demo",
        "generation": 3,
        "previous": {},
        "deployment_status": {"replicas": 3, "readyReplicas": 3},
        "replicas": 3,
        "desired": 3,
        "counts": QueueCounts(backlog=5, running=2, succeeded=10, failed=1, live_workers=3, balance=0.91234),
        "draining": {},
        "redis_url": "redis://demo-redis.ns.svc:6379/0",
        "degraded": None,
        "now": 1000.0,
    }
    args.update(kw)
    return build_cluster_status(**args)


def conds(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_healthy_cluster_is_ready_and_fills_the_scale_subresource_fields() -> None:
    s = cluster_status()
    assert s["phase"] == "Ready"
    assert conds(s) == {
        "Ready": ("True", "WorkersReady"),
        "Scaling": ("False", "Stable"),
        "Degraded": ("False", "AsExpected"),
    }
    assert s["replicas"] == 3 and s["readyReplicas"] == 3 and s["desiredReplicas"] == 3
    assert s["selector"] == "app.kubernetes.io/instance=demo,app.kubernetes.io/name=pids-worker,pids.dev/cluster=demo"
    assert (s["backlog"], s["running"], s["succeeded"], s["failed"], s["liveWorkers"]) == (5, 2, 10, 1, 3)
    assert s["balance"] == 0.9123 and s["observedGeneration"] == 3
    assert all(c["observedGeneration"] == 3 for c in s["conditions"])


def test_scaling_up_reports_scaling() -> None:
    s = cluster_status(replicas=5, desired=5, deployment_status={"replicas": 3, "readyReplicas": 3})
    assert s["phase"] == "Scaling"
    assert conds(s)["Scaling"] == ("True", "ScalingUp")
    assert conds(s)["Ready"] == ("False", "WorkersNotReady")


def test_draining_reports_scaling_down_by_drain() -> None:
    s = cluster_status(replicas=3, desired=2, draining={"demo-workers-x": 990.0})
    assert conds(s)["Scaling"] == ("True", "Draining")
    assert s["draining"] == [{"name": "demo-workers-x", "since": 990.0}]


def test_unreachable_redis_is_degraded_and_keeps_old_counters() -> None:
    s = cluster_status(counts=None, degraded="ConnectionError: connection refused")
    assert s["phase"] == "Degraded"
    assert conds(s)["Degraded"] == ("True", "RedisUnreachable")
    assert conds(s)["Ready"] == ("False", "RedisUnreachable")
    msg = next(c["message"] for c in s["conditions"] if c["type"] == "Degraded")
    assert "connection refused" in msg
    assert "backlog" not in s  # a status patch without them leaves the last values


def test_no_ready_workers_yet_is_pending() -> None:
    s = cluster_status(deployment_status={"replicas": 3, "readyReplicas": 0})
    assert s["phase"] == "Pending"


def test_throughput_from_counter_deltas() -> None:
    assert throughput(None, 50, 100.0) == 0.0
    assert throughput({"finished": 10, "at": 90.0}, 60, 100.0) == 5.0
    assert throughput({"finished": 100, "at": 90.0}, 3, 100.0) == 0.0  # counters reset (Redis flushed)
    s = cluster_status(previous={"sample": {"finished": 1, "at": 990.0}})
    assert s["throughput"] == 1.0 and s["sample"] == {"finished": 11, "at": 1000.0}


def test_condition_transition_time_kept_while_status_unchanged() -> None:
    first = merge_conditions(None, [condition("Ready", True, "A")], 1, now=0.0)
    same = merge_conditions(first, [condition("Ready", True, "B")], 2, now=50.0)
    flipped = merge_conditions(same, [condition("Ready", False, "C")], 2, now=99.0)
    assert first[0]["lastTransitionTime"] == same[0]["lastTransitionTime"] == "1970-01-01T00:00:00Z"
    assert flipped[0]["lastTransitionTime"] == "1970-01-01T00:01:39Z"


@dataclass
class Batch:
    total: int
    counts: dict[str, int]
    max_attempts_seen: int = 1
    claimed_by: dict[str, int] = field(default_factory=dict)
    wait_seconds_p50: float | None = 0.25
    run_seconds_p50: float | None = 0.5
    errors: list[str] = field(default_factory=list)


def test_batch_phases() -> None:
    assert batch_phase(10, {"pending": 10}) == ("Pending", "Queued")
    assert batch_phase(10, {"pending": 8, "running": 2}) == ("Running", "InProgress")
    assert batch_phase(10, {"pending": 5, "succeeded": 5}) == ("Running", "InProgress")
    assert batch_phase(10, {"succeeded": 10}) == ("Succeeded", "AllSucceeded")
    assert batch_phase(10, {"succeeded": 9, "failed": 1}) == ("Failed", "TasksFailed")
    assert batch_phase(10, {"succeeded": 9, "cancelled": 1}) == ("Failed", "Cancelled")


def test_batch_status_block() -> None:
    b = Batch(200, {"succeeded": 150, "running": 10, "pending": 40}, 2, {"w1": 80, "w2": 80}, errors=["x-1: boom"])
    s = build_batch_status("uid-1", b, "pids:{demo}:result:")
    assert s["phase"] == "Running" and s["progress"] == "150/200" and s["total"] == 200
    assert s["attempts"] == 2 and s["claimedBy"] == {"w1": 80, "w2": 80}
    assert s["waitSecondsP50"] == 0.25 and s["runSecondsP50"] == 0.5
    assert s["result"] == {"taskIds": "uid-1-0 .. uid-1-199", "key": "pids:{demo}:result:uid-1-<i>"}
    assert s["errors"] == ["x-1: boom"] and s["batch"] is True


@dataclass
class Info:
    state: str
    attempt: int = 1
    worker: str = "w1"
    error: str = ""
    enqueued_at: float = 100.0
    first_claimed_at: float | None = 101.0
    claimed_at: float | None = 102.0
    finished_at: float | None = 104.5
    result_size: int | None = 3


def test_single_task_succeeded_with_inline_result() -> None:
    s = build_single_status("uid-2", Info("succeeded"), "pids:{demo}:result:uid-2", 49)
    assert s["phase"] == "Succeeded" and s["progress"] == "1/1"
    assert s["result"] == {"key": "pids:{demo}:result:uid-2", "taskIds": "uid-2", "size": 3, "value": "49"}
    assert s["waitSecondsP50"] == 1.0 and s["runSecondsP50"] == 2.5
    assert s["enqueuedAt"] == "1970-01-01T00:01:40Z" and s["claimedBy"] == {"w1": 1}


def test_large_results_stay_in_redis() -> None:
    s = build_single_status("u", Info("succeeded"), "k", "x" * 5000)
    assert "value" not in s["result"]


def test_single_task_failed_carries_its_error() -> None:
    s = build_single_status("u", Info("failed", attempt=3, error="ValueError: nope"), "k")
    assert s["phase"] == "Failed" and s["reason"] == "TaskFailed"
    assert s["errors"] == ["ValueError: nope"] and s["attempts"] == 3


def test_pending_task_has_no_times_yet() -> None:
    s = build_single_status(
        "u", Info("pending", worker="", first_claimed_at=None, claimed_at=None, finished_at=None), "k"
    )
    assert s["phase"] == "Pending" and "waitSecondsP50" not in s and s["claimedBy"] == {}


def test_problem_status_is_failed_with_reason_and_condition() -> None:
    s = problem_status("FunctionNotAllowed", "module 'os' is not allowed", {}, 1, 0.0)
    assert s["phase"] == "Failed" and s["reason"] == "FunctionNotAllowed"
    assert s["conditions"][0]["type"] == "Enqueued" and s["conditions"][0]["status"] == "False"


def test_terminal_progress_gets_complete_condition_and_finish_time() -> None:
    s = with_conditions({"phase": "Succeeded", "reason": "AllSucceeded", "taskId": "u"}, {}, 1, 60.0)
    assert {c["type"]: c["status"] for c in s["conditions"]} == {"Enqueued": "True", "Complete": "True"}
    assert s["finishedAt"] == "1970-01-01T00:01:00Z"


def test_status_patch_removes_map_keys_that_disappeared() -> None:
    from pids_operator.conditions import merge_patch

    previous = {"counts": {"pending": 12}, "claimedBy": {"w1": 3}, "phase": "Pending"}
    new = {"counts": {"succeeded": 12}, "claimedBy": {"w1": 5}, "phase": "Succeeded"}
    assert merge_patch(previous, new) == {
        "counts": {"pending": None, "succeeded": 12},
        "claimedBy": {"w1": 5},
        "phase": "Succeeded",
    }
