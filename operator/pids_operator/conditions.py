"""Kubernetes-style status conditions: set one, keeping lastTransitionTime
when its status did not change."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

Condition = dict[str, Any]


def rfc3339(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(type_: str, ok: bool | None, reason: str, message: str = "") -> Condition:
    status = "Unknown" if ok is None else ("True" if ok else "False")
    return {"type": type_, "status": status, "reason": reason, "message": message}


def merge_conditions(
    previous: Iterable[Mapping[str, Any]] | None, new: list[Condition], generation: int | None, now: float
) -> list[Condition]:
    """The new conditions, in order, each stamped; transition time kept if status unchanged."""
    before = {c.get("type"): c for c in previous or []}
    out = []
    for c in new:
        old = before.get(c["type"])
        changed = old is None or old.get("status") != c["status"]
        stamped = {**c, "lastTransitionTime": rfc3339(now) if changed else old.get("lastTransitionTime", rfc3339(now))}  # type: ignore[union-attr]
        if generation is not None:
            stamped["observedGeneration"] = generation
        out.append(stamped)
    return out


def merge_patch(previous: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """`new` as a JSON merge patch over `previous`: keys of nested maps that
    disappeared (e.g. a state no task is in any more) are set to None, so they
    are removed instead of lingering with stale counts."""
    out = dict(new)
    for key, value in new.items():
        old = previous.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            out[key] = {**{k: None for k in old if k not in value}, **merge_patch(old, value)}
    return out
