"""The worker's HTTP face: /healthz (fails when the claim loop is stuck), /readyz,
and Prometheus /metrics, served from a daemon thread."""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import accumulate

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, Info, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, InfoMetricFamily, Metric
from prometheus_client.utils import floatToGoString

CYCLE_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)  # s, of one claim cycle
_LOOP_COUNTERS = (  # (attribute, series, help) of what the claim loop counts
    ("claimed", "pids_tasks_claimed", "Tasks this worker claimed"),
    ("completed", "pids_tasks_completed", "Tasks completed successfully"),
    ("failed", "pids_tasks_failed", "Attempts that failed (retried or dead-lettered)"),
    ("retried", "pids_tasks_retried", "Failed attempts scheduled for another try"),
    ("stale", "pids_completions_stale", "Completions rejected by the fencing token"),
    ("redis_errors", "pids_redis_errors", "Redis calls of the claim loop that failed (any fault)"),
)


@dataclass
class WorkerMetrics:
    """Prometheus series of one worker, in a registry of its own.

    What the claim loop counts every cycle are plain numbers that only its thread changes, read
    when /metrics is scraped: no lock per count on the hot path."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    claimed: int = 0
    completed: int = 0
    failed: int = 0
    retried: int = 0
    stale: int = 0
    redis_errors: int = 0
    cycle_counts: list[int] = field(default_factory=lambda: [0] * (len(CYCLE_BUCKETS) + 1))  # the last: +Inf
    cycle_seconds: float = 0.0
    faults: dict[str, int] = field(default_factory=dict)  # Redis errors by kind (faults.Fault)
    redis_info: dict[str, str] = field(default_factory=dict)  # what kind of Redis (redis_info.RedisReport)

    def __post_init__(self) -> None:
        self.load = Gauge("pids_worker_load", "Sum of the weights of the tasks held", registry=self.registry)
        self.held = Gauge("pids_worker_held_tasks", "Tasks held (running or prefetched)", registry=self.registry)
        self.connected = Gauge("pids_redis_connected", "1 while the claim loop reaches Redis", registry=self.registry)
        self.memory_ratio = Gauge(
            "pids_redis_memory_ratio", "Redis used memory over maxmemory (0: no limit)", registry=self.registry
        )
        self.epoch_changes = Gauge(
            "pids_redis_epoch_changes", "Times this worker saw Redis come back without its data", registry=self.registry
        )
        self.swept = Gauge(
            "pids_tasks_swept",
            "Final tasks past their retention this worker's reaper turns deleted",
            registry=self.registry,
        )
        self.settings = Info(
            "pids_worker_settings", "The settings in effect (and the claim cycle's constants)", registry=self.registry
        )
        self.registry.register(_ClaimLoopCollector(self))

    def observe_cycle(self, seconds: float) -> None:
        """One claim cycle's duration, into pids_claim_cycle_seconds."""
        self.cycle_counts[bisect_left(CYCLE_BUCKETS, seconds)] += 1
        self.cycle_seconds += seconds


class _ClaimLoopCollector:
    """Renders the claim loop's plain counts as Prometheus counters and a histogram at scrape time."""

    def __init__(self, metrics: WorkerMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        for attribute, name, documentation in _LOOP_COUNTERS:
            yield CounterMetricFamily(name, documentation, value=getattr(m, attribute))
        faults = CounterMetricFamily("pids_redis_faults", "Redis calls that failed, by kind", labels=["kind"])
        for kind, count in sorted(dict(m.faults).items()):
            faults.add_metric([kind], count)
        yield faults
        if m.redis_info:
            info = InfoMetricFamily("pids_redis", "The Redis this worker runs on")
            info.add_metric([], dict(m.redis_info))
            yield info
        counts = list(m.cycle_counts)  # one read: the loop may add to it meanwhile
        bounds = [*map(floatToGoString, CYCLE_BUCKETS), "+Inf"]
        yield HistogramMetricFamily(
            "pids_claim_cycle_seconds",
            "Snapshot, plan and claim: one claim cycle",
            buckets=list(zip(bounds, accumulate(counts))),
            sum_value=m.cycle_seconds,
        )


class HealthServer:
    """Serves the probes from a callable that says whether the loop is alive and ready."""

    def __init__(
        self,
        port: int,
        metrics: WorkerMetrics,
        alive: Callable[[], tuple[bool, str]],
        ready: Callable[[], tuple[bool, str]],
        host: str = "127.0.0.1",
    ) -> None:
        metrics_registry = metrics.registry

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
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
