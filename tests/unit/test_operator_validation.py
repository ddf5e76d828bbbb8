"""What the schema cannot say: names, cross-object rules, batch items."""

from __future__ import annotations

from typing import Any

import pytest

from pids.functions import is_allowed
from pids_operator.meta import MAX_CLUSTER_NAME
from pids_operator.spec import ClusterSpec, TaskSpec
from pids_operator.validation import validate_cluster, validate_items, validate_task
from tests.harness import nested_list

CLUSTER = ClusterSpec.parse({"allowedModules": ["pids.tasks"]})


def task(**raw: object) -> TaskSpec:
    return TaskSpec.parse({"clusterRef": {"name": "demo"}, "function": "pids.tasks:square", **raw})


def reasons(problems: list) -> list[str]:
    return [p.reason for p in problems]


def test_valid_cluster_has_no_problems() -> None:
    assert validate_cluster("demo", CLUSTER, ["gravity", "fifo"]) == []


def test_cluster_name_too_long_for_child_names() -> None:
    assert reasons(validate_cluster("a" * (MAX_CLUSTER_NAME + 1), CLUSTER)) == ["NameTooLong"]
    assert validate_cluster("a" * MAX_CLUSTER_NAME, CLUSTER) == []


def test_cluster_cross_field_rules_hold_even_without_cel() -> None:
    spec = ClusterSpec.parse(
        {
            "autoscaling": {"enabled": True, "minWorkers": 4, "maxWorkers": 2},
            "timing": {"leaseSeconds": 2, "heartbeatSeconds": 5},
        }
    )
    assert reasons(validate_cluster("c", spec)) == ["InvalidAutoscaling", "InvalidWorkerSettings"]


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"timing": {"leaseSeconds": 2, "heartbeatSeconds": 5}}, "lease must be longer than the heartbeat"),
        ({"timing": {"heartbeatSeconds": 40}}, "lease must be longer than the heartbeat"),  # the worker's default lease
        ({"physics": {"G": 0}}, "G must be > 0"),
    ],
)
def test_settings_the_worker_would_refuse_are_reported_with_its_reason(spec: dict[str, Any], message: str) -> None:
    (p,) = validate_cluster("c", ClusterSpec.parse(spec))
    assert p.reason == "InvalidWorkerSettings" and message in p.message


def test_unknown_policy_is_reported_with_the_choices() -> None:
    (p,) = validate_cluster("c", ClusterSpec.parse({"physics": {"policy": "magic"}}), ["gravity", "fifo"])
    assert p.reason == "UnknownPolicy" and "gravity, fifo" in p.message


def test_external_url_with_credentials_is_refused() -> None:
    spec = ClusterSpec.parse({"redis": {"external": {"url": "redis://:pw@h:6379/0"}}})
    assert reasons(validate_cluster("c", spec)) == ["InvalidRedis"]


@pytest.mark.parametrize(
    ("redis", "words"),
    [
        ({"managed": {"replicas": 2}}, "no Sentinel majority"),
        ({"managed": {"replicas": 3, "ha": {"ackReplicas": 3}}}, "smaller than replicas"),
        ({"external": {}}, "exactly one of redis.external.url and redis.external.sentinel"),
        ({"external": {"sentinel": {"hosts": ["s:port"], "masterName": "m"}}}, "'s:port' is not host:port"),
        ({"external": {"sentinel": {"hosts": [], "masterName": "m"}}}, "hosts is empty"),
    ],
)
def test_redis_shapes_the_schema_also_refuses_are_named(redis: dict[str, Any], words: str) -> None:
    (p,) = validate_cluster("c", ClusterSpec.parse({"redis": redis}))
    assert p.reason == "InvalidRedis" and words in p.message


def test_ha_and_external_sentinel_are_valid() -> None:
    assert validate_cluster("c", ClusterSpec.parse({"redis": {"managed": {"replicas": 3}}})) == []
    sentinel = {"external": {"sentinel": {"hosts": ["s0:26379", "s1"], "masterName": "m"}}}
    assert validate_cluster("c", ClusterSpec.parse({"redis": sentinel})) == []


def test_task_for_missing_cluster() -> None:
    (p,) = validate_task(task(), None)
    assert p.reason == "ClusterNotFound" and "demo" in p.message


def test_task_with_forbidden_module() -> None:
    (p,) = validate_task(task(function="os:system"), CLUSTER)
    assert p.reason == "FunctionNotAllowed" and "'os'" in p.message and "pids.tasks" in p.message


def test_submodules_of_allowed_modules_are_allowed() -> None:
    assert is_allowed("pids.tasks.extra", ("pids.tasks",))
    assert not is_allowed("pids.tasksx", ("pids.tasks",))
    assert validate_task(task(function="pids.tasks.extra:f"), CLUSTER) == []


def test_malformed_function() -> None:
    assert reasons(validate_task(task(function="pids.tasks.square"), CLUSTER)) == ["InvalidFunction"]


def test_valid_batch_and_single_call() -> None:
    assert validate_task(task(items=[[1], {"args": [2], "kwargs": {}, "weight": 2, "position": "z/n"}]), CLUSTER) == []
    assert validate_task(task(args=[3], kwargs={"k": 1}), CLUSTER) == []


def test_bad_items_are_listed_with_their_index() -> None:
    (p,) = validate_items(
        [[1], 5, {"args": 1}, {"weight": 0}, {"colour": "red"}, {"weight": True}, "x", {"position": 3}]
    )
    assert p.reason == "InvalidItems"
    assert "item 1: must be a list of args or an object, not int" in p.message
    assert "item 2: args must be a list" in p.message
    assert "item 3: weight must be a number in [1e-06, 1e+06], got 0" in p.message
    assert "item 4: unknown keys ['colour']" in p.message
    assert "(and 2 more)" in p.message


def test_empty_batch() -> None:
    assert reasons(validate_task(task(items=[]), CLUSTER)) == ["InvalidItems"]


def test_items_and_args_together() -> None:
    assert "InvalidArguments" in reasons(validate_task(task(items=[[1]], args=[1]), CLUSTER))


def test_private_function_is_reported_as_invalid_function() -> None:
    (p,) = validate_task(task(function="pids.tasks:__setattr__"), CLUSTER)
    assert p.reason == "InvalidFunction" and "'__setattr__' is private" in p.message


def test_options_outside_the_client_limits_are_reported_naming_the_option() -> None:
    (p,) = validate_task(task(priority=500), CLUSTER)
    assert p.reason == "InvalidOptions" and p.message.startswith("priority must be an integer in [-100, 100], got 500")
    (p,) = validate_task(task(weight=1e308), CLUSTER)
    assert p.reason == "InvalidOptions" and p.message.startswith("weight must be a number in [1e-06, 1e+06]")
    (p,) = validate_task(task(timeoutSeconds=10**9, items=[[1]]), CLUSTER)
    assert p.reason == "InvalidOptions" and p.message.startswith("timeout must be a number")


def test_arguments_too_deep_or_too_large_are_invalid_arguments() -> None:
    (p,) = validate_task(task(args=[nested_list(990)]), CLUSTER)
    assert p.reason == "InvalidArguments" and p.message == "args nests deeper than 100 levels"
    (p,) = validate_task(task(kwargs={"k": "x" * (1 << 20)}), CLUSTER)
    assert p.reason == "InvalidArguments" and "more than the 1048576 allowed" in p.message
    (p,) = validate_task(task(args=[float("nan")]), CLUSTER)
    assert p.reason == "InvalidArguments" and "JSON-serialisable" in p.message


def test_items_are_checked_by_the_client_rules() -> None:
    (p,) = validate_task(
        task(items=[[1], [nested_list(500)], {"kwargs": {"k": nested_list(200)}}, {"weight": 1e308}]), CLUSTER
    )
    assert p.reason == "InvalidItems"
    assert p.message == (
        "item 1: args nests deeper than 100 levels; item 2: kwargs nests deeper than 100 levels; "
        "item 3: weight must be a number in [1e-06, 1e+06], got 1e+308 (float)"
    )


@pytest.mark.parametrize("modules", [["os"], ["pids.tasks", "subprocess.run"], ["builtins"]])
def test_unsafe_modules_are_a_problem_without_the_opt_in(modules: list[str]) -> None:
    (p,) = validate_cluster("c", ClusterSpec.parse({"allowedModules": modules}))
    assert p.reason == "UnsafeModules" and modules[-1] in p.message and "allowUnsafeModules" in p.message
    assert validate_cluster("c", ClusterSpec.parse({"allowedModules": modules, "allowUnsafeModules": True})) == []
