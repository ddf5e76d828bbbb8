"""The operator's own configuration, from environment variables the chart sets."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class OperatorConfig:
    namespaces: tuple[str, ...] = ()
    clusterwide: bool = False
    peering: str = ""
    metrics_port: int = 9090
    health_port: int = 8080
    cluster_interval: float = 10.0
    task_interval: float = 5.0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> OperatorConfig:
        e = dict(os.environ) if env is None else env
        namespaces = tuple(n.strip() for n in e.get("PIDS_OPERATOR_NAMESPACES", "").split(",") if n.strip())
        if not namespaces and e.get("POD_NAMESPACE"):
            namespaces = (e["POD_NAMESPACE"],)
        return cls(
            namespaces=namespaces,
            clusterwide=_flag(e.get("PIDS_OPERATOR_CLUSTERWIDE", "")),
            peering=e.get("PIDS_OPERATOR_PEERING", ""),
            metrics_port=int(e.get("PIDS_OPERATOR_METRICS_PORT", "9090")),
            health_port=int(e.get("PIDS_OPERATOR_HEALTH_PORT", "8080")),
            cluster_interval=float(e.get("PIDS_OPERATOR_CLUSTER_INTERVAL", "10")),
            task_interval=float(e.get("PIDS_OPERATOR_TASK_INTERVAL", "5")),
        )
