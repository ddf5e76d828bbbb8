"""The Helm chart: values.schema.json (always, with jsonschema), and `helm lint` /
`helm template` with default and non-default values when a helm binary is found
(PIDS_HELM, PATH, or ${PIDS_E2E_CACHE:-/var/cache/pids-e2e}/*/helm)."""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from pids import __version__

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "pids"
CRD_CHART = ROOT / "charts" / "pids-crds"


def find_helm() -> str | None:
    explicit = os.environ.get("PIDS_HELM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    on_path = shutil.which("helm")
    if on_path:
        return on_path
    cache = os.environ.get("PIDS_E2E_CACHE", "/var/cache/pids-e2e")
    found = (
        sorted(glob.glob(f"{cache}/helm*/bin/helm"))
        + sorted(glob.glob(f"{cache}/helm*/helm"))
        + sorted(glob.glob(f"{cache}/*/bin/helm"))
    )
    return next((f for f in found if os.path.isfile(f) and os.access(f, os.X_OK)), None)


HELM = find_helm()
KUBE = ["--kube-version", "1.34.0"]  # a helm built without version ldflags assumes 1.20
needs_helm = pytest.mark.skipif(HELM is None, reason="no helm binary (set PIDS_HELM or put helm on PATH)")


def values() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def schema_errors(vals: dict[str, Any]) -> list[str]:
    schema = json.loads((CHART / "values.schema.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(vals)]


def with_override(path: str, value: Any) -> dict[str, Any]:
    vals = values()
    node = vals
    *parents, last = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return vals


def test_schema_is_a_valid_draft7_schema() -> None:
    jsonschema.Draft7Validator.check_schema(json.loads((CHART / "values.schema.json").read_text()))


def test_default_values_satisfy_the_schema() -> None:
    assert schema_errors(values()) == []


def test_every_value_is_documented() -> None:
    """Every leaf of values.yaml (or a parent of it) has a `# --` comment right above it (helm-docs)."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = []
    documented_parents: list[int] = []  # indents of enclosing keys that carry a `# --` comment
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)([A-Za-z][\w-]*):(.*)$", line)
        if not m:
            continue
        indent = len(m.group(1))
        documented_parents = [d for d in documented_parents if d < indent]
        documented = lines[i - 1].strip().startswith("# --") if i else False
        is_parent = m.group(3).strip() == "" and i + 1 < len(lines) and lines[i + 1].startswith(m.group(1) + "  ")
        if documented and is_parent:
            documented_parents.append(indent)
        if not is_parent and not documented and not documented_parents:
            undocumented.append(m.group(2))
    assert undocumented == []


@pytest.mark.parametrize(
    "path, value, expected",
    [
        ("operator.replicas", -1, "operator.replicas: -1 is less than the minimum of 0"),
        ("operator.replicas", "two", "operator.replicas: 'two' is not of type 'integer'"),
        ("operator.image.pullPolicy", "Sometimes", "operator.image.pullPolicy: 'Sometimes' is not one of"),
        ("operator.imagePolicy", "x", "operator: Additional properties are not allowed ('imagePolicy' was unexpected)"),
        ("watch.namespaces", ["Bad_NS"], "watch.namespaces.0: 'Bad_NS' does not match"),
        ("metrics.serviceMonitor.interval", "soon", "metrics.serviceMonitor.interval: 'soon' does not match"),
        ("networkPolicy.enabled", "yes", "networkPolicy.enabled: 'yes' is not of type 'boolean'"),
        ("typo", 1, "<root>: Additional properties are not allowed ('typo' was unexpected)"),
    ],
)
def test_schema_rejects_bad_values_with_readable_errors(path: str, value: Any, expected: str) -> None:
    errors = schema_errors(with_override(path, value))
    assert any(e.startswith(expected) for e in errors), errors


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    assert HELM is not None
    return subprocess.run([HELM, *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


def render(*sets: str, namespace: str = "pids-system", chart: Path = CHART) -> list[dict[str, Any]]:
    args = ["template", "pids", str(chart), "--namespace", namespace, *KUBE]
    for s in sets:
        args += ["--set", s]
    out = helm(*args)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


@needs_helm
def test_helm_lint_default_and_non_default() -> None:
    for extra in ([], ["--set", "watch.clusterWide=true,operator.replicas=2,metrics.serviceMonitor.enabled=true"]):
        out = helm("lint", str(CHART), "--strict", *KUBE, *extra)
        assert out.returncode == 0, out.stdout + out.stderr


@needs_helm
def test_default_render_is_namespaced_hardened_and_local_images() -> None:
    docs = render()
    kinds = sorted({d["kind"] for d in docs})
    assert "ClusterRole" not in kinds and "Role" in kinds
    assert {"Deployment", "ServiceAccount", "RoleBinding", "NetworkPolicy", "KopfPeering", "Service"} <= set(kinds)
    (deployment,) = by_kind(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["image"] == f"pids-operator:{__version__}" and c["imagePullPolicy"] == "IfNotPresent"
    assert c["securityContext"]["readOnlyRootFilesystem"] is True and pod["securityContext"]["runAsNonRoot"] is True
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["PIDS_OPERATOR_NAMESPACES"] == "pids-system" and env["PIDS_OPERATOR_PEERING"] == "pids-operator"
    assert not by_kind(docs, "CustomResourceDefinition")  # they come from charts/pids-crds


@needs_helm
def test_crd_chart_renders_every_crd_as_a_kept_template() -> None:
    out = helm("lint", str(CRD_CHART), "--strict", *KUBE)
    assert out.returncode == 0, out.stdout + out.stderr
    docs = render(chart=CRD_CHART)
    assert {d["kind"] for d in docs} == {"CustomResourceDefinition"}
    assert {d["metadata"]["name"] for d in docs} == {
        "pidsclusters.pids.dev",
        "pidstasks.pids.dev",
        "kopfpeerings.kopf.dev",
        "clusterkopfpeerings.kopf.dev",
    }
    assert all(d["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep" for d in docs)


@needs_helm
def test_role_grants_only_what_the_operator_uses() -> None:
    (role,) = by_kind(render(), "Role")
    verbs = {(g, r): set(rule["verbs"]) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert verbs[("", "secrets")] == {"get", "create", "patch"}  # patch: the connection Secret, applied
    deleters = {key for key, v in verbs.items() if "delete" in v}
    assert deleters == {("apps", "deployments"), ("apps", "statefulsets")}  # Redis workloads being replaced
    assert verbs[("", "persistentvolumeclaims")] == {"get"}  # StatefulSets make the claims
    assert verbs[("", "pods")] == {"get", "list", "watch", "patch"}
    assert ("", "nodes") not in verbs


@needs_helm
def test_cluster_wide_render_uses_a_cluster_role_and_cluster_peering() -> None:
    docs = render("watch.clusterWide=true")
    assert by_kind(docs, "ClusterRole") and not by_kind(docs, "Role") and by_kind(docs, "ClusterKopfPeering")
    (deployment,) = by_kind(docs, "Deployment")
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["PIDS_OPERATOR_CLUSTERWIDE"] == "true" and "PIDS_OPERATOR_NAMESPACES" not in env


@needs_helm
def test_extra_namespaces_get_roles_peerings_and_policies() -> None:
    docs = render("watch.namespaces={team-a,team-b}")
    assert sorted(r["metadata"]["namespace"] for r in by_kind(docs, "Role")) == ["pids-system", "team-a", "team-b"]
    assert len(by_kind(docs, "KopfPeering")) == 3 and len(by_kind(docs, "NetworkPolicy")) == 3


@needs_helm
def test_service_monitors_only_when_enabled() -> None:
    assert not by_kind(render(), "ServiceMonitor")
    assert len(by_kind(render("metrics.serviceMonitor.enabled=true"), "ServiceMonitor")) == 2


@needs_helm
def test_invalid_combinations_fail_with_a_clear_message() -> None:
    out = helm("template", "pids", str(CHART), *KUBE, "--set", "operator.replicas=2,peering.enabled=false")
    assert out.returncode != 0 and "needs peering.enabled=true" in out.stderr
    out = helm("template", "pids", str(CHART), *KUBE, "--set", "operator.replicas=-3")
    assert out.returncode != 0 and "replicas" in out.stderr
