"""Crash recovery on a real cluster (issue 6): a worker pod deleted mid-run, a
worker process SIGKILLed, and one frozen (SIGSTOP) so its liveness probe
fails. Every task still completes exactly once; the time from the kill to the
last completion and to a Ready replacement is measured.

The cluster keeps the worker's default timing (pids.settings: lease 30 s,
heartbeat 1 s, so a silent worker is declared dead by its peers after 3 s) and
drain (30 s).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from helpers_pids import (
    FIGURES,
    BatchCheck,
    RedisAccess,
    batch_task,
    check_batch,
    cluster_manifest,
    describe,
    docker,
    get,
    pod_ready,
    release,  # noqa: F401  (module fixture)
    restart_count,
    signal_container,
    wait_cluster_ready,
    wait_task_phase,
    wait_until,
    worker_pods,
    worker_selector,
)

pytestmark = pytest.mark.e2e
CLUSTER = "rec"
WORKERS = 3
N = 300  # sleep(0.2) each: about 10 s of work for 3 workers x 2 slots


@pytest.fixture(scope="module")
def rec(release) -> Any:  # noqa: F811
    k, ns = release.kubectl, release.namespace
    release.apply(cluster_manifest(CLUSTER, WORKERS, worker={"concurrency": 2}))
    wait_cluster_ready(k, ns, CLUSTER, WORKERS, timeout=240)
    access = RedisAccess(k, ns, CLUSTER)
    yield access
    access.close()


def start_batch(release, rec: RedisAccess, name: str) -> tuple[str, Any]:  # noqa: F811
    """Apply a batch of N sleep(0.2) and wait until a fifth of it is done."""
    k, ns = release.kubectl, release.namespace
    before = rec.call(lambda c: c.cluster_stats())
    k.apply(batch_task(name, CLUSTER, "pids.tasks:sleep", [[0.2]] * N, maxAttempts=5), "-n", ns)
    pt = k.json("get", "pidstask", name, "-n", ns)
    wait_until(
        lambda: rec.call(lambda c: c.cluster_stats()).succeeded - before.succeeded >= N // 5,
        90,
        f"{N // 5} tasks of {name} done",
        lambda: release.diag(f"pidstask/{name}"),
        interval=0.3,
    )
    return pt["metadata"]["uid"], before


def busiest_worker(k, ns, rec: RedisAccess) -> dict[str, Any]:
    """A Ready worker pod that holds tasks right now (so killing it orphans some)."""
    pods = {p["metadata"]["name"]: p for p in worker_pods(k, ns, CLUSTER) if pod_ready(p)}
    workers = rec.call(lambda c: c.cluster_stats()).workers
    held = sorted(((w.held, w.id) for w in workers if w.id in pods), reverse=True)
    assert held, f"no live worker pod in Redis' worker table: {[w.id for w in workers]} vs {list(pods)}"
    return pods[held[0][1]]


def finish_and_check(
    release,  # noqa: F811 - the module fixture's value, passed on by the tests
    rec: RedisAccess,
    name: str,
    batch_id: str,
    before: Any,
    t_kill: float,
    what: str,
) -> BatchCheck:
    k, ns = release.kubectl, release.namespace
    wait_task_phase(k, ns, name, timeout=240)
    check = check_batch(rec, batch_id, N, expected=lambda i: 0.2)
    after = rec.call(lambda c: c.cluster_stats())
    assert after.enqueued - before.enqueued == N, "tasks enqueued twice"
    assert after.succeeded - before.succeeded == N, (
        f"{after.succeeded - before.succeeded} completions recorded for {N} tasks: not exactly once"
    )
    assert after.failed == before.failed, "a task failed for good"
    FIGURES.record(
        f"{what} -> last task of the batch completed",
        check.last_finished - t_kill,
        f"(batch of {N} x sleep 0.2 s on {WORKERS} workers x 2 slots)",
    )
    if check.last_rerun_finished is not None:
        FIGURES.record(
            f"{what} -> its orphaned tasks re-run and completed",
            check.last_rerun_finished - t_kill,
            f"({check.reruns} task(s) needed a 2nd attempt)",
        )
    else:
        print(f"[figure] {what}: no task needed a second attempt (the worker finished what it held)")
    return check


def test_worker_pod_deleted_mid_run(release, rec):  # noqa: F811
    k, ns = release.kubectl, release.namespace
    batch_id, before = start_batch(release, rec, "pod-delete")
    victim = busiest_worker(k, ns, rec)
    name = victim["metadata"]["name"]
    t_kill = time.time()
    k("delete", "pod", name, "-n", ns, "--wait=false")

    def replacement_ready() -> bool:
        return sum(1 for p in worker_pods(k, ns, CLUSTER) if pod_ready(p) and p["metadata"]["name"] != name) >= WORKERS

    wait_until(
        replacement_ready,
        180,
        f"a replacement for worker pod {name} Ready",
        lambda: describe(k, ns, f"deployment/{CLUSTER}-workers"),
        interval=0.5,
    )
    FIGURES.record("worker pod deleted -> replacement pod Ready", time.time() - t_kill)
    finish_and_check(release, rec, "pod-delete", batch_id, before, t_kill, "worker pod deleted")


def _restarted_and_ready(k, ns, name: str, restarts_before: int) -> bool:
    pod = get(k, ns, "pod", name)
    return bool(pod) and restart_count(pod) > restarts_before and pod_ready(pod)


@pytest.mark.skipif(docker() is None, reason="needs docker to reach the kind node")
def test_worker_process_killed(release, rec):  # noqa: F811
    """kill -9 of the worker process: the container restarts; the new process
    (same worker id) and the operator (ContainerRestarted) release its claims."""
    k, ns = release.kubectl, release.namespace
    batch_id, before = start_batch(release, rec, "sigkill")
    victim = busiest_worker(k, ns, rec)
    name, restarts = victim["metadata"]["name"], restart_count(victim)
    t_kill = time.time()
    signal_container(victim, "worker", "KILL")
    wait_until(
        lambda: _restarted_and_ready(k, ns, name, restarts),
        180,
        f"worker pod {name} restarted and Ready",
        lambda: describe(k, ns, f"pod/{name}", logs_of=(worker_selector(CLUSTER),)),
        interval=0.5,
    )
    FIGURES.record("worker process SIGKILLed -> container restarted and Ready", time.time() - t_kill)
    finish_and_check(release, rec, "sigkill", batch_id, before, t_kill, "worker process SIGKILLed")


@pytest.mark.timeout(420)
@pytest.mark.skipif(docker() is None, reason="needs docker to reach the kind node")
def test_worker_frozen_fails_liveness(release, rec):  # noqa: F811
    """kill -STOP of the worker process: heartbeats stop (peers release its
    tasks after the 15 s heartbeat TTL), /healthz stops answering, the
    liveness probe fails and the kubelet restarts the container."""
    k, ns = release.kubectl, release.namespace
    batch_id, before = start_batch(release, rec, "sigstop")
    victim = busiest_worker(k, ns, rec)
    name, restarts = victim["metadata"]["name"], restart_count(victim)
    t_kill = time.time()
    signal_container(victim, "worker", "STOP")
    check = finish_and_check(release, rec, "sigstop", batch_id, before, t_kill, "worker process frozen (SIGSTOP)")
    wait_until(
        lambda: _restarted_and_ready(k, ns, name, restarts),
        300,
        f"frozen worker pod {name} restarted by its liveness probe and Ready",
        lambda: describe(k, ns, f"pod/{name}"),
        interval=1.0,
    )
    FIGURES.record("worker process frozen (SIGSTOP) -> liveness restart, Ready", time.time() - t_kill)
    events = k("get", "events", "-n", ns, "--field-selector", f"involvedObject.name={name}").stdout
    assert "Liveness probe failed" in events or "Unhealthy" in events, events
    assert check.claimed_by, check
