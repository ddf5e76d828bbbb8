"""`helm uninstall` leaves no PIDS objects behind (issue 6).

The documented order (charts/pids/templates/NOTES.txt): delete your PidsTasks
and PidsClusters while the operator still runs (PidsTasks carry its
finalizer), then `helm uninstall pids`. Afterwards nothing of the release or
of its clusters is left in the namespace, and no cluster-scoped RBAC.

CRDs are kept: they belong to the pids-crds chart, not to this release, and
carry `helm.sh/resource-policy: keep`, so even `helm uninstall pids-crds` leaves
them (deleting one deletes every object of that kind in the whole cluster).
Remove them yourself with
`kubectl delete crd pidsclusters.pids.dev pidstasks.pids.dev` (and
`kopfpeerings.kopf.dev` if nothing else uses Kopf). This test asserts that
they are still there.
"""

from __future__ import annotations

import json
import time

import pytest
from helpers_pids import (
    EXAMPLES,
    FIGURES,
    RELEASE,
    cluster_manifest,
    get,
    install_release,
    teardown_release,
    wait_cluster_ready,
    wait_task_phase,
    wait_until,
)

pytestmark = pytest.mark.e2e

NAMESPACED_KINDS = (
    "deployments.apps,statefulsets.apps,controllerrevisions.apps,replicasets.apps,pods,services,endpoints,"
    "secrets,configmaps,serviceaccounts,"
    "roles.rbac.authorization.k8s.io,rolebindings.rbac.authorization.k8s.io,"
    "networkpolicies.networking.k8s.io,persistentvolumeclaims,kopfpeerings.kopf.dev,"
    "pidsclusters.pids.dev,pidstasks.pids.dev"
)
CLUSTER_KINDS = (
    "clusterroles.rbac.authorization.k8s.io,clusterrolebindings.rbac.authorization.k8s.io,clusterkopfpeerings.kopf.dev"
)
KEPT_CRDS = ("pidsclusters.pids.dev", "pidstasks.pids.dev", "kopfpeerings.kopf.dev")


def is_pids(obj: dict) -> bool:
    """An object of the release (chart labels) or of a PidsCluster (operator labels, owner)."""
    m = obj["metadata"]
    labels = m.get("labels") or {}
    if obj["kind"] in ("PidsCluster", "PidsTask", "KopfPeering", "ClusterKopfPeering"):
        return True
    if labels.get("app.kubernetes.io/part-of") == "pids" or labels.get("app.kubernetes.io/instance") == RELEASE:
        return True
    if labels.get("pids.dev/cluster") or (labels.get("owner") == "helm" and labels.get("name") == RELEASE):
        return True  # workers/redis, and Helm's release Secrets (sh.helm.release.v1.pids.vN)
    return any(o.get("kind") == "PidsCluster" for o in m.get("ownerReferences") or [])


def leftovers(k, ns: str) -> list[str]:
    items = k.json("get", NAMESPACED_KINDS, "-n", ns)["items"]
    items += [
        o
        for o in k.json("get", CLUSTER_KINDS)["items"]
        if (o["metadata"].get("labels") or {}).get("app.kubernetes.io/instance") == RELEASE
        and any(s.get("namespace") == ns for s in o.get("subjects") or [{}])
    ]
    return [f"{o['kind']}/{o['metadata']['name']}" for o in items if is_pids(o)]


def test_helm_uninstall_leaves_nothing(kubectl, helm):
    k = kubectl
    rel = install_release(kubectl, helm, "uninstall")
    ns = rel.namespace
    ok = False
    try:
        rel.apply(cluster_manifest("demo", 1))
        wait_cluster_ready(k, ns, "demo", 1, timeout=240)
        rel.apply_file(EXAMPLES / "single-task.yaml")
        pt = wait_task_phase(k, ns, "hello", timeout=120)
        assert json.loads(pt["status"]["result"]["value"]) == "hello from PIDS", pt["status"]
        before = leftovers(k, ns)
        for kind in (
            "StatefulSet/demo-redis",
            "PersistentVolumeClaim/data-demo-redis-0",
            "Deployment/demo-workers",
            "Secret/demo-redis-auth",
            "ConfigMap/demo-config",
            f"Deployment/{RELEASE}",
            f"Role/{RELEASE}",
            f"ServiceAccount/{RELEASE}",
        ):
            assert kind in before, f"{kind} missing before the uninstall: {before}"

        t0 = time.monotonic()
        k("delete", "pidstasks,pidsclusters", "--all", "-n", ns, "--timeout=120s", timeout=150)
        r = helm("uninstall", RELEASE, "-n", ns, "--wait", "--timeout", "120s", timeout=150)
        print(r.stdout)

        def clean() -> bool:
            return not leftovers(k, ns)

        wait_until(clean, 180, f"no PIDS objects left in {ns}", lambda: "\n".join(leftovers(k, ns)), interval=2)
        FIGURES.record("delete CRs + helm uninstall -> no PIDS object left", time.monotonic() - t0)
        assert RELEASE not in helm("list", "-n", ns, "-q").stdout.split()
        assert helm("status", RELEASE, "-n", ns, check=False).returncode != 0

        # Kept on purpose: the CRDs are the pids-crds chart's, kept even by its own uninstall.
        for crd in KEPT_CRDS:
            assert get(k, "default", "crd", crd) is not None, f"CRD {crd} was removed with the operator's release"
        ok = True
    finally:
        if not ok:
            teardown_release(rel, failed=True)
        else:
            k("delete", "namespace", ns, "--wait=false", check=False)
