"""Scale math and drain decisions."""

from __future__ import annotations

import pytest

from pids_operator.scaling import DELETION_COST, REMOVE_COST, WorkerLoad, desired_workers, plan_scaling, staying_pods
from pids_operator.spec import ClusterSpec

AUTO = ClusterSpec.parse(
    {"autoscaling": {"enabled": True, "minWorkers": 1, "maxWorkers": 8, "targetBacklogPerWorker": 10}}
)


@pytest.mark.parametrize(
    "backlog, running, expected",
    [(0, 0, 1), (1, 0, 1), (10, 0, 1), (11, 0, 2), (35, 5, 4), (1000, 0, 8), (79, 0, 8)],
)
def test_desired_workers_follow_backlog_within_bounds(backlog: int, running: int, expected: int) -> None:
    assert desired_workers(AUTO, backlog, running) == expected


def test_without_autoscaling_desired_is_spec_workers() -> None:
    assert desired_workers(ClusterSpec.parse({"workers": 3}), backlog=10_000, running=0) == 3


def test_min_zero_scales_to_zero_when_idle() -> None:
    spec = ClusterSpec.parse({"autoscaling": {"enabled": True, "minWorkers": 0, "maxWorkers": 4}})
    assert desired_workers(spec, 0, 0) == 0


def test_scale_up_sets_replicas_and_drains_nobody() -> None:
    plan = plan_scaling(5, ["a", "b"], {}, {}, now=100, grace_seconds=60)
    assert plan.replicas == 5 and plan.drain == [] and plan.remove == []


def test_steady_state_changes_nothing() -> None:
    loads = {p: WorkerLoad(held=2, load=2.0) for p in "abc"}
    plan = plan_scaling(3, ["a", "b", "c"], loads, {}, now=0, grace_seconds=60)
    assert (plan.replicas, plan.drain, plan.remove, plan.draining) == (3, [], [], {})


def test_scale_down_drains_the_least_loaded_and_removes_idle_ones_at_once() -> None:
    loads = {
        "a": WorkerLoad(held=3, load=3.0),
        "b": WorkerLoad(held=0),
        "c": WorkerLoad(held=1, load=5.0),
        "d": WorkerLoad(held=1, load=1.0),
    }
    plan = plan_scaling(2, ["a", "b", "c", "d"], loads, {}, now=10, grace_seconds=60)
    assert plan.drain == ["b", "d"]
    assert plan.remove == ["b"]  # idle: goes now
    assert plan.draining == {"d": 10}  # busy: keeps its pod while it finishes
    assert plan.replicas == 3
    assert plan.deletion_costs == {"b": REMOVE_COST}


def test_draining_worker_goes_once_idle() -> None:
    loads = {"a": WorkerLoad(held=1), "d": WorkerLoad(held=0, draining=True)}
    plan = plan_scaling(1, ["a", "d"], loads, {"d": 10}, now=20, grace_seconds=60)
    assert plan.drain == [] and plan.remove == ["d"] and plan.replicas == 1 and plan.draining == {}


def test_draining_worker_goes_after_the_grace_even_if_busy() -> None:
    loads = {"a": WorkerLoad(held=1), "d": WorkerLoad(held=4, draining=True)}
    assert plan_scaling(1, ["a", "d"], loads, {"d": 10}, now=69, grace_seconds=60).remove == []
    plan = plan_scaling(1, ["a", "d"], loads, {"d": 10}, now=70, grace_seconds=60)
    assert plan.remove == ["d"] and plan.replicas == 1


def test_vanished_draining_pods_are_forgotten() -> None:
    plan = plan_scaling(1, ["a"], {"a": WorkerLoad(held=1)}, {"gone": 5}, now=10, grace_seconds=60)
    assert plan.draining == {} and plan.replicas == 1


def test_scale_up_while_draining_keeps_the_draining_pod_until_done() -> None:
    loads = {"a": WorkerLoad(held=1), "d": WorkerLoad(held=2, draining=True)}
    plan = plan_scaling(3, ["a", "d"], loads, {"d": 10}, now=20, grace_seconds=60)
    assert plan.replicas == 4 and plan.draining == {"d": 10}


def test_unknown_loads_keep_busy_workers_until_the_grace() -> None:
    plan = plan_scaling(1, ["a", "b"], None, {}, now=0, grace_seconds=60)
    assert plan.drain == ["a"] and plan.remove == [] and plan.replicas == 2


def test_workers_redis_does_not_know_yet_count_as_idle() -> None:
    plan = plan_scaling(1, ["a", "new"], {"a": WorkerLoad(held=2)}, {}, now=0, grace_seconds=60)
    assert plan.remove == ["new"] and plan.replicas == 1


def test_pods_marked_to_go_are_not_staying() -> None:
    pods = [
        {"metadata": {"name": "a"}},
        {"metadata": {"name": "b", "annotations": {DELETION_COST: str(REMOVE_COST)}}},
        {"metadata": {"name": "c", "annotations": {DELETION_COST: "5"}}},
    ]
    assert staying_pods(pods) == ["a", "c"]
