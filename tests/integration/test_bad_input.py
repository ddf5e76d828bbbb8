"""Bad input at the boundary, against a real redis-server and real worker processes: the
client and `pids submit` refuse it with TaskArgumentsError/TaskFunctionError naming the
field, before anything is enqueued; a task function a worker must not run is failed for
good with the reason, and the worker keeps running everything else."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from pids import limits
from pids.client import Client
from pids.embedded import EmbeddedRedis
from pids.errors import TaskArgumentsError, TaskFunctionError
from pids.task import TaskSpec, TaskState
from tests.harness import WorkerFactory, nested_list


def nothing_enqueued(client: Client) -> bool:
    return client.cluster_stats().enqueued == 0 and not client.redis.keys(f"pids:{{{client.keys.cluster}}}:task:*")


def enqueue_unchecked(client: Client, task_id: str, fn: str, args_json: str = "[]") -> None:
    """Write a task the way a writer without the submit checks would (an old client, a
    hand-made entry): through the real enqueue script, with the checked fields replaced."""
    spec = TaskSpec("pids.tasks:noop", task_id=task_id)
    object.__setattr__(spec, "fn", fn)
    object.__setattr__(spec, "args_json", args_json)
    client.protocol.enqueue([spec])


def test_a_list_nested_990_deep_is_refused_at_submit_naming_args(client: Client) -> None:
    with pytest.raises(TaskArgumentsError, match=f"^args nests deeper than {limits.MAX_NESTING_DEPTH} levels"):
        client.submit("pids.tasks:echo", nested_list(990))
    with pytest.raises(TaskArgumentsError, match="^kwargs nests deeper"):
        client.submit("pids.tasks:echo", kwargs={"value": nested_list(990)})
    assert nothing_enqueued(client)


@pytest.mark.parametrize("option", ["max_attempts", "priority", "weight", "timeout", "retention"])
def test_true_is_refused_for_every_numeric_option(client: Client, option: str) -> None:
    options: dict[str, Any] = {option: True}
    with pytest.raises(TaskArgumentsError, match=f"^{option} must be an? (number|integer) in .*got True \\(bool\\)"):
        client.submit("pids.tasks:noop", **options)
    assert nothing_enqueued(client)


@pytest.mark.parametrize(
    "options, name",
    [
        ({"weight": 1e308}, "weight"),
        ({"weight": float("nan")}, "weight"),
        ({"max_attempts": 10**6}, "max_attempts"),
        ({"priority": 10**6}, "priority"),
        ({"timeout": 1e12}, "timeout"),
        ({"position": "z\udc80"}, "position"),
        ({"retention": 1e308}, "retention"),
    ],
)
def test_options_outside_their_limits_are_refused_naming_the_option(
    client: Client, options: dict[str, Any], name: str
) -> None:
    with pytest.raises(TaskArgumentsError, match=f"^{name} must be"):
        client.submit("pids.tasks:noop", **options)
    with pytest.raises(TaskArgumentsError, match=f"^{name} must be"):
        client.map("pids.tasks:square", [1, 2], **options)
    assert nothing_enqueued(client)


def test_an_empty_task_id_is_refused_rather_than_replaced(client: Client) -> None:
    with pytest.raises(TaskArgumentsError, match="^task_id must be 1 to 128"):
        client.submit("pids.tasks:noop", task_id="")
    with pytest.raises(TaskArgumentsError, match="^batch_id must be 1 to 100"):
        client.map("pids.tasks:square", [1], batch_id="")
    assert nothing_enqueued(client)


@pytest.mark.parametrize("bad_id", ["\udc80", "x\ud800y", "a b", "x}y", "a:b"])
def test_unencodable_or_unsafe_ids_are_refused(client: Client, bad_id: str) -> None:
    with pytest.raises(TaskArgumentsError, match="^task_id must be"):
        client.submit("pids.tasks:noop", task_id=bad_id)
    with pytest.raises(TaskArgumentsError, match="^batch_id must be"):
        client.submit_batch(bad_id, "pids.tasks:square", [[1]])
    assert nothing_enqueued(client)


@pytest.mark.parametrize("kwargs", ["abc", [("a", 1)], {1: 2}])
def test_wrong_typed_kwargs_raise_task_arguments_error(client: Client, kwargs: Any) -> None:
    with pytest.raises(TaskArgumentsError, match="^kwargs must be a dict with string keys"):
        client.submit("pids.tasks:echo", kwargs=kwargs)
    assert nothing_enqueued(client)


def test_one_bad_item_refuses_the_whole_batch_naming_the_item(client: Client) -> None:
    items: list[Any] = [[1], {"args": [2]}, {"args": [3], "weight": True}, [4]]
    with pytest.raises(TaskArgumentsError, match="^item 2: weight must be a number"):
        client.submit_batch("b1", "pids.tasks:square", items)
    with pytest.raises(TaskArgumentsError, match="^item 1: args nests deeper"):
        client.submit_batch("b1", "pids.tasks:echo", [[1], [nested_list(500)]])
    with pytest.raises(TaskArgumentsError, match="^item 0: must be a list of args or an object, not str"):
        client.submit_batch("b1", "pids.tasks:echo", ["ab"])
    with pytest.raises(TaskArgumentsError, match=r"^item 0: unknown keys \['priority'\]"):
        client.submit_batch("b1", "pids.tasks:echo", [{"args": [1], "priority": 5}])
    assert client.batch_ids("b1") == [] and nothing_enqueued(client)


@pytest.mark.parametrize("fn", ["pids.tasks:__setattr__", "pids.tasks:__delattr__", "pids.tasks:_x", "pids._x:f"])
def test_private_and_dunder_functions_are_refused_at_submit(client: Client, fn: str) -> None:
    with pytest.raises(TaskFunctionError, match="is private"):
        client.submit(fn, "time", 0)
    assert nothing_enqueued(client)


def test_values_at_the_limits_go_through_a_worker_unchanged(client: Client, start_workers: WorkerFactory) -> None:
    start_workers(1)
    deepest = nested_list(limits.MAX_NESTING_DEPTH - 1)  # inside the args list: the limit exactly
    handle = client.submit(
        "pids.tasks:echo",
        deepest,
        task_id="t" * limits.MAX_ID_LENGTH,
        weight=limits.MAX_WEIGHT,
        priority=limits.MAX_PRIORITY,
        max_attempts=limits.MAX_ATTEMPTS,
        timeout=limits.MAX_TIMEOUT_SECONDS,
        position="z" * limits.MAX_POSITION_LENGTH,
    )
    assert handle.result(timeout=30) == deepest
    small = client.map(
        "pids.tasks:square",
        [3],
        batch_id="b" * limits.MAX_BATCH_ID_LENGTH,
        weight=limits.MIN_WEIGHT,
        priority=limits.MIN_PRIORITY,
        timeout=limits.MIN_TIMEOUT_SECONDS * 10_000,
    )
    assert small[0].result(timeout=30) == 9


def test_a_dunder_task_written_without_checks_is_dead_lettered_and_sleep_still_works(
    client: Client, start_workers: WorkerFactory
) -> None:
    start_workers(1)  # one process: a task that changed pids.tasks would change it for every later one
    enqueue_unchecked(client, "set", "pids.tasks:__setattr__", '["time",0]')
    enqueue_unchecked(client, "del", "pids.tasks:__delattr__", '["sleep"]')
    assert client.wait(["set", "del"], timeout=30) == {"set": TaskState.FAILED, "del": TaskState.FAILED}
    for task_id, name in [("set", "__setattr__"), ("del", "__delattr__")]:
        info = client.task_info(task_id)
        assert info.attempt == 1 and info.error.startswith("TaskFunctionError:")  # failed for good, never retried
        assert f"'{name}' is private" in info.error
    assert {t.id for t in client.dead_letters()} == {"set", "del"}
    assert client.submit("pids.tasks:sleep", 0.01).result(timeout=30) == 0.01
    assert client.map("pids.tasks:sleep", [0.0, 0.01])[1].result(timeout=30) == 0.01


def test_names_a_task_module_imports_are_refused_by_the_worker_for_good(
    client: Client, start_workers: WorkerFactory
) -> None:
    start_workers(1)
    imported = client.submit("pids.tasks:Any", 1, max_attempts=5)  # well-formed: only the worker can tell
    module = client.submit("pids.tasks:time", max_attempts=5)
    client.wait([imported, module], timeout=30)
    assert imported.status() is TaskState.FAILED and imported.info().attempt == 1
    assert "is not defined in 'pids.tasks' (it comes from 'typing')" in imported.info().error
    assert module.status() is TaskState.FAILED and "is a module" in module.info().error
    assert client.submit("pids.tasks:square", 7).result(timeout=30) == 49


def test_a_list_nested_990_deep_written_without_checks_fails_only_its_task(
    client: Client, start_workers: WorkerFactory
) -> None:
    (worker,) = start_workers(1)
    enqueue_unchecked(client, "deep", "pids.tasks:echo", "[" * 990 + "]" * 990)
    assert client.wait(["deep"], timeout=15) == {"deep": TaskState.FAILED}
    assert "args nests deeper than" in client.task_info("deep").error
    assert worker.poll() is None
    assert client.submit("pids.tasks:square", 3).result(timeout=30) == 9


def pids_submit(redis_server: EmbeddedRedis, cluster: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pids", "submit", "--redis-url", redis_server.url, "--cluster", cluster, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["pids.tasks:echo", "[" * 990 + "]" * 990], "argument 1 nests deeper than 100 levels"),
        (["pids.tasks:echo", "1", "[1, 2"], "argument 2 is not valid JSON"),
        (["pids.tasks:echo", "--kwargs", "[1]"], "kwargs must be a dict with string keys"),
        (["pids.tasks:echo", "--kwargs", '{"v": ' + "[" * 990 + "]" * 990 + "}"], "--kwargs nests deeper than 100"),
        (["pids.tasks:noop", "--max-attempts", "0"], "max_attempts must be an integer in [1, 100], got 0"),
        (["pids.tasks:noop", "--max-attempts", "1000"], "max_attempts must be an integer in [1, 100]"),
        (["pids.tasks:noop", "--weight", "1e308"], "weight must be a number in [1e-06, 1e+06], got 1e+308"),
        (["pids.tasks:noop", "--priority", "1000"], "priority must be an integer in [-100, 100]"),
        (["pids.tasks:noop", "--timeout", "nan"], "timeout must be a number in"),
        (["pids.tasks:noop", "--task-id", ""], "task_id must be 1 to 128"),
        (["pids.tasks:noop", "--task-id", "[/x]"], "got '[/x]'"),  # printed as text, not read as markup
        (["pids.tasks:noop", "--position", "a\tb"], "position must be a 'zone/node' string"),
        (["pids.tasks:__setattr__", "time", "0"], "'__setattr__' is private"),
    ],
)
def test_pids_submit_refuses_bad_input_with_exit_code_2(
    redis_server: EmbeddedRedis, cluster: str, client: Client, args: list[str], message: str
) -> None:
    out = pids_submit(redis_server, cluster, *args)
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    assert nothing_enqueued(client)


def test_pids_submit_keeps_plain_words_as_strings(
    redis_server: EmbeddedRedis, cluster: str, client: Client, start_workers: WorkerFactory
) -> None:
    start_workers(1)
    out = pids_submit(redis_server, cluster, "pids.tasks:echo", "hello", "--task-id", "word", "--wait", "30")
    assert out.returncode == 0 and out.stdout.split() == ["word", '"hello"'], out.stderr
