"""Kopf operator for PIDS: runs PidsClusters (Redis + workers) and enqueues PidsTasks."""

from pids import __version__

__all__ = ["__version__"]
