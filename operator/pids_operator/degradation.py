"""Why a PidsCluster's workers cannot run, read from their pods: an image that cannot be
pulled, a container that keeps crashing (with its last words), a config it cannot start
with. Pure functions over pod dicts, for the status timer and its Degraded condition."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Container waiting reasons that do not fix themselves (ContainerCreating, PodInitializing do).
STUCK_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)
MAX_MESSAGE = 400  # of a container's last words, in a condition message


@dataclass(frozen=True)
class PodProblem:
    reason: str  # the container's waiting reason, e.g. ErrImageNeverPull
    pod: str
    message: str


def pod_problem(pod: Mapping[str, Any]) -> PodProblem | None:
    """The first container of the pod stuck in a reason from STUCK_REASONS, with what it said."""
    name = str(pod.get("metadata", {}).get("name", ""))
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    for status in statuses:
        waiting = (status.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason not in STUCK_REASONS:
            continue
        said = waiting.get("message") or ""
        if reason == "CrashLoopBackOff":  # the back-off message only repeats the reason: take the last run's
            said = last_words(status) or said
        return PodProblem(str(reason), name, _shorten(said))
    return None


def last_words(status: Mapping[str, Any]) -> str:
    """How a container's last run ended: its termination message (or log tail) and exit code."""
    terminated = (status.get("lastState") or {}).get("terminated") or {}
    if not terminated:
        return ""
    words = (terminated.get("message") or "").strip()
    code = terminated.get("exitCode")
    ended = f"exit code {code}" if code is not None else str(terminated.get("reason", "terminated"))
    return f"{words} ({ended})" if words else ended


def workers_problem(pods: Sequence[Mapping[str, Any]]) -> PodProblem | None:
    """One problem for the cluster: the most common among its worker pods, naming how many."""
    found = [p for p in map(pod_problem, pods) if p is not None]
    if not found:
        return None
    reasons = [p.reason for p in found]
    top = max(dict.fromkeys(reasons), key=reasons.count)  # the most common, first seen on a tie
    first = next(p for p in found if p.reason == top)
    count = reasons.count(top)
    who = f"pod {first.pod}" if count == 1 else f"{count} of {len(pods)} worker pods, e.g. {first.pod}"
    return PodProblem(top, first.pod, f"{top} ({who}): {first.message}" if first.message else f"{top} ({who})")


def newly_degraded(previous: Mapping[str, Any], status: Mapping[str, Any]) -> tuple[str, str] | None:
    """(reason, message) when the status turns Degraded, or Degraded for another reason: the
    moments worth a warning Event (not every status tick)."""
    now = _degraded(status)
    if now is None:
        return None
    before = _degraded(previous)
    return now if before is None or before[0] != now[0] else None


def _degraded(status: Mapping[str, Any]) -> tuple[str, str] | None:
    for c in status.get("conditions") or []:
        if c.get("type") == "Degraded" and c.get("status") == "True":
            return str(c.get("reason", "")), str(c.get("message", ""))
    return None


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE else "..." + text[-(MAX_MESSAGE - 3) :]
