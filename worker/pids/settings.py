"""Worker settings: defaults, overridden by PIDS_* environment variables, then by CLI flags.

These defaults are the only ones: the operator writes a PIDS_* variable only for what a
PidsCluster's spec sets, and the CRD leaves these fields without defaults.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field, fields
from typing import Any

from .errors import ConfigError
from .execution import MAX_RESULT_BYTES
from .task import RETENTION_SECONDS, retention_ms
from .wire import VIEW

POOLS = ("process", "thread")
# Internal knobs, not settings (exported with them): of a claim cycle's window, how many places
# may go to the heaviest pending tasks heavier than 1; how many workers it sees is wire.VIEW.
HEAVIEST = 16
SECRET_FIELDS = frozenset({"redis_password"})


def env_var(name: str) -> str:
    """The environment variable of a setting: PIDS_<FIELD>."""
    return f"PIDS_{name.upper()}"


def _default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class WorkerSettings:
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_password: str | None = None  # from a Secret; overrides any password in the URL
    cluster: str = "default"
    worker_id: str = field(default_factory=_default_worker_id)
    concurrency: int = 4  # slots: tasks run at once
    prefetch: int = 0  # extra tasks claimed ahead of free slots (batched claims)
    speed: float = 1.0  # relative speed; capacity = concurrency x speed
    position: str = ""  # "zone/node"
    allowed_modules: tuple[str, ...] = ("pids.tasks",)
    policy: str = "gravity"
    G: float = 0.03  # see BENCHMARKS.md: near-FIFO online, LPT within a burst
    distance_offset: float = 1.0
    window: int = 64  # the most; each cycle reads ~4 tasks per slot of the cluster (worker.claim_window)
    lease_seconds: float = 30.0
    heartbeat_seconds: float = 1.0  # the heartbeat's TTL is 3 of these
    retry_backoff_seconds: float = 1.0  # doubled per attempt, with jitter
    drain_seconds: float = 30.0
    # A drain asked for through Redis (`pids drain`, the operator's scale-down): True = leave once
    # idle; False = stop claiming and stay, idle and not ready, until SIGTERM (under a Deployment,
    # an exiting container is restarted, so the operator removes the pod instead)
    exit_when_drained: bool = True
    health_port: int | None = None  # /healthz, /readyz, /metrics; None = off
    health_host: str = "127.0.0.1"  # where the health server listens (0.0.0.0 in a pod, for the kubelet)
    # process: each slot a child process (hard timeouts, a crashing or CPU-bound task harms only
    # itself); thread: slots are threads (less overhead per task, for I/O-bound work)
    pool: str = "process"
    max_result_bytes: int = MAX_RESULT_BYTES  # a larger result fails its task
    # dead-letter entries older than this are dropped, and completed tasks with this retention are
    # deleted by the reaper's sweep rather than by key expiry (0: kept)
    retention_seconds: float = RETENTION_SECONDS
    allow_evicting_redis: bool = False  # run on a Redis whose maxmemory-policy may drop keys (tasks!)
    ack_replicas: int = 0  # completions wait until this many replicas have them (HA Redis)

    def __post_init__(self) -> None:
        # "zone/node" with an unknown zone (Kubernetes gave an empty label) is just "node"
        object.__setattr__(self, "position", "/".join(p for p in self.position.split("/") if p))
        checks = [
            (self.concurrency >= 1, "concurrency must be >= 1"),
            (self.prefetch >= 0, "prefetch must be >= 0"),
            (self.speed > 0, "speed must be > 0"),
            (self.window >= 1, "window must be >= 1"),
            (self.G > 0, f"G must be > 0, got {self.G}"),
            (self.distance_offset > 0, f"distance offset must be > 0, got {self.distance_offset}"),
            (self.lease_seconds > 0, "lease must be > 0 seconds"),
            (self.heartbeat_seconds > 0, "heartbeat must be > 0 seconds"),
            (self.lease_seconds > self.heartbeat_seconds, "lease must be longer than the heartbeat interval"),
            (self.drain_seconds >= 0, "drain must be >= 0 seconds"),
            (bool(self.allowed_modules), "allowed modules must not be empty"),
            (self.pool in POOLS, f"pool must be one of {', '.join(POOLS)}, got {self.pool!r}"),
            (self.max_result_bytes >= 1, "max result bytes must be >= 1"),
            (self.retention_seconds >= 0, "retention must be >= 0 seconds (0: kept until deleted)"),
            (self.ack_replicas >= 0, "ack replicas must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    @property
    def heartbeat_ttl_seconds(self) -> float:
        return 3 * self.heartbeat_seconds

    @property
    def retention_ms(self) -> int | None:
        """The retention on the wire, as tasks carry it (None: kept until deleted)."""
        return retention_ms(self.retention_seconds) if self.retention_seconds > 0 else None

    @property
    def capacity(self) -> float:
        return self.concurrency * self.speed

    def effective(self) -> dict[str, Any]:
        """Every setting in effect and the claim cycle's constants; secrets left out and the Redis
        URL without credentials."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in SECRET_FIELDS}
        values["redis_url"] = _without_credentials(self.redis_url)
        values["allowed_modules"] = ",".join(self.allowed_modules)
        return {**values, "view": VIEW, "heaviest": HEAVIEST}

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> WorkerSettings:
        """Read PIDS_<FIELD> variables (upper-case field names), then apply non-None overrides."""
        environ = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(env_var(f.name))
            if raw is not None and raw != "":
                values[f.name] = _parse(f.name, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if isinstance(values.get("allowed_modules"), str):
            values["allowed_modules"] = _parse("allowed_modules", values["allowed_modules"])
        return cls(**values)


def _without_credentials(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else url


_INT = {"concurrency", "prefetch", "window", "health_port", "max_result_bytes", "ack_replicas"}
_BOOL = {"exit_when_drained", "allow_evicting_redis"}
_FLOAT = {
    "speed",
    "G",
    "distance_offset",
    "lease_seconds",
    "heartbeat_seconds",
    "retry_backoff_seconds",
    "drain_seconds",
    "retention_seconds",
}


def setting_type(name: str) -> type:
    """The Python type of a setting's value as given on a command line."""
    return int if name in _INT else float if name in _FLOAT else bool if name in _BOOL else str


def parse_setting(name: str, raw: str) -> Any:
    """A setting's value from its text (environment variable or flag)."""
    return _parse(name, raw)


def _parse(name: str, raw: str) -> Any:
    try:
        if name in _INT:
            return int(raw)
        if name in _FLOAT:
            return float(raw)
    except ValueError:
        raise ConfigError(f"{env_var(name)} must be a number, got {raw!r}") from None
    if name in _BOOL:
        if raw.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if raw.strip().lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{env_var(name)} must be true or false, got {raw!r}")
    if name == "allowed_modules":
        return tuple(m.strip() for m in raw.split(",") if m.strip())
    return raw
