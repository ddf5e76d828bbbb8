"""PIDS: a load- and locality-aware distributed task queue on Redis."""

__version__ = "0.1.0"
