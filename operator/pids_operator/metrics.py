"""Prometheus metrics of the operator itself, on their own port.

One registry per operator process, created at startup and kept in the memo.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class OperatorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reconciles = Counter(
            "pids_operator_reconciles_total",
            "Handler runs by kind, handler and outcome.",
            ["kind", "handler", "outcome"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "pids_operator_reconcile_seconds",
            "Handler duration.",
            ["kind", "handler"],
            registry=self.registry,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.clusters = Gauge(
            "pids_operator_managed_clusters", "PidsClusters this operator manages.", registry=self.registry
        )
        self.tasks = Gauge("pids_operator_tasks", "PidsTasks by phase.", ["phase"], registry=self.registry)
        self.releases = Counter(
            "pids_operator_worker_releases_total",
            "Claims released after a worker pod died, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.released_tasks = Counter(
            "pids_operator_released_tasks_total", "Tasks put back to pending by crash recovery.", registry=self.registry
        )

    def serve(self, port: int) -> None:
        start_http_server(port, registry=self.registry)

    @contextmanager
    def track(self, kind: str, handler: str) -> Iterator[None]:
        """Counts and times one handler run; outcome is ok or the exception's class name."""
        start = time.perf_counter()
        outcome = "ok"
        try:
            yield
        except Exception as e:
            outcome = type(e).__name__
            raise
        finally:
            self.duration.labels(kind, handler).observe(time.perf_counter() - start)
            self.reconciles.labels(kind, handler, outcome).inc()
