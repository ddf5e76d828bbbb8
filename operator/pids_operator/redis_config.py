"""How a managed Redis is configured: redis-server arguments, memory sizing, Sentinel settings.

Durable by default: an append-only file fsynced every second (or on every write), no
eviction (an evicted task is a lost task), and a maxmemory below the container's memory
limit, so Redis refuses writes with an error instead of being OOM-killed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from .spec import ManagedRedis

PORT = 6379
SENTINEL_PORT = 26379
SENTINEL_PRIMARY = "pids"  # the name the Sentinels monitor the primary under
DATA_DIR = "/data"
# Of the memory limit, what Redis may fill with data; the rest covers what maxmemory does not
# count: the fork of an AOF rewrite (copy-on-write), replication and AOF buffers, fragmentation.
MAXMEMORY_FRACTION = Decimal("0.7")
SENTINEL_FAILOVER_TIMEOUT_MS = 10000
DEFAULT_RESOURCES: dict[str, Any] = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}
SENTINEL_RESOURCES: dict[str, Any] = {"requests": {"cpu": "20m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}}

_SUFFIX = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)$")


def quantity_bytes(quantity: str | int) -> int:
    """A Kubernetes memory quantity ("1Gi", "512M", "1e9" is not accepted) in bytes."""
    m = _QUANTITY.match(str(quantity).strip())
    if m is None:
        raise ValueError(f"not a memory quantity: {quantity!r}")
    return int(Decimal(m.group(1)) * _SUFFIX[m.group(2)])


def resources(redis: ManagedRedis) -> dict[str, Any]:
    return dict(redis.resources) or DEFAULT_RESOURCES


def maxmemory_bytes(redis: ManagedRedis) -> int | None:
    """MAXMEMORY_FRACTION of the container's memory limit (else of its request); None without either."""
    res: Mapping[str, Any] = resources(redis)
    for part in ("limits", "requests"):
        memory = (res.get(part) or {}).get("memory")
        if memory is not None:
            return int(quantity_bytes(memory) * MAXMEMORY_FRACTION)
    return None


def redis_args(redis: ManagedRedis) -> list[str]:
    """redis-server's arguments; the password arrives by Kubernetes' $(VAR) expansion."""
    args = [
        "--port",
        str(PORT),
        "--bind",
        "0.0.0.0",
        "--protected-mode",
        "no",
        "--dir",
        DATA_DIR,
        "--requirepass",
        "$(REDISCLI_AUTH)",
        "--masterauth",
        "$(REDISCLI_AUTH)",
        "--maxmemory-policy",
        "noeviction",
        "--save",
        "",
    ]
    limit = maxmemory_bytes(redis)
    if limit is not None:
        args += ["--maxmemory", str(limit)]
    if redis.persistence:
        args += ["--appendonly", "yes", "--appendfsync", redis.appendfsync]
    else:
        args += ["--appendonly", "no"]
    if redis.sentinel:
        args += [
            "--min-replicas-to-write",
            str(redis.ha.min_replicas_to_write),
            "--min-replicas-max-lag",
            str(min_replicas_max_lag(redis)),
        ]
    return args


def min_replicas_max_lag(redis: ManagedRedis) -> int:
    """Seconds without a replica's acknowledgement after which the primary stops counting it:
    shorter than the Sentinels' down-after time, so a primary cut off (or frozen) long enough to
    be replaced refuses writes the new primary would never see."""
    return max(1, redis.ha.down_after_milliseconds // 1000 - 1)


def sentinel_quorum(redis: ManagedRedis) -> int:
    """Sentinels that must agree the primary is down: a majority, so one lost pod can fail over."""
    return redis.replicas // 2 + 1
