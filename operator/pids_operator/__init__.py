"""Kopf operator for PIDS: runs PidsClusters (Redis + workers) and enqueues PidsTasks."""

__version__ = "0.1.0"
