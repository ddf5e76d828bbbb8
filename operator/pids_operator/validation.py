"""Checks the CRD schema cannot express: name lengths from child-name templates,
cross-object rules (a task's function against its cluster's allowedModules),
and the shape of batch items.

Each check returns Problems (reason, message) instead of raising, so handlers
can put every problem into one status condition.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Mapping

from pids.errors import ConfigError
from pids.settings import WorkerSettings

from .meta import MAX_CLUSTER_NAME
from .spec import ClusterSpec, TaskSpec
from .worker_manifests import settings_env

# Modules (and their submodules) whose callables give a task a shell, files or any code: a
# cluster may list them only with allowUnsafeModules (the CRD's CEL rule lists the same).
UNSAFE_MODULES = frozenset({
    "os", "posix", "nt", "subprocess", "builtins", "pty", "shutil", "importlib", "sys", "runpy", "code", "codeop",
    "ctypes", "multiprocessing", "pickle", "marshal", "socket", "pdb", "asyncio", "_posixsubprocess", "io", "pathlib",
    "tempfile",
})
FUNCTION_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
ITEM_KEYS = frozenset({"args", "kwargs", "weight", "position"})
MAX_REPORTED_ITEM_ERRORS = 5


@dataclass(frozen=True)
class Problem:
    reason: str
    message: str


def summary(problems: list[Problem]) -> str:
    return "; ".join(p.message for p in problems)


def validate_cluster(name: str, spec: ClusterSpec, known_policies: list[str] | None = None) -> list[Problem]:
    problems: list[Problem] = []
    if len(name) > MAX_CLUSTER_NAME:
        problems.append(
            Problem("NameTooLong", f"cluster name {name!r} is {len(name)} characters; at most {MAX_CLUSTER_NAME} fit the child and pod names")
        )
    a = spec.autoscaling
    if a.enabled and a.min_workers > a.max_workers:
        problems.append(Problem("InvalidAutoscaling", f"autoscaling.minWorkers {a.min_workers} > maxWorkers {a.max_workers}"))
    try:  # the worker's own checks, on the environment it would get
        WorkerSettings.from_env(settings_env(spec), worker_id="check")
    except ConfigError as e:
        problems.append(Problem("InvalidWorkerSettings", f"the workers would refuse these settings: {e}"))
    if spec.managed_redis is not None and spec.external_redis is not None:
        problems.append(Problem("InvalidRedis", "set exactly one of redis.managed and redis.external"))
    if spec.external_redis is not None:
        if "@" in spec.external_redis.url:
            problems.append(Problem("InvalidRedis", "redis.external.url must not carry credentials; use passwordSecretRef"))
        if not spec.external_redis.url.startswith(("redis://", "rediss://")):
            problems.append(Problem("InvalidRedis", "redis.external.url must start with redis:// or rediss://"))
    unsafe = [m for m in spec.allowed_modules if m.split(".")[0] in UNSAFE_MODULES]
    if unsafe and not spec.allow_unsafe_modules:
        problems.append(Problem("UnsafeModules", f"allowedModules {', '.join(unsafe)} give tasks a shell, files or "
                                                 "arbitrary code; set allowUnsafeModules: true to allow them"))
    if known_policies and spec.policy not in known_policies:
        problems.append(
            Problem("UnknownPolicy", f"physics.policy {spec.policy!r} is not one of {', '.join(known_policies)}")
        )
    return problems


def module_allowed(module: str, allowed: tuple[str, ...] | list[str]) -> bool:
    """A module is allowed if it is listed, or is a submodule of a listed one."""
    return any(module == a or module.startswith(a + ".") for a in allowed)


def validate_task(spec: TaskSpec, cluster: ClusterSpec | None) -> list[Problem]:
    """Problems that make the task impossible to enqueue; an empty list means go."""
    if cluster is None:
        return [Problem("ClusterNotFound", f"PidsCluster {spec.cluster!r} does not exist in this namespace")]
    if not FUNCTION_RE.match(spec.function):
        return [Problem("InvalidFunction", f"function {spec.function!r} is not of the form module:callable")]
    problems: list[Problem] = []
    if not module_allowed(spec.module, cluster.allowed_modules):
        problems.append(
            Problem(
                "FunctionNotAllowed",
                f"module {spec.module!r} is not in the cluster's allowedModules ({', '.join(cluster.allowed_modules)})",
            )
        )
    if spec.is_batch:
        if spec.args or spec.kwargs:
            problems.append(Problem("InvalidArguments", "set either items (a batch) or args/kwargs (one call), not both"))
        problems += validate_items(spec.items or [])
    elif not _json_ok([spec.args, spec.kwargs]):
        problems.append(Problem("InvalidArguments", "args/kwargs are not JSON-serialisable"))
    return problems


def validate_items(items: list[Any]) -> list[Problem]:
    """Each item is a list of args, or an object with args/kwargs/weight/position only."""
    if not items:
        return [Problem("InvalidItems", "items is empty")]
    errors = [f"item {i}: {e}" for i, item in enumerate(items) if (e := _item_error(item))]
    if not errors:
        return []
    shown = errors[:MAX_REPORTED_ITEM_ERRORS]
    more = f" (and {len(errors) - len(shown)} more)" if len(errors) > len(shown) else ""
    return [Problem("InvalidItems", "; ".join(shown) + more)]


def _item_error(item: Any) -> str | None:
    if isinstance(item, list):
        return None
    if not isinstance(item, Mapping):
        return f"must be a list of args or an object, not {type(item).__name__}"
    unknown = set(item) - ITEM_KEYS
    if unknown:
        return f"unknown keys {sorted(unknown)} (allowed: {sorted(ITEM_KEYS)})"
    if "args" in item and not isinstance(item["args"], list):
        return "args must be a list"
    if "kwargs" in item and not isinstance(item["kwargs"], Mapping):
        return "kwargs must be an object"
    if "weight" in item:
        w = item["weight"]
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w <= 0:
            return "weight must be a positive number"
    if "position" in item and not isinstance(item["position"], str):
        return "position must be a string"
    return None


def _json_ok(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True
