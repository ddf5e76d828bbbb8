"""`helm upgrade` applies a changed CRD (issue 18, deliverable 6).

Helm never upgrades the CRDs of a chart's crds/ directory (helm #8668), which is
where chart 0.1.0 kept them. Since then they are templates of their own chart,
charts/pids-crds, annotated `helm.sh/resource-policy: keep`. This test installs
the previous chart from git history, CRDs and all, with a cluster running on it;
then upgrades the way the README says (`helm upgrade --install pids-crds
charts/pids-crds --take-ownership`, then `helm upgrade pids charts/pids`) and
checks that the API server serves the new schema, the running cluster carries
on, and an uninstall of the CRD chart keeps the CRDs.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers_pids import (
    CRD_NAMESPACE,
    CRD_RELEASE,
    RELEASE,
    cluster_manifest,
    get,
    install_crds,
    install_release,
    teardown_release,
    wait_cluster_ready,
)
from kube import CHART_DIR, REPO_ROOT, Runner

pytestmark = pytest.mark.e2e

# main when chart 0.1.0 still shipped the CRDs in charts/pids/crds/
PREVIOUS_REV = "0cf5f80"
PIDS_CRDS = ("pidsclusters.pids.dev", "pidstasks.pids.dev")


def previous_chart(into: Path) -> Path:
    """charts/pids as it was at PREVIOUS_REV, extracted from git history."""
    archive = into / "previous.tar"
    with archive.open("wb") as out:
        r = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "archive", PREVIOUS_REV, "charts/pids"],
            stdout=out,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    if r.returncode != 0:
        raise AssertionError(f"git archive {PREVIOUS_REV} charts/pids failed (shallow clone?): {r.stderr.decode()}")
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    chart = into / "charts" / "pids"
    assert (chart / "crds" / "pidsclusters.pids.dev.yaml").is_file(), "the previous chart should ship crds/"
    # The operator image is today's (one tag): give the previous chart's Role what today's operator
    # needs for the managed Redis, a StatefulSet (replacing the Deployment that chart's operator made)
    helpers = chart / "templates" / "_helpers.tpl"
    old_rule = "  resources: [deployments]\n  verbs: [get, list, watch, create, patch, update]\n"
    assert old_rule in helpers.read_text(), "the previous chart's apps rule changed"
    helpers.write_text(
        helpers.read_text().replace(
            old_rule,
            "  resources: [deployments, statefulsets]\n  verbs: [get, list, watch, create, patch, update, delete]\n",
        )
    )
    return chart


def as_before_the_upgrade(kubectl: Runner, helm: Runner, chart: Path) -> None:
    """The CRDs as chart 0.1.0 left them: its schema, and owned by no Helm release."""
    helm("uninstall", CRD_RELEASE, "-n", CRD_NAMESPACE, check=False, timeout=120)  # keep: the CRDs stay
    for name in PIDS_CRDS:
        crd = yaml.safe_load((chart / "crds" / f"{name}.yaml").read_text())
        live = get(kubectl, "default", "crd", name)
        if live is None:  # a fresh cluster
            kubectl("create", "-f", "-", input=json.dumps(crd))
            continue
        crd["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]  # replaced only at its version
        kubectl("replace", "-f", "-", input=json.dumps(crd))
    kubectl("wait", "--for=condition=Established", *(f"crd/{n}" for n in PIDS_CRDS), "--timeout=60s", timeout=90)


def server_dry_run(kubectl: Runner, namespace: str, body: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """Create `body` as the API server would (defaults, schema, CEL, unknown fields), storing nothing."""
    return kubectl(
        "create",
        "--dry-run=server",
        "--validate=strict",
        "-n",
        namespace,
        "-o",
        "json",
        "-f",
        "-",
        input=json.dumps(body),
        check=False,
    )


def zero_g_cluster() -> dict[str, Any]:
    body = json.loads(cluster_manifest("zero-g", 1))
    body["spec"]["physics"] = {"G": 0}
    return body


def test_helm_upgrade_serves_the_new_crd_schema(kubectl, helm):
    with tempfile.TemporaryDirectory() as tmp:
        old_chart = previous_chart(Path(tmp))
        rel = None
        ok = False
        try:
            as_before_the_upgrade(kubectl, helm, old_chart)
            rel = install_release(kubectl, helm, "crd-upgrade", chart=old_chart)
            ns = rel.namespace
            rel.apply(cluster_manifest("keep", 1))
            wait_cluster_ready(kubectl, ns, "keep", 1, timeout=240)
            before = server_dry_run(kubectl, ns, zero_g_cluster())
            assert before.returncode == 0, f"the previous schema should accept G: 0\n{before.stderr}"
            unknown = server_dry_run(
                kubectl, ns, json.loads(cluster_manifest("new-field", 1, allowUnsafeModules=False))
            )
            assert unknown.returncode != 0 and "allowUnsafeModules" in unknown.stderr, unknown.stdout + unknown.stderr

            install_crds(helm)  # helm upgrade --install pids-crds charts/pids-crds --take-ownership
            helm("upgrade", RELEASE, str(CHART_DIR), "-n", ns, "--wait", "--timeout", "180s", timeout=240)

            after = server_dry_run(kubectl, ns, zero_g_cluster())
            assert after.returncode != 0 and "spec.physics.G" in after.stderr, after.stdout + after.stderr
            served = server_dry_run(kubectl, ns, json.loads(cluster_manifest("new-field", 1)))
            assert served.returncode == 0, served.stderr
            assert json.loads(served.stdout)["spec"]["allowUnsafeModules"] is False  # the new field, defaulted
            for name in PIDS_CRDS:
                crd = get(kubectl, "default", "crd", name)
                assert crd is not None
                annotations = crd["metadata"].get("annotations") or {}
                assert annotations.get("meta.helm.sh/release-name") == CRD_RELEASE, annotations
                assert annotations.get("helm.sh/resource-policy") == "keep", annotations
            wait_cluster_ready(kubectl, ns, "keep", 1, timeout=180)  # the running cluster carries on

            helm("uninstall", CRD_RELEASE, "-n", CRD_NAMESPACE, timeout=120)
            for name in PIDS_CRDS:
                assert get(kubectl, "default", "crd", name) is not None, f"helm uninstall {CRD_RELEASE} deleted {name}"
            assert get(kubectl, ns, "pidscluster", "keep") is not None
            ok = True
        finally:
            install_crds(helm)  # the current CRDs for the tests after this one, whatever happened
            if rel is not None:
                teardown_release(rel, failed=not ok)
