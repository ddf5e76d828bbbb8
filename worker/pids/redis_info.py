"""What kind of Redis PIDS runs on: persistence, eviction policy, memory and role, read from
INFO (which needs no CONFIG permission; managed services often rename CONFIG)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

MEMORY_WARNING_RATIO = 0.8  # used / maxmemory above which workers and the operator warn
DEFAULT_MAX_BULK_BYTES = 512 * 2**20  # Redis' proto-max-bulk-len unless configured (or CONFIG refused)


@dataclass(frozen=True)
class RedisReport:
    version: str
    run_id: str
    role: str  # master | slave
    aof_enabled: bool
    appendfsync: str  # always | everysec | no | unknown (CONFIG refused)
    rdb_saves: bool  # RDB snapshots configured
    maxmemory: int  # bytes; 0 = no limit
    maxmemory_policy: str
    used_memory: int
    max_bulk_bytes: int = DEFAULT_MAX_BULK_BYTES  # the largest value Redis accepts in one argument

    @property
    def evicting(self) -> bool:
        """Redis may silently drop keys (tasks!) when full."""
        return self.maxmemory_policy != "noeviction"

    @property
    def persistent(self) -> bool:
        return self.aof_enabled or self.rdb_saves

    @property
    def persistence(self) -> str:
        """aof-<fsync>, rdb or none."""
        if self.aof_enabled:
            return f"aof-{self.appendfsync}"
        return "rdb" if self.rdb_saves else "none"

    @property
    def memory_ratio(self) -> float | None:
        """Used memory over maxmemory (None without a limit)."""
        return self.used_memory / self.maxmemory if self.maxmemory else None

    def describe(self) -> str:
        limit = f"{self.maxmemory / 2**20:.0f} MiB" if self.maxmemory else "no limit"
        return (
            f"Redis {self.version} ({self.role}): persistence {self.persistence}, eviction "
            f"{self.maxmemory_policy}, memory {self.used_memory / 2**20:.1f} MiB of {limit}"
        )


def inspect(client: redis.Redis) -> RedisReport:
    info: dict[str, Any] = {}
    for section in ("server", "persistence", "memory", "replication"):
        info.update(client.info(section))
    try:
        appendfsync = str(client.config_get("appendfsync").get("appendfsync", "unknown"))
        save = str(client.config_get("save").get("save", ""))
        max_bulk = int(client.config_get("proto-max-bulk-len").get("proto-max-bulk-len") or DEFAULT_MAX_BULK_BYTES)
    except redis.ResponseError:  # CONFIG renamed or not permitted
        appendfsync, save, max_bulk = "unknown", "", DEFAULT_MAX_BULK_BYTES
    return RedisReport(
        version=str(info.get("redis_version", "")),
        run_id=str(info.get("run_id", "")),
        role=str(info.get("role", "")),
        aof_enabled=bool(int(info.get("aof_enabled", 0))),
        appendfsync=appendfsync,
        rdb_saves=bool(save.strip()),
        maxmemory=int(info.get("maxmemory", 0)),
        maxmemory_policy=str(info.get("maxmemory_policy", "noeviction")),
        used_memory=int(info.get("used_memory", 0)),
        max_bulk_bytes=max_bulk,
    )
