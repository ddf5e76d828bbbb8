"""The input rules of pids.limits as pure functions: types (a bool is never a number),
ranges, ids, nesting depth and size of arguments, batch items, and the worker's decoder."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from pids import limits
from pids.errors import TaskArgumentsError
from pids.functions import MAX_FUNCTION_LENGTH
from pids.limits import (
    MAX_ARGUMENTS_BYTES,
    MAX_NESTING_DEPTH,
    check_batch_id,
    check_item,
    check_max_attempts,
    check_position,
    check_priority,
    check_retention,
    check_task_id,
    check_timeout,
    check_weight,
    decode_arguments,
    decode_json,
    encode_arguments,
)
from tests.harness import nested_list

CRD = Path(__file__).resolve().parents[2] / "crds" / "pidstasks.pids.dev.yaml"


def nested_text(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("check", [check_weight, check_priority, check_max_attempts, check_timeout, check_retention])
@pytest.mark.parametrize("value", [True, False])
def test_a_bool_is_never_a_number(check: Any, value: bool) -> None:
    with pytest.raises(TaskArgumentsError, match="bool"):
        check(value)


@pytest.mark.parametrize(
    "check, value, name",
    [
        (check_weight, 1e308, "weight"),
        (check_weight, 0, "weight"),
        (check_weight, -1.0, "weight"),
        (check_weight, float("nan"), "weight"),
        (check_weight, float("inf"), "weight"),
        (check_weight, "1", "weight"),
        (check_weight, limits.MAX_WEIGHT * 1.01, "weight"),
        (check_weight, limits.MIN_WEIGHT / 2, "weight"),
        (check_priority, 101, "priority"),
        (check_priority, -101, "priority"),
        (check_priority, 1.0, "priority"),
        (check_priority, 10**100, "priority"),
        (check_max_attempts, 0, "max_attempts"),
        (check_max_attempts, 101, "max_attempts"),
        (check_max_attempts, 10**9, "max_attempts"),
        (check_max_attempts, 2.0, "max_attempts"),
        (check_timeout, 0, "timeout"),
        (check_timeout, 1e9, "timeout"),
        (check_timeout, float("nan"), "timeout"),
        (check_timeout, float("inf"), "timeout"),
        (check_timeout, "30", "timeout"),
        (check_retention, 0, "retention"),
        (check_retention, 1e308, "retention"),
        (check_retention, float("nan"), "retention"),
    ],
)
def test_numbers_outside_their_range_name_the_option_and_the_range(check: Any, value: object, name: str) -> None:
    with pytest.raises(TaskArgumentsError, match=rf"^{name} must be an? (number|integer) in \[.+, .+\], got "):
        check(value)


def test_numbers_at_the_edges_of_their_ranges_are_accepted() -> None:
    assert check_weight(limits.MIN_WEIGHT) == limits.MIN_WEIGHT and check_weight(limits.MAX_WEIGHT) == limits.MAX_WEIGHT
    assert check_weight(2) == 2.0 and isinstance(check_weight(2), float)
    assert (check_priority(limits.MIN_PRIORITY), check_priority(limits.MAX_PRIORITY)) == (-100, 100)
    assert (check_max_attempts(1), check_max_attempts(limits.MAX_ATTEMPTS)) == (1, 100)
    assert check_timeout(None) is None and check_timeout(limits.MAX_TIMEOUT_SECONDS) == limits.MAX_TIMEOUT_SECONDS
    assert (
        check_retention(None) is None and check_retention(limits.MAX_RETENTION_SECONDS) == limits.MAX_RETENTION_SECONDS
    )


def test_numpy_numbers_count_as_numbers() -> None:
    assert check_weight(np.float64(2.5)) == 2.5 and check_priority(np.int64(-3)) == -3
    assert check_max_attempts(np.int32(5)) == 5 and type(check_max_attempts(np.int32(5))) is int


@pytest.mark.parametrize(
    "task_id",
    [
        "t1",
        "cli-1",
        "0f8e4a3c9b2d",
        "6b1f0e0a-6f4e-4c5b-9a3e-2d1c0b9a8f7e",
        "job_1.2@host+x=y/z",
        "_leading_underscore",
        "a" * limits.MAX_ID_LENGTH,
    ],
)
def test_well_formed_ids_are_accepted(task_id: str) -> None:
    assert check_task_id(task_id) == task_id


@pytest.mark.parametrize(
    "task_id",
    [
        "",
        " ",
        "a b",
        "x}y",
        "{tag}",
        "a:b",
        "tab\there",
        "line\n",
        "\udc80",
        "caf\u00e9",
        "-starts-with-dash",
        ".hidden",
        "a" * (limits.MAX_ID_LENGTH + 1),
        None,
        7,
        b"bytes",
    ],
)
def test_ids_that_are_empty_unsafe_or_unencodable_are_refused(task_id: object) -> None:
    with pytest.raises(TaskArgumentsError, match=r"^task_id must be 1 to 128 "):
        check_task_id(task_id)


def test_batch_ids_leave_room_for_their_task_ids() -> None:
    longest = "b" * limits.MAX_BATCH_ID_LENGTH
    assert check_task_id(f"{longest}-{10**20}") and check_batch_id(longest) == longest
    with pytest.raises(TaskArgumentsError, match="batch_id must be 1 to 100"):
        check_batch_id(longest + "b")


@pytest.mark.parametrize("position", ["", "eu1/node-a", "/node-a", "zone\u00e9/n\u00f6de", "z" * 253])
def test_printable_positions_are_accepted(position: str) -> None:
    assert check_position(position) == position


@pytest.mark.parametrize("position", ["a\tb", "a\nb", "a\x00b", "z\udc80", "z" * 254, 3, None])
def test_positions_with_control_characters_lone_surrogates_or_too_long_are_refused(position: object) -> None:
    with pytest.raises(TaskArgumentsError, match="^position must be a 'zone/node' string of at most 253"):
        check_position(position)


def test_arguments_nested_to_the_limit_encode_and_one_level_more_is_refused() -> None:
    args_json, kwargs_json = encode_arguments(
        [nested_list(MAX_NESTING_DEPTH - 1)], {"k": nested_list(MAX_NESTING_DEPTH - 1)}
    )
    assert decode_arguments(args_json, kwargs_json) == (
        [nested_list(MAX_NESTING_DEPTH - 1)],
        {"k": nested_list(MAX_NESTING_DEPTH - 1)},
    )
    with pytest.raises(TaskArgumentsError, match=f"^args nests deeper than {MAX_NESTING_DEPTH} levels"):
        encode_arguments([nested_list(MAX_NESTING_DEPTH)], {})
    with pytest.raises(TaskArgumentsError, match=f"^kwargs nests deeper than {MAX_NESTING_DEPTH} levels"):
        encode_arguments([], {"k": nested_list(MAX_NESTING_DEPTH)})


@pytest.mark.parametrize("depth", [990, 5000, 100_000])
def test_arguments_nested_far_too_deep_are_refused_without_recursion_error(depth: int) -> None:
    with pytest.raises(TaskArgumentsError, match="^args nests deeper than"):
        encode_arguments([nested_list(depth)], {})


def test_arguments_larger_than_the_limit_are_refused_naming_the_size() -> None:
    half = "x" * (MAX_ARGUMENTS_BYTES // 2)
    with pytest.raises(
        TaskArgumentsError, match=f"^args and kwargs: {MAX_ARGUMENTS_BYTES + 12} bytes as JSON, more than"
    ):
        encode_arguments([half], {"k": half})
    args_json, kwargs_json = encode_arguments(["x" * (MAX_ARGUMENTS_BYTES - 6)], {})  # '["..."]' and '{}'
    assert len(args_json) + len(kwargs_json) == MAX_ARGUMENTS_BYTES
    assert decode_arguments(args_json, kwargs_json)[0] == ["x" * (MAX_ARGUMENTS_BYTES - 6)]


@pytest.mark.parametrize("kwargs", ["abc", [("a", 1)], [1], {1: 2}, {None: 1}, 5])
def test_kwargs_of_the_wrong_type_raise_task_arguments_error(kwargs: object) -> None:
    with pytest.raises(TaskArgumentsError, match="^kwargs must be a dict with string keys"):
        encode_arguments([], kwargs)


@pytest.mark.parametrize(
    "args, message",
    [
        ("abc", "args must be a list of positional arguments, not str"),
        ({"a": 1}, "args must be a list of positional arguments, not dict"),
        ([float("nan")], "args must be JSON-serialisable"),
        ([{1, 2}], "args must be JSON-serialisable"),
        ([10**5000], "args must be JSON-serialisable"),
    ],
)
def test_arguments_that_are_not_a_json_list_are_refused(args: object, message: str) -> None:
    with pytest.raises(TaskArgumentsError, match=f"^{message}"):
        encode_arguments(args, {})


def test_lone_surrogates_inside_arguments_survive_as_json_escapes() -> None:
    args_json, kwargs_json = encode_arguments(["\udc80"], {"k\udc81": "v"})
    assert args_json.isascii() and kwargs_json.isascii()
    assert decode_arguments(args_json, kwargs_json) == (["\udc80"], {"k\udc81": "v"})


def test_the_field_prefix_names_the_item() -> None:
    with pytest.raises(TaskArgumentsError, match=r"^items\[3\]\.args nests deeper"):
        encode_arguments([nested_list(500)], {}, "items[3]")


def test_a_claimed_task_decodes_to_its_args_and_kwargs() -> None:
    assert decode_arguments('[1,[2,{"a":null}]]', '{"k":"v"}') == ([1, [2, {"a": None}]], {"k": "v"})
    assert decode_arguments(b"[]", b"{}") == ([], {})
    assert decode_arguments(nested_text(MAX_NESTING_DEPTH), "{}")[0] == nested_list(MAX_NESTING_DEPTH)


@pytest.mark.parametrize(
    "args_json, kwargs_json, message",
    [
        (nested_text(990), "{}", "args nests deeper than 100 levels"),
        (nested_text(200_000), "{}", "args nests deeper than 100 levels"),
        ("[1]", '{"k":' + nested_text(101) + "}", "kwargs nests deeper than 100 levels"),
        ("[" * 5000, "{}", "args is not valid JSON: unbalanced brackets"),
        ("[" * 5 + "]" * 4, "{}", "args is not valid JSON"),
        ("[1,", "{}", "args is not valid JSON"),
        ('{"a":1}', "{}", "args must be a JSON list, got dict"),
        ("[]", "[1]", "kwargs must be a JSON object, got list"),
        ("[" + "9" * 5000 + "]", "{}", "args is not valid JSON"),
        (b'["\xff"]', "{}", "args is not UTF-8 text"),
        ('["' + "x" * MAX_ARGUMENTS_BYTES + '"]', "{}", "args and kwargs: 1048582 bytes as JSON, more than"),
    ],
)
def test_a_claimed_task_with_bad_arguments_raises_task_arguments_error(
    args_json: str | bytes, kwargs_json: str, message: str
) -> None:
    with pytest.raises(TaskArgumentsError, match=f"^{message}"):
        decode_arguments(args_json, kwargs_json)


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = json.dumps(["[" * 500, "{" * 500, 'a "quoted [[[" part \\ and more [[[['])
    assert decode_json(text, "args") == json.loads(text)


def reference_depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((reference_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((reference_depth(v) for v in value.values()), default=0)
    return 0


LEAVES: list[Any] = [
    1,
    2.5,
    None,
    True,
    "plain",
    'br[ck{ets"]',
    "back\\slash[",
    "\u00e9\udc80",
    [],
    {},
    ["x", {"y": "]"}],
]


def random_value(rng: random.Random, depth: int) -> Any:
    """A value exactly `depth` levels deep: a spine of lists and objects with shallow
    siblings (strings full of brackets, small containers) at every level."""
    value: Any = rng.choice(LEAVES[:8])
    for _ in range(depth):
        siblings = [rng.choice(LEAVES) for _ in range(rng.randint(0, 2))]
        if rng.random() < 0.5:
            value = [*siblings, value] if rng.random() < 0.5 else [value, *siblings]
        else:
            value = {**{f"k{i}[": s for i, s in enumerate(siblings)}, "spine{": value}
    return value


def test_the_text_depth_measure_agrees_with_the_depth_of_the_value() -> None:
    rng = random.Random(17)
    for _ in range(300):
        value = random_value(rng, rng.randint(MAX_NESTING_DEPTH - 3, MAX_NESTING_DEPTH + 3))
        depth = reference_depth(value)
        text = json.dumps(value, indent=rng.choice([None, 1]))
        if depth <= MAX_NESTING_DEPTH:
            assert decode_json(text, "v") == value
        else:
            with pytest.raises(TaskArgumentsError, match="nests deeper"):
                decode_json(text, "v")


def test_batch_items_are_lists_or_objects_with_known_keys() -> None:
    assert check_item([1, 2]) == ([1, 2], {}, None, None)
    assert check_item({"args": [1], "kwargs": {"k": 2}, "weight": 3, "position": "z/n"}) == ([1], {"k": 2}, 3.0, "z/n")
    assert check_item({}) == ((), {}, None, None)
    for bad, message in [
        (5, "must be a list of args or an object, not int"),
        ("xy", "must be a list of args or an object, not str"),
        ({"priority": 1}, r"unknown keys \['priority'\]"),
        ({"weight": True}, "weight must be a number"),
        ({"weight": 1e308}, "weight must be a number"),
        ({"position": "a\tb"}, "position must be"),
    ]:
        with pytest.raises(TaskArgumentsError, match=f"^{message}"):
            check_item(bad)


def test_the_crd_bounds_are_the_limits() -> None:
    (version,) = yaml.safe_load(CRD.read_text())["spec"]["versions"]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert (spec["weight"]["minimum"], spec["weight"]["maximum"]) == (limits.MIN_WEIGHT, limits.MAX_WEIGHT)
    assert (spec["priority"]["minimum"], spec["priority"]["maximum"]) == (limits.MIN_PRIORITY, limits.MAX_PRIORITY)
    assert (spec["maxAttempts"]["minimum"], spec["maxAttempts"]["maximum"]) == (1, limits.MAX_ATTEMPTS)
    assert (spec["timeoutSeconds"]["minimum"], spec["timeoutSeconds"]["maximum"]) == (
        limits.MIN_TIMEOUT_SECONDS,
        limits.MAX_TIMEOUT_SECONDS,
    )
    assert spec["position"]["maxLength"] == limits.MAX_POSITION_LENGTH
    assert spec["function"]["maxLength"] == MAX_FUNCTION_LENGTH
    assert not any("exclusiveMinimum" in spec[name] for name in ("weight", "priority", "maxAttempts", "timeoutSeconds"))
