"""The connection Secret `<cluster>-app` that applications mount to reach a cluster's Redis,
like CloudNativePG's `<cluster>-app`: the URL with the password in it, its parts, and the PIDS
cluster name (the key prefix a Client needs)."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit, urlunsplit

from pids.connection import is_sentinel_url, parse_sentinel_url

from . import meta
from .meta import Body, Manifest
from .redis_config import PORT
from .spec import ClusterSpec
from .worker_manifests import password_secret, worker_redis_url

if TYPE_CHECKING:  # the kubectl plugin reads the key names without the kubernetes client installed
    from .kube import Kube

URL, HOST, PORT_KEY, PASSWORD, CLUSTER = "url", "host", "port", "password", "cluster"


def connection_details(owner: Body, spec: ClusterSpec, password: str | None) -> dict[str, str]:
    """url (with `password` in it, when there is one), host, port, password, cluster. Through
    Sentinel: the redis+sentinel:// URL as it is (it carries no credentials), the first Sentinel."""
    redis_url = worker_redis_url(owner, spec)
    if is_sentinel_url(redis_url):
        host, port = parse_sentinel_url(redis_url).sentinels[0]
        return {
            URL: redis_url,
            HOST: host,
            PORT_KEY: str(port),
            PASSWORD: password or "",
            CLUSTER: owner["metadata"]["name"],
        }
    parts = urlsplit(redis_url)
    host = parts.hostname or ""
    port = parts.port or PORT
    password = password if password is not None else (parts.password or "")
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    credentials = f"{quote(parts.username or '', safe='')}:{quote(password, safe='')}@" if password else ""
    url = urlunsplit((parts.scheme, credentials + address, parts.path, parts.query, ""))
    return {URL: url, HOST: host, PORT_KEY: str(port), PASSWORD: password, CLUSTER: owner["metadata"]["name"]}


def build_app_secret(owner: Body, spec: ClusterSpec, password: str | None) -> Manifest:
    details = connection_details(owner, spec, password)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta.object_meta(owner, "app-secret", meta.REDIS),
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in details.items()},
    }


def publish_app_secret(kube: Kube, owner: Body, spec: ClusterSpec) -> bool:
    """Apply the cluster's connection Secret; False while the password's Secret is missing."""
    secret, key = password_secret(owner, spec)
    password = kube.secret_value(owner["metadata"]["namespace"], secret, key) if secret else None
    if secret and password is None:
        return False
    kube.apply(build_app_secret(owner, spec, password))
    return True
