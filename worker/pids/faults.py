"""What went wrong with a call to Redis, and what it means for the worker: wait and try again
(Redis is away, loading, full, read-only after a failover, refusing the password), or a poison
reply or value that must be kept to one task. The claim loop never ends on any of them."""

from __future__ import annotations

import logging
import re
import time
from enum import Enum

import redis


class Fault(str, Enum):
    UNREACHABLE = "unreachable"  # connection refused, reset, timed out
    AUTH = "auth"  # wrong or missing password
    LOADING = "loading"  # Redis is loading its data set
    READONLY = "readonly"  # connected to a replica (after a failover)
    OOM = "oom"  # Redis is at maxmemory and refuses writes
    NOREPLICAS = "noreplicas"  # too few replicas to accept writes (min-replicas-to-write)
    SCRIPT = "script"  # a script raised: possibly one poison task or value in the call
    PROTOCOL = "protocol"  # a reply the worker could not make sense of
    UNKNOWN = "unknown"

    @property
    def transient(self) -> bool:
        """Waiting helps: the same call may succeed later, so nothing is given up."""
        return self in TRANSIENT

    @property
    def reconnect(self) -> bool:
        """The connection itself should be dropped (e.g. it points at a replica now)."""
        return self in (Fault.UNREACHABLE, Fault.READONLY, Fault.AUTH)


TRANSIENT = frozenset({Fault.UNREACHABLE, Fault.AUTH, Fault.LOADING, Fault.READONLY, Fault.OOM, Fault.NOREPLICAS})
ERROR_CODES = {
    "NOAUTH": Fault.AUTH,
    "WRONGPASS": Fault.AUTH,
    "NOPERM": Fault.AUTH,
    "LOADING": Fault.LOADING,
    "NOSCRIPT": Fault.LOADING,
    "READONLY": Fault.READONLY,
    "OOM": Fault.OOM,
    "NOREPLICAS": Fault.NOREPLICAS,
    "MASTERDOWN": Fault.NOREPLICAS,
}
# an error code at the start of a reply, or where a script passes on the error of a command it ran
# ("... @user_script: 143: -OOM command not allowed ...")
ERROR_CODE = re.compile(r"(?:^|[\s:]-?)(" + "|".join(ERROR_CODES) + r")\b")


def classify(exc: BaseException) -> Fault:
    if isinstance(exc, redis.AuthenticationError):
        return Fault.AUTH
    if isinstance(exc, redis.BusyLoadingError):
        return Fault.LOADING
    if isinstance(exc, redis.ReadOnlyError):
        return Fault.READONLY
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
        return Fault.UNREACHABLE
    if isinstance(exc, redis.ResponseError):
        found = ERROR_CODE.search(str(exc))
        return ERROR_CODES[found.group(1)] if found else Fault.SCRIPT
    if isinstance(exc, (ValueError, KeyError, IndexError, TypeError, UnicodeDecodeError)):
        return Fault.PROTOCOL
    return Fault.UNKNOWN


class FaultLog:
    """Clear, repeated log lines while a fault lasts: the first at once, then one every
    `every` seconds with how long it has lasted; one line when it ends."""

    def __init__(self, log: logging.Logger, every: float = 10.0) -> None:
        self.log = log
        self.every = every
        self.since: float | None = None
        self.last_line = 0.0
        self.fault: Fault | None = None

    def failed(self, fault: Fault, exc: BaseException, where: str, detail: str = "") -> None:
        now = time.monotonic()
        if self.since is None:
            self.since = now
        if fault != self.fault or now - self.last_line >= self.every:
            self.log.warning(
                "Redis %s (%s) %s for %.0fs: %s%s",
                fault.value,
                where,
                "still failing" if fault == self.fault else "failing",
                now - self.since,
                _short(exc),
                detail,
            )
            self.last_line, self.fault = now, fault

    def recovered(self) -> None:
        if self.since is not None:
            self.log.warning("Redis reachable again after %.1fs", time.monotonic() - self.since)
        self.since, self.fault = None, None

    @property
    def outage_seconds(self) -> float:
        return 0.0 if self.since is None else time.monotonic() - self.since


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) < 300 else text[:300] + "..."
