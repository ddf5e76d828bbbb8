"""pids Clients per PidsCluster, cached in Kopf's memo.

Where a cluster's Redis is and its password are read from the API (the
PidsCluster and a Secret) at most once per `ttl` seconds per cluster; a
changed url or password builds a fresh Client.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .kube import Kube
from .spec import ClusterSpec
from .worker_manifests import ack_replicas, password_secret, worker_redis_url

ClientFactory = Callable[[str, str, "str | None", int], Any]


def pids_client(url: str, cluster: str, password: str | None, ack_replicas: int) -> Any:
    """The data plane's client (imported late: unit tests of the builders do not need it);
    with Sentinel, its enqueues wait for `ack_replicas` replicas."""
    from pids.client import Client

    if ack_replicas:
        return Client(url, cluster=cluster, password=password, ack_replicas=ack_replicas)
    return Client(url, cluster=cluster, password=password)


class RedisSecretMissing(Exception):
    """The Secret holding a cluster's Redis password does not exist (yet)."""


@dataclass
class _Entry:
    url: str
    password: str | None
    ack_replicas: int
    client: Any
    checked: float


@dataclass
class Connections:
    factory: ClientFactory = pids_client
    ttl: float = 30.0
    _entries: dict[tuple[str, str], _Entry] = field(default_factory=dict)

    def for_cluster(self, kube: Kube, cluster_body: Mapping[str, Any], now: float | None = None) -> Any:
        """The Client of a cluster whose body we hold."""
        now = time.monotonic() if now is None else now
        m = cluster_body["metadata"]
        key = (m["namespace"], m["name"])
        entry = self._entries.get(key)
        if entry is not None and now - entry.checked < self.ttl:
            return entry.client
        spec = ClusterSpec.parse(cluster_body.get("spec") or {})
        url = worker_redis_url(cluster_body, spec)
        secret, secret_key = password_secret(cluster_body, spec)
        password = None
        if secret:
            password = kube.secret_value(m["namespace"], secret, secret_key)
            if password is None:
                raise RedisSecretMissing(f"Secret {secret!r} (key {secret_key!r}) not found")
        return self.put(key, url, password, now, ack_replicas(spec))

    def for_name(self, kube: Kube, namespace: str, name: str) -> Any | None:
        """The Client of a cluster by name, or None if there is no such PidsCluster."""
        entry = self._entries.get((namespace, name))
        if entry is not None and time.monotonic() - entry.checked < self.ttl:
            return entry.client
        body = kube.cluster(namespace, name)
        return None if body is None else self.for_cluster(kube, body)

    def put(self, key: tuple[str, str], url: str, password: str | None, now: float, ack: int = 0) -> Any:
        entry = self._entries.get(key)
        if entry is None or (entry.url, entry.password, entry.ack_replicas) != (url, password, ack):
            self.drop(key)
            entry = _Entry(url, password, ack, self.factory(url, key[1], password, ack), now)
            self._entries[key] = entry
        entry.checked = now
        return entry.client

    def drop(self, key: tuple[str, str]) -> None:
        entry = self._entries.pop(key, None)
        close = getattr(entry.client, "close", None) if entry else None
        if callable(close):
            close()
