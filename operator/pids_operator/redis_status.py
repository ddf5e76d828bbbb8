"""Pure computation of the Redis part of a PidsCluster's status: what Redis is (status.redis,
the RedisEphemeral condition) and whether it makes the cluster Degraded: unreachable, lost its
data (its epoch changed since the last look), or configured to evict keys."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .conditions import Condition, condition, rfc3339
from .degradation import newly_degraded
from .spec import ClusterSpec

# How long a cluster stays Degraded (RedisDataLost) after the operator noticed a data loss
DATA_LOSS_NOTICE_SECONDS = 600
EPHEMERAL_MESSAGE = (
    "Redis keeps its data in memory only: a restart of its pod loses every queued task and result "
    "(PidsTasks are re-enqueued from their objects; tasks submitted through the client are lost)"
)


ERROR_MESSAGE_LIMIT = 300


def describe_error(e: BaseException) -> str:
    """One short line for a status message: redis-py's errors can carry whole client reprs."""
    text = f"{type(e).__name__}: {e}".splitlines()[0].split(" : <", 1)[0]
    return text if len(text) <= ERROR_MESSAGE_LIMIT else text[: ERROR_MESSAGE_LIMIT - 3] + "..."


@dataclass(frozen=True)
class RedisObservation:
    """One look at the cluster's Redis (pids.redis_info's report, the epoch), or why it failed."""

    reachable: bool
    error: str = ""
    epoch: str = ""
    report: Any = None
    primary: str = ""  # host:port through Sentinel


@dataclass(frozen=True)
class RedisHealth:
    block: dict[str, Any]  # status.redis
    conditions: list[Condition]
    degraded: tuple[str, str] | None = None  # (reason, message)


def redis_mode(spec: ClusterSpec, persistent: bool | None) -> str:
    """One word for the printer column: how safe the data is."""
    managed = spec.managed_redis
    if managed is not None:
        base = "ha" if managed.sentinel else "durable"
        return base if managed.persistence else ("ha-ephemeral" if managed.sentinel else "ephemeral")
    external = spec.external_redis
    base = "external-sentinel" if external is not None and external.sentinel is not None else "external"
    return f"{base}-ephemeral" if persistent is False else base


def _report_fields(report: Any) -> dict[str, Any]:
    fields = {
        "persistence": getattr(report, "persistence", None),
        "evictionPolicy": getattr(report, "maxmemory_policy", None),
        "maxmemory": getattr(report, "maxmemory", None),
        "usedMemory": getattr(report, "used_memory", None),
        "role": getattr(report, "role", None),
    }
    return {
        k: (v if isinstance(v, int) and not isinstance(v, bool) else str(v)) for k, v in fields.items() if v is not None
    }


def _persistent(spec: ClusterSpec, report: Any, block: Mapping[str, Any]) -> bool | None:
    """From the spec (managed), this report, or the last one while Redis does not answer."""
    if spec.managed_redis is not None:
        return spec.managed_redis.persistence
    if report is not None:
        return bool(getattr(report, "persistent", False))
    return None if "persistence" not in block else block["persistence"] != "none"


def ephemeral_condition(spec: ClusterSpec, report: Any, previous: Mapping[str, Any]) -> Condition:
    persistent = _persistent(spec, report, previous)
    if persistent is None:
        return condition("RedisEphemeral", None, "RedisUnreachable", "Redis's persistence is not known yet")
    if not persistent:
        return condition("RedisEphemeral", True, "PersistenceDisabled", EPHEMERAL_MESSAGE)
    policy = previous.get("evictionPolicy") if report is None else getattr(report, "maxmemory_policy", "")
    described = getattr(report, "persistence", "") if report is not None else "append-only file"
    managed = spec.managed_redis
    if managed is not None:
        described = f"append-only file, appendfsync {managed.appendfsync}, on a PersistentVolumeClaim"
    return condition(
        "RedisEphemeral", False, "Persistent", f"persistence: {described}; maxmemory-policy: {policy or 'unknown'}"
    )


def redis_health(spec: ClusterSpec, previous: Mapping[str, Any], obs: RedisObservation, now: float) -> RedisHealth:
    """status.redis, the Redis conditions, and a Degraded reason if any."""
    block = {k: v for k, v in previous.items() if k != "mode"}
    if obs.reachable:
        block.update(_report_fields(obs.report))
        if obs.primary:
            block["primary"] = obs.primary
        before = str(previous.get("epoch") or "")
        if before and obs.epoch != before:
            block["lastDataLoss"] = {"at": rfc3339(now), "atUnix": now, "previousEpoch": before, "epoch": obs.epoch}
        block["epoch"] = obs.epoch
    block["mode"] = redis_mode(spec, _persistent(spec, obs.report if obs.reachable else None, block))
    conditions = [ephemeral_condition(spec, obs.report if obs.reachable else None, block)]
    return RedisHealth(block, conditions, _degraded(obs, block, now))


def _degraded(obs: RedisObservation, block: Mapping[str, Any], now: float) -> tuple[str, str] | None:
    if not obs.reachable:
        return "RedisUnreachable", obs.error or "Redis does not answer"
    loss = block.get("lastDataLoss") or {}
    if loss and now - float(loss.get("atUnix", 0)) < DATA_LOSS_NOTICE_SECONDS:
        return "RedisDataLost", (
            f"Redis lost its data (noticed {loss.get('at')}, epoch {loss.get('previousEpoch')!r} -> {loss.get('epoch')!r}): "
            "PidsTasks are re-enqueued from their objects; tasks submitted through the client raise TaskLost"
        )
    if obs.report is not None and getattr(obs.report, "evicting", False):
        return "RedisEvicting", (
            f"maxmemory-policy is {getattr(obs.report, 'maxmemory_policy', '?')}: Redis may silently drop tasks when full; "
            "set maxmemory-policy noeviction"
        )
    return None


def redis_events(previous: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Warning Events (reason, message) for what just went wrong between two statuses: Degraded
    set or its reason changed (degradation.newly_degraded; RedisUnreachable only for a Redis seen
    before, not while a new one starts), RedisEphemeral set, a data loss noticed."""
    events = []
    degraded = newly_degraded(previous, new)
    never_reached = "role" not in (previous.get("redis") or {})
    if degraded is not None and not (degraded[0] == "RedisUnreachable" and never_reached):
        events.append(degraded)
    before = {c.get("type"): c for c in previous.get("conditions") or []}
    for c in new.get("conditions") or []:
        if (
            c["type"] == "RedisEphemeral"
            and c["status"] == "True"
            and (before.get(c["type"]) or {}).get("status") != "True"
        ):
            events.append((c["reason"], c["message"]))
    loss = (new.get("redis") or {}).get("lastDataLoss")
    if (
        loss
        and loss != (previous.get("redis") or {}).get("lastDataLoss")
        and not any(reason == "RedisDataLost" for reason, _ in events)
    ):
        events.append(("RedisDataLost", f"Redis lost its data (epoch {loss['previousEpoch']!r} -> {loss['epoch']!r})"))
    return events


def degraded_by(status: Mapping[str, Any], reason: str) -> str | None:
    """The Degraded condition's message if it is set for `reason`."""
    for c in status.get("conditions") or []:
        if c.get("type") == "Degraded" and c.get("status") == "True" and c.get("reason") == reason:
            return str(c.get("message", ""))
    return None
