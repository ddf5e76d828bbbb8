"""Checks the CRD schema cannot express: name lengths from child-name templates,
cross-object rules (a task's function against its cluster's allowedModules),
and a task's function, arguments, items and options by the rules every client
applies (pids.functions, pids.limits).

Each check returns Problems (reason, message) instead of raising, so handlers
can put every problem into one status condition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pids.connection import sentinel_host_port
from pids.errors import ConfigError, PidsError
from pids.functions import check_function, is_allowed
from pids.limits import check_item, encode_arguments
from pids.settings import WorkerSettings
from pids.task import TaskOptions

from .meta import MAX_CLUSTER_NAME
from .spec import ClusterSpec, ExternalRedis, TaskSpec
from .worker_manifests import settings_env

# Modules (and their submodules) whose callables give a task a shell, files or any code: a
# cluster may list them only with allowUnsafeModules (the CRD's CEL rule lists the same).
UNSAFE_MODULES = frozenset(
    {
        "os",
        "posix",
        "nt",
        "subprocess",
        "builtins",
        "pty",
        "shutil",
        "importlib",
        "sys",
        "runpy",
        "code",
        "codeop",
        "ctypes",
        "multiprocessing",
        "pickle",
        "marshal",
        "socket",
        "pdb",
        "asyncio",
        "_posixsubprocess",
        "io",
        "pathlib",
        "tempfile",
    }
)
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
            Problem(
                "NameTooLong",
                f"cluster name {name!r} is {len(name)} characters; at most {MAX_CLUSTER_NAME} fit the child and pod names",
            )
        )
    a = spec.autoscaling
    if a.enabled and a.min_workers > a.max_workers:
        problems.append(
            Problem("InvalidAutoscaling", f"autoscaling.minWorkers {a.min_workers} > maxWorkers {a.max_workers}")
        )
    try:  # the worker's own checks, on the environment it would get
        WorkerSettings.from_env(settings_env(spec), worker_id="check")
    except ConfigError as e:
        problems.append(Problem("InvalidWorkerSettings", f"the workers would refuse these settings: {e}"))
    if spec.managed_redis is not None and spec.external_redis is not None:
        problems.append(Problem("InvalidRedis", "set exactly one of redis.managed and redis.external"))
    if spec.external_redis is not None:
        problems += _external_redis_problems(spec.external_redis)
    managed = spec.managed_redis
    if managed is not None and spec.external_redis is None and managed.replicas == 2:
        problems.append(
            Problem(
                "InvalidRedis",
                "redis.managed.replicas must be 1 or at least 3: with 2, losing one pod leaves no Sentinel majority",
            )
        )
    if (
        managed is not None
        and managed.sentinel
        and max(managed.ha.ack_replicas, managed.ha.min_replicas_to_write) >= managed.replicas
    ):
        problems.append(
            Problem("InvalidRedis", "redis.managed.ha.ackReplicas and minReplicasToWrite must be smaller than replicas")
        )
    unsafe = [m for m in spec.allowed_modules if m.split(".")[0] in UNSAFE_MODULES]
    if unsafe and not spec.allow_unsafe_modules:
        problems.append(
            Problem(
                "UnsafeModules",
                f"allowedModules {', '.join(unsafe)} give tasks a shell, files or "
                "arbitrary code; set allowUnsafeModules: true to allow them",
            )
        )
    if known_policies and spec.policy not in known_policies:
        problems.append(
            Problem("UnknownPolicy", f"physics.policy {spec.policy!r} is not one of {', '.join(known_policies)}")
        )
    return problems


def _external_redis_problems(external: ExternalRedis) -> list[Problem]:
    if (external.sentinel is None) == (not external.url):
        return [Problem("InvalidRedis", "set exactly one of redis.external.url and redis.external.sentinel")]
    if external.sentinel is not None:
        try:
            for host in external.sentinel.hosts:
                sentinel_host_port(host)
        except ConfigError as e:
            return [Problem("InvalidRedis", f"redis.external.sentinel.hosts: {e}")]
        return [] if external.sentinel.hosts else [Problem("InvalidRedis", "redis.external.sentinel.hosts is empty")]
    problems = []
    if "@" in external.url:
        problems.append(Problem("InvalidRedis", "redis.external.url must not carry credentials; use passwordSecretRef"))
    if not external.url.startswith(("redis://", "rediss://")):
        problems.append(Problem("InvalidRedis", "redis.external.url must start with redis:// or rediss://"))
    return problems


def validate_task(spec: TaskSpec, cluster: ClusterSpec | None) -> list[Problem]:
    """Problems that make the task impossible to enqueue; an empty list means go."""
    if cluster is None:
        return [Problem("ClusterNotFound", f"PidsCluster {spec.cluster!r} does not exist in this namespace")]
    try:
        check_function(spec.function)
    except PidsError as exc:
        return [Problem("InvalidFunction", str(exc))]
    problems: list[Problem] = []
    if not is_allowed(spec.module, cluster.allowed_modules):
        problems.append(
            Problem(
                "FunctionNotAllowed",
                f"module {spec.module!r} is not in the cluster's allowedModules ({', '.join(cluster.allowed_modules)})",
            )
        )
    try:
        TaskOptions(
            weight=spec.weight,
            position=spec.position,
            priority=spec.priority,
            max_attempts=spec.max_attempts,
            timeout=spec.timeout,
        )
    except PidsError as exc:
        problems.append(Problem("InvalidOptions", str(exc)))
    if spec.is_batch:
        if spec.args or spec.kwargs:
            problems.append(
                Problem("InvalidArguments", "set either items (a batch) or args/kwargs (one call), not both")
            )
        problems += validate_items(spec.items or [])
    else:
        try:
            encode_arguments(spec.args, spec.kwargs)
        except PidsError as exc:
            problems.append(Problem("InvalidArguments", str(exc)))
    return problems


def validate_items(items: list[Any]) -> list[Problem]:
    """Each item is a list of args, or an object with args/kwargs/weight/position only,
    within the limits of one task's arguments."""
    if not items:
        return [Problem("InvalidItems", "items is empty")]
    errors = [f"item {i}: {e}" for i, item in enumerate(items) if (e := _item_error(item))]
    if not errors:
        return []
    shown = errors[:MAX_REPORTED_ITEM_ERRORS]
    more = f" (and {len(errors) - len(shown)} more)" if len(errors) > len(shown) else ""
    return [Problem("InvalidItems", "; ".join(shown) + more)]


def _item_error(item: Any) -> str | None:
    try:
        parts = check_item(item)
        encode_arguments(parts.args, parts.kwargs)
    except PidsError as exc:
        return str(exc)
    return None
