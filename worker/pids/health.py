"""The worker's HTTP face: /healthz (fails when the claim loop is stuck), /readyz,
and Prometheus /metrics, served from a daemon thread."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest


@dataclass
class WorkerMetrics:
    """Prometheus series of one worker, in a registry of its own."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.claimed = Counter("pids_tasks_claimed", "Tasks this worker claimed", registry=r)
        self.completed = Counter("pids_tasks_completed", "Tasks completed successfully", registry=r)
        self.failed = Counter("pids_tasks_failed", "Attempts that failed (retried or dead-lettered)", registry=r)
        self.retried = Counter("pids_tasks_retried", "Failed attempts scheduled for another try", registry=r)
        self.stale = Counter("pids_completions_stale", "Completions rejected by the fencing token", registry=r)
        self.claim_latency = Histogram(
            "pids_claim_cycle_seconds", "Snapshot, plan and claim: one claim cycle",
            buckets=(0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5), registry=r,
        )
        self.load = Gauge("pids_worker_load", "Sum of the weights of the tasks held", registry=r)
        self.held = Gauge("pids_worker_held_tasks", "Tasks held (running or prefetched)", registry=r)
        self.redis_errors = Counter("pids_redis_errors", "Redis calls that failed (connection lost)", registry=r)


class HealthServer:
    """Serves the probes from a callable that says whether the loop is alive and ready."""

    def __init__(self, port: int, metrics: WorkerMetrics, alive: Callable[[], tuple[bool, str]],
                 ready: Callable[[], tuple[bool, str]], host: str = "0.0.0.0") -> None:
        metrics_registry = metrics.registry

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.path == "/healthz":
                    self._probe(*alive())
                elif self.path == "/readyz":
                    self._probe(*ready())
                elif self.path == "/metrics":
                    self._send(200, generate_latest(metrics_registry), CONTENT_TYPE_LATEST)
                else:
                    self._send(404, b"not found\n", "text/plain")

            def _probe(self, ok: bool, reason: str) -> None:
                self._send(200 if ok else 503, (reason + "\n").encode(), "text/plain")

            def _send(self, code: int, body: bytes, content_type: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="pids-health", daemon=True)

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class LoopWatch:
    """Tracks when the claim loop last went round; stuck when that is too long ago."""

    def __init__(self, stuck_after: float) -> None:
        self.stuck_after = stuck_after
        self.last_tick = time.monotonic()
        self.task_since: float | None = None

    def tick(self) -> None:
        self.last_tick = time.monotonic()

    def running_task(self) -> LoopWatch:
        """`with watch.running_task():` the loop runs a task itself: alive however long that
        takes, as with a slot thread. (The watch is its own context manager: no generator per task.)"""
        return self

    def __enter__(self) -> None:
        self.task_since = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        self.task_since = None
        self.tick()

    def alive(self) -> tuple[bool, str]:
        task_since = self.task_since
        if task_since is not None:
            return True, f"ok: running a task for {time.monotonic() - task_since:.1f}s"
        age = time.monotonic() - self.last_tick
        if age > self.stuck_after:
            return False, f"claim loop stuck: last cycle {age:.1f}s ago (limit {self.stuck_after:.0f}s)"
        return True, f"ok: last cycle {age:.2f}s ago"
