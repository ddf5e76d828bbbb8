"""The few Kubernetes API calls the handlers make, over the official client.

Children are written with server-side apply (field manager "pids-operator"), so
reconciling is idempotent and leaves fields others own (HPA, kubectl) alone.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from . import meta
from .meta import Manifest

FIELD_MANAGER = "pids-operator"
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"


class Kube:
    """Typed API groups over one ApiClient; held in Kopf's memo."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.custom = client.CustomObjectsApi(api)

    def _methods(self, kind: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
        """(create, patch) for a namespaced kind."""
        table: dict[str, tuple[Any, str]] = {
            "Deployment": (self.apps, "deployment"),
            "StatefulSet": (self.apps, "stateful_set"),
            "Service": (self.core, "service"),
            "ConfigMap": (self.core, "config_map"),
            "Secret": (self.core, "secret"),
            "ServiceAccount": (self.core, "service_account"),
            "PersistentVolumeClaim": (self.core, "persistent_volume_claim"),
        }
        api, noun = table[kind]
        return getattr(api, f"create_namespaced_{noun}"), getattr(api, f"patch_namespaced_{noun}")

    def apply(self, manifest: Manifest) -> dict[str, Any]:
        """Server-side apply; returns the object as the server holds it."""
        _, patch = self._methods(manifest["kind"])
        m = manifest["metadata"]
        obj = patch(m["name"], m["namespace"], manifest, field_manager=FIELD_MANAGER, force=True, _content_type=APPLY)
        return self.api.sanitize_for_serialization(obj)  # type: ignore[no-any-return]

    def create_if_absent(self, manifest: Manifest) -> bool:
        """Create once (Secrets with generated passwords, PVCs); True if it was created."""
        create, _ = self._methods(manifest["kind"])
        try:
            create(manifest["metadata"]["namespace"], manifest, field_manager=FIELD_MANAGER)
        except ApiException as e:
            if e.status == 409:
                return False
            raise
        return True

    def delete(self, kind: str, namespace: str, name: str, orphan: bool = False) -> None:
        """Delete a child (gone already is fine); `orphan` keeps its pods and claims."""
        noun = {"Deployment": "deployment", "StatefulSet": "stateful_set"}[kind]
        body = client.V1DeleteOptions(propagation_policy="Orphan" if orphan else "Background")
        try:
            getattr(self.apps, f"delete_namespaced_{noun}")(name, namespace, body=body)
        except ApiException as e:
            if e.status != 404:
                raise

    def exists(self, kind: str, namespace: str, name: str) -> bool:
        noun = {"Secret": "secret", "PersistentVolumeClaim": "persistent_volume_claim"}[kind]
        try:
            getattr(self.core, f"read_namespaced_{noun}")(name, namespace)
        except ApiException as e:
            if e.status == 404:
                return False
            raise
        return True

    def secret_value(self, namespace: str, name: str, key: str) -> str | None:
        try:
            secret = self.core.read_namespaced_secret(name, namespace)
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        raw = (secret.data or {}).get(key)
        return base64.b64decode(raw).decode() if raw is not None else None

    def _read(self, read: Callable[[str, str], Any], namespace: str, name: str) -> dict[str, Any] | None:
        try:
            obj = read(name, namespace)
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        return self.api.sanitize_for_serialization(obj)  # type: ignore[no-any-return]

    def deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._read(self.apps.read_namespaced_deployment, namespace, name)

    def statefulset(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._read(self.apps.read_namespaced_stateful_set, namespace, name)

    def set_replicas(self, namespace: str, name: str, replicas: int) -> None:
        self.apps.patch_namespaced_deployment_scale(
            name, namespace, {"spec": {"replicas": replicas}}, field_manager=FIELD_MANAGER, _content_type=MERGE
        )

    def _pods(self, namespace: str, cluster: str, component: str) -> list[dict[str, Any]]:
        selector = meta.selector_string(meta.selector_labels(cluster, component))
        pods = self.core.list_namespaced_pod(namespace, label_selector=selector)
        return [self.api.sanitize_for_serialization(p) for p in pods.items]

    def worker_pods(self, namespace: str, cluster: str) -> list[dict[str, Any]]:
        """Worker pods of a cluster that are not terminating."""
        return [p for p in self._pods(namespace, cluster, meta.WORKER) if not p["metadata"].get("deletionTimestamp")]

    def redis_pods(self, namespace: str, cluster: str) -> list[dict[str, Any]]:
        """Managed Redis pods of a cluster, terminating ones included."""
        return self._pods(namespace, cluster, meta.REDIS)

    def annotate_pod(self, namespace: str, name: str, annotations: dict[str, str]) -> None:
        self.core.patch_namespaced_pod(
            name,
            namespace,
            {"metadata": {"annotations": annotations}},
            field_manager=FIELD_MANAGER,
            _content_type=MERGE,
        )

    def cluster(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            obj = self.custom.get_namespaced_custom_object(
                meta.GROUP, meta.VERSION, namespace, meta.CLUSTER_PLURAL, name
            )
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        return obj  # type: ignore[no-any-return]
