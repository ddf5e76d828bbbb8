"""From a PidsTask or PidsCluster name to a pids Client. The cluster's connection Secret
(`<cluster>-app`, written by the operator) names the Redis Service and holds the password; a
port-forward through the API server reaches the Service, so no network route to Redis is needed."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import redis

from pids_operator import app_secret, meta

from ..client import Client
from ..connection import SentinelAddress, is_sentinel_url, parse_sentinel_url
from ..errors import PidsError, RedisUnavailable, TaskNotFound
from ..wire import text
from .kubectl import Kubectl, ObjectNotFound, PortForward


class TaskNotEnqueued(PidsError):
    """The PidsTask exists but the operator has not put it in Redis (yet)."""


@dataclass(frozen=True)
class TaskRef:
    """A PidsTask and where its tasks are: the cluster, and the task or batch id (its uid)."""

    name: str
    cluster: str
    task_id: str
    batch: bool
    body: dict[str, Any]

    @property
    def spec(self) -> dict[str, Any]:
        return self.body.get("spec") or {}

    @property
    def status(self) -> dict[str, Any]:
        return self.body.get("status") or {}


def pids_task(kubectl: Kubectl, name: str) -> TaskRef:
    body = kubectl.get("pidstask", name)
    status = body.get("status") or {}
    if not status.get("taskId"):
        detail = ": ".join(str(status[k]) for k in ("reason", "message") if status.get(k))
        raise TaskNotEnqueued(
            f"PidsTask {name!r} is not enqueued (phase {status.get('phase') or 'none yet'}"
            + (f"; {detail})" if detail else ")")
        )
    cluster = ((body.get("spec") or {}).get("clusterRef") or {}).get("name", "")
    return TaskRef(name, cluster, str(status["taskId"]), bool(status.get("batch")), body)


def task_ids(client: Client, task: TaskRef) -> list[str]:
    """The ids of the PidsTask's tasks in item order: <batch id>-<i>, or the one task id."""
    if not task.batch:
        return [task.task_id]
    ids = client.batch_ids(task.task_id)
    if not ids:
        raise TaskNotFound(
            f"PidsTask {task.name!r}: batch {task.task_id} is not in the Redis of PidsCluster "
            f"{task.cluster!r} (its records expired after their retention, or Redis lost its data)"
        )
    return ids


def connection_details(kubectl: Kubectl, cluster: str) -> dict[str, str]:
    """The decoded keys of the cluster's connection Secret (after checking the cluster exists)."""
    kubectl.get("pidscluster", cluster)
    name = meta.child_name(cluster, "app-secret")
    try:
        secret = kubectl.get("secret", name)
    except ObjectNotFound:
        raise ObjectNotFound(
            f"no connection Secret {name!r} in namespace {kubectl.namespace!r}: the operator writes "
            f"it when it reconciles PidsCluster {cluster!r} and its Redis password exists"
        ) from None
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def in_cluster_service(host: str) -> tuple[str, str] | None:
    """(service, namespace) of a "<service>.<namespace>.svc[.<cluster domain>]" host, else None."""
    labels = host.split(".")
    if len(labels) >= 3 and labels[2] == "svc":
        return labels[0], labels[1]
    return None


def in_cluster_pod(host: str) -> tuple[str, str, str] | None:
    """(pod, headless service, namespace) of a "<pod>.<service>.<namespace>.svc[...]" host, else None."""
    labels = host.split(".")
    if len(labels) >= 4 and labels[3] == "svc":
        return labels[0], labels[1], labels[2]
    return None


def forward(stack: ExitStack, kubectl: Kubectl, target: str, port: int, cluster: str) -> int:
    """A local port reaching `target` for as long as `stack` is open."""
    try:
        return stack.enter_context(PortForward(kubectl, target, port))
    except RedisUnavailable as exc:
        raise RedisUnavailable(f"the Redis of PidsCluster {cluster!r} is unreachable: {exc}") from None


def local_url(stack: ExitStack, kubectl: Kubectl, cluster: str, details: dict[str, str]) -> tuple[str, str]:
    """A URL of the cluster's Redis that works from here, and how it is reached (for errors): a
    port-forward to its Service, or with Sentinel to the primary's pod; an address outside the
    cluster as it is."""
    url, host, port = details[app_secret.URL], details[app_secret.HOST], int(details[app_secret.PORT_KEY])
    if is_sentinel_url(url):
        return primary_url(stack, kubectl, cluster, parse_sentinel_url(url), details[app_secret.PASSWORD] or None)
    service = in_cluster_service(host)
    if service is None:
        return url, f"at {host}:{port}"
    name, namespace = service
    local = forward(stack, replace(kubectl, namespace=namespace), f"svc/{name}", port, cluster)
    parts = urlsplit(url)
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://127.0.0.1:{local}{parts.path}{query}", f"through a port-forward to svc/{name}"


def primary_url(
    stack: ExitStack, kubectl: Kubectl, cluster: str, address: SentinelAddress, password: str | None
) -> tuple[str, str]:
    """HA: ask any Sentinel (through the pods' headless Service) which pod is the primary, and
    forward to that pod; Sentinels outside the cluster are used as they are."""
    host, port = address.sentinels[0]
    pod = in_cluster_pod(host)
    if pod is None:
        return address.url, "through its Sentinels"
    _, service, namespace = pod
    kubectl = replace(kubectl, namespace=namespace)
    local = forward(stack, kubectl, f"svc/{service}", port, cluster)
    sentinel = redis.Redis("127.0.0.1", local, password=password if address.authenticate else None, socket_timeout=10)
    try:
        primary = sentinel.sentinel_get_master_addr_by_name(address.service)
    except redis.RedisError as exc:
        raise RedisUnavailable(f"the Sentinels of PidsCluster {cluster!r} did not answer: {exc}") from None
    finally:
        sentinel.close()
    if not isinstance(primary, tuple):
        raise RedisUnavailable(f"the Sentinels of PidsCluster {cluster!r} know no primary {address.service!r} (yet)")
    primary_host, primary_port = text(primary[0]), int(primary[1])
    primary_pod = in_cluster_pod(primary_host)
    name = primary_pod[0] if primary_pod else pod_with_ip(kubectl, primary_host, cluster)
    local = forward(stack, kubectl, f"pod/{name}", primary_port, cluster)
    return f"redis://127.0.0.1:{local}/{address.db}", f"through a port-forward to pod/{name} (the primary)"


def pod_with_ip(kubectl: Kubectl, ip: str, cluster: str) -> str:
    """The Redis pod of `cluster` with this IP (a Sentinel that announces addresses, not names)."""
    for pod in kubectl.select("pods", meta.selector_string(meta.selector_labels(cluster, meta.REDIS))):
        if (pod.get("status") or {}).get("podIP") == ip:
            return str(pod["metadata"]["name"])
    raise RedisUnavailable(f"the Sentinels of PidsCluster {cluster!r} name a primary at {ip}, which is no Redis pod")


@contextmanager
def cluster_client(kubectl: Kubectl, cluster: str) -> Iterator[Client]:
    """A Client of the PidsCluster's Redis (local_url), checked with a PING."""
    details = connection_details(kubectl, cluster)
    with ExitStack() as stack:
        url, route = local_url(stack, kubectl, cluster, details)
        client = Client(url, cluster=details[app_secret.CLUSTER], password=details[app_secret.PASSWORD] or None)
        try:
            client.redis.ping()
        except redis.AuthenticationError as exc:
            raise RedisUnavailable(
                f"the Redis of PidsCluster {cluster!r} refused the password in Secret "
                f"{meta.child_name(cluster, 'app-secret')!r}: {exc}"
            ) from None
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise RedisUnavailable(f"the Redis of PidsCluster {cluster!r} is unreachable {route}: {exc}") from None
        try:
            yield client
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise RedisUnavailable(f"lost the Redis of PidsCluster {cluster!r} ({route}): {exc}") from None
        finally:
            client.redis.close()
