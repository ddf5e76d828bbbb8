"""The hardening every PIDS pod gets: non-root, read-only root fs, no capabilities.

Images run as uid 10001 and write only to mounted volumes (/tmp, /data).
"""

from __future__ import annotations

from typing import Any

UID = 10001


def pod_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": UID,
        "runAsGroup": UID,
        "fsGroup": UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": UID,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def tmp_volume(size: str = "256Mi") -> tuple[dict[str, Any], dict[str, Any]]:
    """An emptyDir for /tmp (and HOME): the (volume, volumeMount) pair."""
    return (
        {"name": "tmp", "emptyDir": {"sizeLimit": size}},
        {"name": "tmp", "mountPath": "/tmp"},
    )
