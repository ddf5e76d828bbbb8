"""Pure logic of the data plane: task validation, settings parsing, keys, the allow-list."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest

from pids.client import retention_from_env
from pids.cycle import CycleConfig
from pids.errors import ConfigError, TaskArgumentsError, TaskFunctionError
from pids.execution import run_task
from pids.functions import is_allowed, resolve
from pids.keys import Keys
from pids.settings import HEAVIEST, WorkerSettings
from pids.task import TaskOptions, TaskSpec, TaskState
from pids.wire import VIEW, ClaimedTask


@pytest.mark.parametrize("fn", ["pids.tasks:square", "a:b", "pkg.sub.mod:callable_1"])
def test_well_formed_functions_are_accepted(fn: str) -> None:
    assert TaskSpec(fn).fn == fn


@pytest.mark.parametrize("fn", ["", "square", "pids.tasks.square", "pids.tasks:", ":f", "a b:c", "a:b:c", "1mod:f"])
def test_malformed_functions_are_rejected(fn: str) -> None:
    with pytest.raises(TaskFunctionError, match="module:callable"):
        TaskSpec(fn)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"weight": 0}, "weight"),
        ({"weight": float("inf")}, "weight"),
        ({"priority": 1.5}, "priority"),
        ({"priority": 101}, "priority"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"timeout": -1}, "timeout"),
        ({"position": "a\tb"}, "position"),
    ],
)
def test_bad_task_options_name_the_option(options: dict[str, object], message: str) -> None:
    with pytest.raises(TaskArgumentsError, match=message):
        TaskOptions(**options)  # type: ignore[arg-type]


def test_task_ids_cannot_break_key_names() -> None:
    with pytest.raises(TaskArgumentsError, match="task_id"):
        TaskSpec("a:b", task_id="x}y")


def test_non_json_arguments_are_rejected_on_encoding() -> None:
    with pytest.raises(TaskArgumentsError, match="args must be JSON-serialisable"):
        TaskSpec("a:b", args=(object(),)).encoded()
    with pytest.raises(TaskArgumentsError, match="kwargs must be a dict"):
        TaskSpec("a:b", kwargs=[1])  # type: ignore[arg-type]


def test_final_states() -> None:
    assert {s for s in TaskState if s.is_final} == {TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED}


def test_settings_read_environment_then_overrides() -> None:
    env = {
        "PIDS_CONCURRENCY": "8",
        "PIDS_ALLOWED_MODULES": "pids.tasks, myapp.jobs",
        "PIDS_G": "0.5",
        "PIDS_HEALTH_PORT": "8080",
        "PIDS_CLUSTER": "prod",
    }
    s = WorkerSettings.from_env(env, concurrency=2, cluster=None)
    assert (s.concurrency, s.G, s.health_port, s.cluster) == (2, 0.5, 8080, "prod")
    assert s.allowed_modules == ("pids.tasks", "myapp.jobs")
    assert s.capacity == 2.0 and s.heartbeat_ttl_seconds == 3.0


def test_a_retention_of_0_keeps_for_the_worker_as_for_the_client() -> None:
    """PIDS_RETENTION_SECONDS=0: the client keeps final tasks until deleted, and the worker its
    dead-letter entries (one variable, one meaning)."""
    assert WorkerSettings.from_env({"PIDS_RETENTION_SECONDS": "0"}).retention_seconds == 0
    assert retention_from_env("0") is None


@pytest.mark.parametrize("raw, value", [("false", False), ("0", False), ("No", False), ("true", True), ("1", True)])
def test_exit_when_drained_reads_booleans(raw: str, value: bool) -> None:
    assert WorkerSettings.from_env({"PIDS_EXIT_WHEN_DRAINED": raw}).exit_when_drained is value
    assert WorkerSettings().exit_when_drained is True


@pytest.mark.parametrize("raw, position", [("eu1/node-a", "eu1/node-a"), ("/node-a", "node-a"), ("", "")])
def test_position_drops_empty_parts_of_an_unknown_zone(raw: str, position: str) -> None:
    assert WorkerSettings(position=raw).position == position


@pytest.mark.parametrize(
    "env, message",
    [
        ({"PIDS_CONCURRENCY": "many"}, "PIDS_CONCURRENCY must be a number"),
        ({"PIDS_CONCURRENCY": "0"}, "concurrency"),
        ({"PIDS_LEASE_SECONDS": "1", "PIDS_HEARTBEAT_SECONDS": "2"}, "lease must be longer"),
        ({"PIDS_WINDOW": "0"}, "window"),
        ({"PIDS_G": "0"}, "G must be > 0"),
        ({"PIDS_ALLOWED_MODULES": " , "}, "allowed modules"),
        ({"PIDS_EXIT_WHEN_DRAINED": "maybe"}, "PIDS_EXIT_WHEN_DRAINED must be true or false"),
        ({"PIDS_RETENTION_SECONDS": "-1"}, "retention must be >= 0"),
    ],
)
def test_bad_settings_fail_clearly(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        WorkerSettings.from_env(env)


def test_keys_share_one_hash_tag_and_reject_bad_cluster_names() -> None:
    k = Keys("prod")
    names = [
        k.pending,
        k.pending_meta,
        k.pending_by_weight,
        k.running,
        k.task("t"),
        k.result("t"),
        k.claims("w"),
        k.batch("b"),
        k.workers,
        k.loads,
        k.dead,
        k.stats,
        k.new_work_channel,
        k.done_channel,
    ]
    assert all(n.startswith("pids:{prod}:") for n in names)
    assert len(set(names)) == len(names)
    for bad in ["", "a{b", "a:b", "a b"]:
        with pytest.raises(ConfigError):
            Keys(bad)


def test_allow_list_covers_submodules_but_not_lookalikes() -> None:
    allowed = ("pids.tasks", "myapp")
    assert is_allowed("pids.tasks", allowed) and is_allowed("myapp.jobs.heavy", allowed)
    assert (
        not is_allowed("pids", allowed) and not is_allowed("myapplication", allowed) and not is_allowed("os", allowed)
    )


def test_forbidden_module_is_refused_before_import() -> None:
    with pytest.raises(TaskFunctionError, match="not allowed"):
        resolve("antigravity:fly", ("pids.tasks",))
    import sys

    assert "antigravity" not in sys.modules


def claimed(fn: str, *args: object, **kwargs: object) -> ClaimedTask:
    return ClaimedTask("t", "1|0|0|w", fn, json.dumps(list(args)), json.dumps(dict(kwargs)), None, 1.0, "")


def test_run_task_outcomes() -> None:
    allowed = ("pids.tasks",)
    ok = run_task(claimed("pids.tasks:square", 4), allowed)
    assert ok.ok and ok.result_json == "16"
    raised = run_task(claimed("pids.tasks:fail", "boom"), allowed)
    assert not raised.ok and raised.retryable and raised.error.startswith("RuntimeError: boom")
    assert "Traceback" in raised.error
    wrong_args = run_task(claimed("pids.tasks:square"), allowed)
    assert not wrong_args.ok and not wrong_args.retryable and "arguments do not fit" in wrong_args.error
    unjsonable = run_task(claimed("pids.tasks:echo", float("nan")), allowed)
    assert not unjsonable.ok and not unjsonable.retryable and "not JSON-serialisable" in unjsonable.error


def test_effective_settings_leave_out_secrets_and_url_credentials() -> None:
    s = WorkerSettings(redis_url="redis://user:hunter2@redis:6379/0", redis_password="hunter2", G=0.5)
    effective = s.effective()
    assert effective["redis_url"] == "redis://redis:6379/0" and "redis_password" not in effective
    assert effective["G"] == 0.5 and effective["allowed_modules"] == "pids.tasks"
    assert (effective["view"], effective["heaviest"]) == (VIEW, HEAVIEST)
    assert "hunter2" not in repr(effective)


def test_internal_knobs_are_constants_not_settings() -> None:
    assert not {f.name for f in fields(WorkerSettings)} & {"view", "heaviest"}
    ignored = WorkerSettings.from_env({"PIDS_VIEW": "3", "PIDS_HEAVIEST": "2"}, worker_id="w")
    assert ignored == WorkerSettings(worker_id="w")
    config = CycleConfig.of(ignored)
    assert (config.view, config.heaviest) == (VIEW, HEAVIEST)
