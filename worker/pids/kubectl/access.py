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
from ..errors import PidsError, RedisUnavailable, TaskNotFound
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


@contextmanager
def cluster_client(kubectl: Kubectl, cluster: str) -> Iterator[Client]:
    """A Client of the PidsCluster's Redis, through a port-forward to its Service (an external
    Redis outside the cluster is reached directly), checked with a PING."""
    details = connection_details(kubectl, cluster)
    url, password = details[app_secret.URL], details[app_secret.PASSWORD] or None
    service = in_cluster_service(details[app_secret.HOST])
    with ExitStack() as stack:
        route = f"at {details[app_secret.HOST]}:{details[app_secret.PORT_KEY]}"
        if service is not None:
            name, namespace = service
            forward = PortForward(replace(kubectl, namespace=namespace), name, int(details[app_secret.PORT_KEY]))
            try:
                local = stack.enter_context(forward)
            except RedisUnavailable as exc:
                raise RedisUnavailable(f"the Redis of PidsCluster {cluster!r} is unreachable: {exc}") from None
            parts = urlsplit(url)
            url = f"{parts.scheme}://127.0.0.1:{local}{parts.path}" + (f"?{parts.query}" if parts.query else "")
            route = f"through a port-forward to svc/{name}"
        client = Client(url, cluster=details[app_secret.CLUSTER], password=password)
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
