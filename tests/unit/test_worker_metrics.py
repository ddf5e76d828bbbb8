"""The worker's /metrics: the claim loop's plain counts render as prometheus_client's own
Counter and Histogram would render them (pure logic)."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from pids.health import CYCLE_BUCKETS, WorkerMetrics


def series(registry: CollectorRegistry, prefix: str) -> list[str]:
    return [
        line
        for line in generate_latest(registry).decode().splitlines()
        if line.startswith(prefix) and "_created" not in line
    ]


def test_claim_cycle_histogram_matches_prometheus_clients_own() -> None:
    rng = random.Random(5)
    durations = [rng.choice([0.0, *CYCLE_BUCKETS, 2.0]) * rng.choice([0.5, 1.0, 1.0, 1.5]) for _ in range(500)]
    ours = WorkerMetrics()
    reference = CollectorRegistry()
    histogram = Histogram(
        "pids_claim_cycle_seconds",
        "Snapshot, plan and claim: one claim cycle",
        buckets=CYCLE_BUCKETS,
        registry=reference,
    )
    for seconds in durations:  # values on the bucket bounds included: le is inclusive
        ours.observe_cycle(seconds)
        histogram.observe(seconds)
    assert series(ours.registry, "pids_claim_cycle_seconds") == series(reference, "pids_claim_cycle_seconds")


def test_loop_counters_render_as_counters_with_their_totals() -> None:
    ours = WorkerMetrics()
    ours.claimed += 7
    ours.completed += 5
    ours.redis_errors += 1
    reference = CollectorRegistry()
    for name, value in (
        ("pids_tasks_claimed", 7),
        ("pids_tasks_completed", 5),
        ("pids_redis_errors", 1),
        ("pids_tasks_failed", 0),
    ):
        Counter(name, "help", registry=reference).inc(value)
        assert series(ours.registry, name + "_total") == series(reference, name + "_total")
