"""Limits on what a task may carry, and the checks that enforce them wherever a task comes
in (Client, `pids submit`, the operator) and where a worker decodes a claimed task.

Every violation raises TaskArgumentsError naming the field and the limit. A bool is never
a number here, although Python counts True as the int 1.
"""

from __future__ import annotations

import json
import numbers
import re
import reprlib
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from .errors import TaskArgumentsError

MIN_WEIGHT = 1e-6
MAX_WEIGHT = 1e6  # a worker's load is a sum of weights: bounded, it stays finite and exact enough
MIN_PRIORITY = -100
MAX_PRIORITY = 100  # the queue order is seq - priority * 2**40 in a double: exact within this
MAX_ATTEMPTS = 100  # the largest max_attempts
MIN_TIMEOUT_SECONDS = 0.001
MAX_TIMEOUT_SECONDS = 7 * 24 * 3600.0
MIN_RETENTION_SECONDS = 0.001
MAX_RETENTION_SECONDS = 10 * 365 * 24 * 3600.0  # as milliseconds, well inside what PEXPIRE takes
MAX_POSITION_LENGTH = 253  # a DNS name: positions come from node names and zones

MAX_ID_LENGTH = 128
MAX_BATCH_ID_LENGTH = 100  # leaves room for the "-<index>" of its tasks' ids
ID_CHARACTERS = "letters, digits and _ . - @ + = /"
ID_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@+=/-]*")  # ASCII: no key separator, brace or space

MAX_NESTING_DEPTH = 100  # levels of lists and objects, the outer args list included
MAX_ARGUMENTS_BYTES = 1 << 20  # args and kwargs of one task, as JSON text together

ITEM_KEYS = ("args", "kwargs", "weight", "position")  # what a batch item given as an object may hold

_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_CURLY_TO_SQUARE = str.maketrans("{}", "[]")
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 60, 60


class Item(NamedTuple):
    """A batch item taken apart: its call's arguments and the options it sets (None: the batch's)."""

    args: Sequence[Any]
    kwargs: Mapping[str, Any]
    weight: float | None
    position: str | None


def check_weight(value: object, field: str = "weight") -> float:
    return _real_in(value, field, MIN_WEIGHT, MAX_WEIGHT)


def check_priority(value: object, field: str = "priority") -> int:
    return _integer_in(value, field, MIN_PRIORITY, MAX_PRIORITY)


def check_max_attempts(value: object, field: str = "max_attempts") -> int:
    return _integer_in(value, field, 1, MAX_ATTEMPTS)


def check_timeout(value: object, field: str = "timeout") -> float | None:
    """Seconds a task may run, or None for no timeout."""
    return None if value is None else _real_in(value, field, MIN_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS)


def check_retention(value: object, field: str = "retention") -> float | None:
    """Seconds a final task's record and result stay, or None to keep them until deleted."""
    return None if value is None else _real_in(value, field, MIN_RETENTION_SECONDS, MAX_RETENTION_SECONDS)


def check_position(value: object, field: str = "position") -> str:
    """Where a task's data is, "zone/node" ("" for anywhere): printable UTF-8 text."""
    if not isinstance(value, str) or len(value) > MAX_POSITION_LENGTH or not value.isprintable():  # no lone surrogate
        raise TaskArgumentsError(
            f"{field} must be a 'zone/node' string of at most {MAX_POSITION_LENGTH} printable characters, got {value!r}"
        )
    return value


def check_task_id(value: object, field: str = "task_id") -> str:
    return _id(value, field, MAX_ID_LENGTH)


def check_batch_id(value: object, field: str = "batch_id") -> str:
    return _id(value, field, MAX_BATCH_ID_LENGTH)


def check_item(item: object) -> Item:
    """A batch item: a list of positional arguments, or an object with the keys of ITEM_KEYS.
    Its arguments' values are checked when they are encoded (encode_arguments)."""
    if isinstance(item, (list, tuple)):
        return Item(item, {}, None, None)
    if not isinstance(item, Mapping):
        raise TaskArgumentsError(f"must be a list of args or an object, not {type(item).__name__}")
    unknown = sorted(str(k) for k in item if k not in ITEM_KEYS)
    if unknown:
        raise TaskArgumentsError(f"unknown keys {unknown} (allowed: {', '.join(ITEM_KEYS)})")
    weight, position = item.get("weight"), item.get("position")
    return Item(
        item.get("args", ()),
        item.get("kwargs", {}),
        None if weight is None else check_weight(weight),
        None if position is None else check_position(position),
    )


def encode_arguments(args: object, kwargs: object, field: str = "") -> tuple[str, str]:
    """args and kwargs as the JSON texts a task stores, within the nesting and size limits.
    `field` prefixes the names in errors (e.g. "items[3]")."""
    prefix = f"{field}." if field else ""
    if not isinstance(args, (list, tuple)):
        raise TaskArgumentsError(f"{prefix}args must be a list of positional arguments, not {type(args).__name__}")
    if not isinstance(kwargs, Mapping) or not all(isinstance(k, str) for k in kwargs):
        raise TaskArgumentsError(f"{prefix}kwargs must be a dict with string keys, got {_short(kwargs)}")
    args_json = _encode(list(args), f"{prefix}args") if args else "[]"
    kwargs_json = _encode(dict(kwargs), f"{prefix}kwargs") if kwargs else "{}"
    _check_size(len(args_json) + len(kwargs_json), f"{prefix}args and kwargs")  # ASCII: one byte a character
    return args_json, kwargs_json


def decode_arguments(args_json: str | bytes, kwargs_json: str | bytes) -> tuple[list[Any], dict[str, Any]]:
    """A claimed task's args and kwargs from their stored JSON, under the limits submit enforces.

    For the worker: whatever wrote the task (an old client, a hand-made Redis entry), a bad
    value raises TaskArgumentsError (the task fails for good), never RecursionError or
    MemoryError in the worker."""
    args_text, kwargs_text = _text(args_json, "args"), _text(kwargs_json, "kwargs")
    _check_size(_utf8_length(args_text) + _utf8_length(kwargs_text), "args and kwargs")
    args = [] if args_text == "[]" else decode_json(args_text, "args")
    kwargs = {} if kwargs_text == "{}" else decode_json(kwargs_text, "kwargs")
    if not isinstance(args, list):
        raise TaskArgumentsError(f"args must be a JSON list, got {type(args).__name__}")
    if not isinstance(kwargs, dict):
        raise TaskArgumentsError(f"kwargs must be a JSON object, got {type(kwargs).__name__}")
    return args, kwargs


def decode_json(text: str, field: str) -> Any:
    """One JSON value from text, checked for size and nesting before it is parsed."""
    check_json_text(text, field)
    try:
        return json.loads(text)
    except ValueError as exc:  # JSONDecodeError, or an integer too long to convert
        raise TaskArgumentsError(f"{field} is not valid JSON: {exc}") from None
    except RecursionError:  # malformed text can nest deeper than the bracket count shows
        raise TaskArgumentsError(f"{field} nests deeper than {MAX_NESTING_DEPTH} levels") from None


def check_json_text(text: str, field: str) -> None:
    """JSON text within the size limit and nested at most MAX_NESTING_DEPTH deep; measured on
    the text, so a value too deep to parse is refused without parsing it."""
    _check_size(_utf8_length(text), field)
    if text.count("[") + text.count("{") <= MAX_NESTING_DEPTH:
        return
    # Only brackets outside strings count; {} and [] nest alike. Each pass removes the
    # innermost pairs, so a balanced text is empty after as many passes as it is deep.
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)).translate(_CURLY_TO_SQUARE)
    for _ in range(MAX_NESTING_DEPTH):
        if not brackets:
            return
        inner_removed = brackets.replace("[]", "")
        if len(inner_removed) == len(brackets):
            raise TaskArgumentsError(f"{field} is not valid JSON: unbalanced brackets")
        brackets = inner_removed
    if brackets:
        raise TaskArgumentsError(f"{field} nests deeper than {MAX_NESTING_DEPTH} levels")


def _encode(value: Any, field: str) -> str:
    try:
        text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TaskArgumentsError(f"{field} must be JSON-serialisable: {exc}") from None
    except RecursionError:
        raise TaskArgumentsError(f"{field} nests deeper than {MAX_NESTING_DEPTH} levels") from None
    check_json_text(text, field)
    return text


def _check_size(size: int, field: str) -> None:
    if size > MAX_ARGUMENTS_BYTES:
        raise TaskArgumentsError(f"{field}: {size} bytes as JSON, more than the {MAX_ARGUMENTS_BYTES} allowed")


def _real_in(value: object, field: str, low: float, high: float) -> float:
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and low <= float(value) <= high:  # NaN fails
        return float(value)
    raise TaskArgumentsError(f"{field} must be a number in [{low:g}, {high:g}], got {_short(value)}")


def _integer_in(value: object, field: str, low: int, high: int) -> int:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and low <= int(value) <= high:
        return int(value)
    raise TaskArgumentsError(f"{field} must be an integer in [{low}, {high}], got {_short(value)}")


def _id(value: object, field: str, max_length: int) -> str:
    if isinstance(value, str) and len(value) <= max_length and ID_PATTERN.fullmatch(value):
        return value
    raise TaskArgumentsError(
        f"{field} must be 1 to {max_length} {ID_CHARACTERS} (the first a letter, digit or _), got {_short(value)}"
    )


def _utf8_length(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _text(raw: str | bytes, field: str) -> str:
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TaskArgumentsError(f"{field} is not UTF-8 text: {exc}") from None


def _short(value: object) -> str:
    """A value for an error message: its repr (lone surrogates escaped), cut short and shallow."""
    return f"{_REPR.repr(value)} ({type(value).__name__})"
