"""Kopf handlers: a few lines each (parse, validate, call an *_ops function, write status).

Importing this module registers them; __main__ runs Kopf.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import kopf
import redis
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from pids.errors import PidsError

from . import cluster_ops, meta, recovery, task_ops
from .conditions import merge_patch
from .config import OperatorConfig
from .kube import Kube
from .metrics import OperatorMetrics
from .redis_ops import RedisChanging
from .redis_status import degraded_by, describe_error, redis_events
from .spec import ClusterSpec, TaskSpec
from .state import OperatorState
from .task_status import TERMINAL_PHASES, problem_status, with_conditions
from .validation import summary, validate_cluster, validate_task

CONFIG = OperatorConfig.from_env()
CLUSTERS = (meta.GROUP, meta.VERSION, meta.CLUSTER_PLURAL)
TASKS = (meta.GROUP, meta.VERSION, meta.TASK_PLURAL)
WORKER_PODS = {meta.COMPONENT_LABEL: meta.WORKER, "app.kubernetes.io/part-of": meta.PART_OF}
CANCEL_GIVE_UP_AFTER = 5
log = logging.getLogger("pids_operator")


def _known_policies() -> list[str] | None:
    try:
        from pids.placement import policy_names
    except ImportError:
        return None
    return policy_names()


@kopf.on.startup()
def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = f"{meta.GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=meta.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=meta.GROUP, key="last-handled-configuration"
    )
    settings.watching.server_timeout = 300  # ask the API server to end each watch after 5 min...
    settings.watching.client_timeout = 330  # ...and give up on a stalled one soon after
    settings.watching.connect_timeout = 30
    settings.execution.max_workers = 16
    # Namespaced, the operator's Role cannot list namespaces or CRDs: skip that scanning.
    settings.scanning.disabled = not CONFIG.clusterwide
    settings.posting.level = logging.WARNING
    if CONFIG.peering:  # several replicas: only the highest-priority one acts
        settings.peering.name = CONFIG.peering
        settings.peering.mandatory = True
    try:
        k8s_config.load_incluster_config()
    except k8s_config.ConfigException:
        k8s_config.load_kube_config()
    metrics = OperatorMetrics()
    try:
        metrics.serve(CONFIG.metrics_port)
    except OSError as e:  # metrics are worth less than a running operator
        log.warning("operator metrics not served on port %d: %s", CONFIG.metrics_port, e)
    memo.pids = OperatorState(config=CONFIG, kube=Kube(k8s.ApiClient()), metrics=metrics)


@kopf.on.create(*CLUSTERS, id="reconcile")
@kopf.on.update(*CLUSTERS, id="reconcile")
@kopf.on.resume(*CLUSTERS, id="reconcile")
def reconcile_cluster(
    body: kopf.Body, spec: kopf.Spec, name: str, namespace: str | None, patch: kopf.Patch, memo: kopf.Memo, **_: Any
) -> None:
    namespace = namespaced(namespace)
    state: OperatorState = memo.pids
    with state.metrics.track("PidsCluster", "reconcile"):
        parsed = ClusterSpec.parse(spec)
        problems = validate_cluster(name, parsed, _known_policies())
        if problems:
            patch.status["phase"] = "Degraded"
            patch.status["conditions"] = [
                {"type": "Degraded", "status": "True", "reason": problems[0].reason, "message": summary(problems)}
            ]
            kopf.warn(body, reason=problems[0].reason, message=summary(problems))
            raise kopf.PermanentError(summary(problems))
        try:
            replicas = cluster_ops.reconcile(state.kube, body, parsed)
        except RedisChanging as e:
            raise kopf.TemporaryError(str(e), delay=3) from e
        state.set_cluster((namespace, name), True)
        previous = body.get("status") or {}
        status = cluster_ops.refresh(state.kube, state.connections, body, parsed, previous)
        patch.status.update(status)
        _warn_redis_events(state, body, previous, status)
        unreachable = degraded_by(status, "RedisUnreachable")
        if parsed.external_redis is not None and unreachable:
            raise kopf.TemporaryError(f"external Redis unreachable: {unreachable}", delay=30)
        log.info("cluster %s/%s reconciled with %d workers", namespace, name, replicas)


def namespaced(namespace: str | None) -> str:
    """The namespace kopf passes to the handlers of our (namespaced) resources."""
    if namespace is None:
        raise kopf.PermanentError("PidsCluster and PidsTask are namespaced; kopf passed no namespace")
    return namespace


def _warn_redis_events(
    state: OperatorState, body: kopf.Body, previous: Mapping[str, Any], status: Mapping[str, Any]
) -> None:
    for reason, message in redis_events(previous, status):
        state.warn(body, reason, message)


@kopf.timer(*CLUSTERS, id="status", interval=CONFIG.cluster_interval, initial_delay=5)
def cluster_status(
    body: kopf.Body, spec: kopf.Spec, name: str, status: kopf.Status, patch: kopf.Patch, memo: kopf.Memo, **_: Any
) -> None:
    state: OperatorState = memo.pids
    with state.metrics.track("PidsCluster", "status"):
        parsed = ClusterSpec.parse(spec)
        if validate_cluster(name, parsed, _known_policies()):
            return  # the reconcile reported it (Degraded and an Event) and applied nothing
        new = cluster_ops.refresh(state.kube, state.connections, body, parsed, status)
        patch.status.update(merge_patch(status, new))
        _warn_redis_events(state, body, status, new)


@kopf.on.delete(*CLUSTERS, id="forget", optional=True)
def forget_cluster(name: str, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    namespace = namespaced(namespace)
    state: OperatorState = memo.pids
    state.connections.drop((namespace, name))
    state.set_cluster((namespace, name), False)


@kopf.on.create(*TASKS, id="enqueue")
def enqueue_task(
    body: kopf.Body,
    spec: kopf.Spec,
    uid: str,
    namespace: str | None,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    namespace = namespaced(namespace)
    state: OperatorState = memo.pids
    with state.metrics.track("PidsTask", "enqueue"):
        task = TaskSpec.parse(spec)
        cluster_body = state.kube.cluster(namespace, task.cluster)
        generation = body["metadata"].get("generation")
        problems = validate_task(task, ClusterSpec.parse(cluster_body["spec"]) if cluster_body else None)
        if problems:
            patch.status.update(problem_status(problems[0].reason, summary(problems), status, generation, time.time()))
            if problems[0].reason == "ClusterNotFound":  # it may be created in a moment
                patch.status["phase"] = "Pending"
                raise kopf.TemporaryError(summary(problems), delay=30)
            state.set_task_phase(uid, "Failed")
            raise kopf.PermanentError(summary(problems))
        assert cluster_body is not None  # validate_task reported a missing cluster above
        try:
            client = state.connections.for_cluster(state.kube, cluster_body)
            total = task_ops.enqueue(client, uid, task)
            epoch = str(client.epoch())
        except Exception as e:  # Redis down or starting: report and retry; enqueue is idempotent
            patch.status.update(phase="Pending", reason="RedisUnavailable", message=f"{type(e).__name__}: {e}")
            raise kopf.TemporaryError(f"enqueue failed: {e}", delay=15) from e
        patch.status.update(
            with_conditions(
                {
                    "phase": "Pending",
                    "reason": "Queued",
                    "message": f"{total} task(s) enqueued",
                    "taskId": uid,
                    "batch": task.is_batch,
                    "total": total,
                    "progress": f"0/{total}",
                    "epoch": epoch,
                },
                status,
                generation,
                time.time(),
            )
        )
        state.set_task_phase(uid, "Pending")


@kopf.on.resume(*TASKS, id="track")
def track_task(uid: str, status: kopf.Status, memo: kopf.Memo, **_: Any) -> None:
    """After an operator restart, count existing tasks in the tasks-by-phase metric."""
    if status.get("phase"):
        memo.pids.set_task_phase(uid, status["phase"])


def _following(status: kopf.Status, **_: Any) -> bool:
    return bool(status.get("taskId")) and status.get("phase") not in TERMINAL_PHASES


@kopf.timer(*TASKS, id="follow", interval=CONFIG.task_interval, initial_delay=2, when=_following)
def follow_task(
    body: kopf.Body,
    spec: kopf.Spec,
    uid: str,
    namespace: str | None,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    namespace = namespaced(namespace)
    state: OperatorState = memo.pids
    with state.metrics.track("PidsTask", "follow"):
        task = TaskSpec.parse(spec)
        client = state.connections.for_name(state.kube, namespace, task.cluster)
        if client is None:
            patch.status.update(
                problem_status(
                    "ClusterNotFound",
                    f"PidsCluster {task.cluster!r} was deleted",
                    status,
                    body["metadata"].get("generation"),
                    time.time(),
                )
            )
            return
        now = time.time()
        try:
            followed = task_ops.follow(client, task.cluster, uid, task, status, now)
        except (redis.RedisError, PidsError) as e:  # Redis away: say so, keep the last progress, look again
            patch.status.update(reason="RedisUnavailable", message=f"Redis unreachable: {describe_error(e)}")
            return
        new = with_conditions(followed.status, status, body["metadata"].get("generation"), now, followed.conditions)
        patch.status.update(merge_patch(status, new))
        state.set_task_phase(uid, followed.status["phase"])
        if followed.warning:
            state.warn(body, "Requeued", followed.warning)


@kopf.on.delete(*TASKS, id="cancel")
def cancel_task(
    spec: kopf.Spec, uid: str, namespace: str | None, status: kopf.Status, retry: int, memo: kopf.Memo, **_: Any
) -> None:
    namespace = namespaced(namespace)
    state: OperatorState = memo.pids
    state.set_task_phase(uid, None)
    if not status.get("taskId"):
        return
    task = TaskSpec.parse(spec)
    try:
        client = state.connections.for_name(state.kube, namespace, task.cluster)
        if client is not None:
            cancelled = task_ops.release(client, uid, task, finished=status.get("phase") in TERMINAL_PHASES)
            log.info("released the tasks of %s (%d cancelled)", uid, cancelled)
    except Exception as e:
        if retry >= CANCEL_GIVE_UP_AFTER:  # never block deletion forever on a dead Redis
            log.warning("giving up releasing %s after %d tries (its tasks stay in Redis): %s", uid, retry, e)
            return
        raise kopf.TemporaryError(f"release failed: {e}", delay=10) from e


@kopf.on.event("v1", "pods", labels=WORKER_PODS)
def worker_pod_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """Crash recovery: release a dead worker's claims at once."""
    state: OperatorState = memo.pids
    pod = event.get("object") or {}
    reason = recovery.release_reason(event.get("type"), pod, state.pods)
    if reason is None:
        return
    m = pod.get("metadata", {})
    cluster = (m.get("labels") or {}).get(meta.CLUSTER_LABEL)
    client = state.connections.for_name(state.kube, m.get("namespace", ""), cluster) if cluster else None
    if client is None:
        return
    with state.metrics.track("Pod", "release"):
        released = recovery.release(client, m["name"], reason)
    state.metrics.releases.labels(reason).inc()
    state.metrics.released_tasks.inc(released)
    log.info("worker %s: %s, released %d task(s)", m["name"], reason, released)
