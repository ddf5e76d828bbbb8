"""Kubernetes-style status conditions: set one, keeping lastTransitionTime
when its status did not change."""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable, Mapping

Condition = dict[str, Any]


def rfc3339(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


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
