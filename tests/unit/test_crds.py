"""The CRDs' own openAPIV3Schema (plus their CEL rules, via cel-python when
installed) accept the examples and reject bad objects with readable errors."""

from __future__ import annotations

import copy
import filecmp
from pathlib import Path
from typing import Any

import pytest
import yaml

from pids_operator.meta import MAX_CLUSTER_NAME
from pids_operator.validation import UNSAFE_MODULES

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "crds"
CHART_CRD_DIR = ROOT / "charts" / "pids-crds" / "templates"
EXAMPLES = ROOT / "examples"


def load_crd(plural: str) -> dict[str, Any]:
    return yaml.safe_load((CRD_DIR / f"{plural}.pids.dev.yaml").read_text())


def version_of(crd: dict[str, Any]) -> dict[str, Any]:
    (version,) = crd["spec"]["versions"]
    return version


def to_jsonschema(node: Any) -> Any:
    """A structural schema as plain JSON schema: x-kubernetes-* dropped; objects
    that list properties and keep no unknown fields reject unknown keys, as
    `kubectl apply` (strict field validation) does."""
    if isinstance(node, list):
        return [to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_jsonschema(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if "properties" in node:
        out["properties"] = {k: to_jsonschema(v) for k, v in node["properties"].items()}
        if "additionalProperties" not in node and not node.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    return out


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Structural defaulting, as the API server does before CEL validation."""
    if isinstance(value, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                value[key] = apply_defaults(sub, value[key])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key in value:
                value[key] = apply_defaults(extra, value[key])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        value = [apply_defaults(schema["items"], v) for v in value]
    return value


def cel_errors(schema: dict[str, Any], value: Any, old: Any = None, path: str = "") -> list[str]:
    """Evaluate every x-kubernetes-validations rule (oldSelf rules only on updates)."""
    celpy = pytest.importorskip("celpy", reason="cel-python not installed: CEL rules not evaluated")
    errors = []
    env = celpy.Environment()
    for rule in schema.get("x-kubernetes-validations") or []:
        if "oldSelf" in rule["rule"] and old is None:
            continue
        activation = {"self": celpy.json_to_cel(value)}
        if old is not None:
            activation["oldSelf"] = celpy.json_to_cel(old)
        if not env.program(env.compile(rule["rule"])).evaluate(activation):
            errors.append(f"{path or '<root>'}: {rule.get('message', rule['rule'])}")
    if isinstance(value, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key in value:
                old_sub = old.get(key) if isinstance(old, dict) else None
                errors += cel_errors(sub, value[key], old_sub if old is not None else None, f"{path}.{key}")
    return errors


def validate(plural: str, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    """All errors the API server would report for creating (or updating from `old`) obj."""
    schema = version_of(load_crd(plural))["schema"]["openAPIV3Schema"]
    validator = jsonschema.Draft4Validator(to_jsonschema(schema))
    errors = [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(obj)]
    if errors:
        return errors
    defaulted = apply_defaults(schema, copy.deepcopy(obj))
    old_defaulted = apply_defaults(schema, copy.deepcopy(old)) if old is not None else None
    return cel_errors(schema, defaulted, old_defaulted)


def cluster(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "pids.dev/v1alpha1", "kind": "PidsCluster", "metadata": {"name": "c"}, "spec": spec}


def task(**spec: Any) -> dict[str, Any]:
    base = {"clusterRef": {"name": "demo"}, "function": "pids.tasks:square"}
    return {"apiVersion": "pids.dev/v1alpha1", "kind": "PidsTask", "metadata": {"name": "t"}, "spec": {**base, **spec}}


PLURALS = {"PidsCluster": "pidsclusters", "PidsTask": "pidstasks"}


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_is_accepted(path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        assert validate(PLURALS[doc["kind"]], doc) == []


def test_crd_chart_ships_the_same_crds() -> None:
    names = sorted(p.name for p in CRD_DIR.glob("*.yaml"))
    assert names
    for name in names:
        assert filecmp.cmp(CRD_DIR / name, CHART_CRD_DIR / name, shallow=False), (
            f"charts/pids-crds/templates/{name} differs from crds/{name}"
        )


def test_every_crd_is_kept_on_uninstall() -> None:
    """Deleting a CRD deletes every object of its kind: no `helm uninstall` may do it."""
    for path in sorted(CHART_CRD_DIR.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep", (
                path.name,
                doc["metadata"]["name"],
            )


def test_operator_chart_ships_no_crds_directory() -> None:
    """Helm never upgrades a chart's crds/ (helm #8668): the CRDs are templates of charts/pids-crds."""
    assert not (ROOT / "charts" / "pids" / "crds").exists()


@pytest.mark.parametrize("plural", ["pidsclusters", "pidstasks"])
def test_crd_has_status_names_and_categories(plural: str) -> None:
    crd = load_crd(plural)
    assert crd["spec"]["names"]["categories"] == ["pids"]
    assert version_of(crd)["subresources"]["status"] == {}


def test_cluster_scale_subresource_points_at_fields_the_status_fills() -> None:
    version = version_of(load_crd("pidsclusters"))
    scale = version["subresources"]["scale"]
    assert scale == {
        "specReplicasPath": ".spec.workers",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert status["replicas"]["type"] == "integer" and status["selector"]["type"] == "string"


def test_printer_columns() -> None:
    cols = [
        c["name"] for c in version_of(load_crd("pidsclusters"))["additionalPrinterColumns"] if not c.get("priority")
    ]
    assert cols == ["Desired", "Ready", "Backlog", "Running", "Done", "Balance", "Redis", "Age"]
    cols = [c["name"] for c in version_of(load_crd("pidstasks"))["additionalPrinterColumns"] if not c.get("priority")]
    assert cols == ["Cluster", "Phase", "Done", "Attempts", "Age"]
    assert load_crd("pidsclusters")["spec"]["names"]["shortNames"] == ["pcl"]
    assert load_crd("pidstasks")["spec"]["names"]["shortNames"] == ["pt"]


@pytest.mark.parametrize(
    "obj, expected",
    [
        (cluster(workers=-1), "-1 is less than the minimum of 0"),
        (cluster(workers="three"), "'three' is not of type 'integer'"),
        (cluster(workers=2, wrokers=3), "Additional properties are not allowed ('wrokers' was unexpected)"),
        (cluster(worker={"concurrency": 0}), "0 is less than the minimum of 1"),
        (cluster(worker={"imagePullPolicy": "Sometimes"}), "'Sometimes' is not one of"),
        (cluster(allowedModules=["os; rm"]), "does not match"),
        (cluster(allowedModules=[]), "allowedModules: [] "),  # too short / non-empty, as jsonschema words it
        (cluster(physics={"distanceOffset": 0}), "less than or equal to the minimum of 0"),
        (cluster(physics={"G": 0}), "less than or equal to the minimum of 0"),
        (cluster(redis={"external": {"url": "redis://:secret@host:6379/0"}}), "does not match"),
        (cluster(redis={"external": {"url": "http://host"}}), "does not match"),
        (
            cluster(redis={"managed": {"persistence": {"appendfsync": "no"}}}),
            "'no' is not one of ['everysec', 'always']",
        ),
        (cluster(redis={"managed": {"replicas": 0}}), "0 is less than the minimum of 1"),
        (cluster(redis={"external": {"sentinel": {"hosts": ["s1:26379"]}}}), "'masterName' is a required property"),
        (cluster(redis={"external": {"sentinel": {"hosts": ["s1:x"], "masterName": "m"}}}), "does not match"),
    ],
)
def test_invalid_cluster_is_rejected(obj: dict[str, Any], expected: str) -> None:
    errors = validate("pidsclusters", obj)
    assert any(expected in e for e in errors), errors


@pytest.mark.parametrize(
    "obj, expected",
    [
        (
            cluster(autoscaling={"enabled": True, "minWorkers": 5, "maxWorkers": 2}),
            "minWorkers must be <= autoscaling.maxWorkers",
        ),
        (
            cluster(redis={"managed": {}, "external": {"url": "redis://r:6379/0"}}),
            "exactly one of redis.managed and redis.external",
        ),
        (cluster(redis={}), "exactly one of redis.managed and redis.external"),
        (cluster(redis={"external": {}}), "exactly one of redis.external.url and redis.external.sentinel"),
        (
            cluster(redis={"external": {"url": "redis://r:6379/0", "sentinel": {"hosts": ["s"], "masterName": "m"}}}),
            "exactly one of redis.external.url and redis.external.sentinel",
        ),
        (cluster(redis={"managed": {"replicas": 2}}), "must be 1 (no failover) or at least 3"),
        (cluster(redis={"managed": {"replicas": 3, "ha": {"ackReplicas": 3}}}), "must be smaller than replicas"),
        (cluster(redis={"managed": {"replicas": 3, "ha": {"minReplicasToWrite": 5}}}), "must be smaller than replicas"),
        (cluster(timing={"leaseSeconds": 5, "heartbeatSeconds": 5}), "heartbeatSeconds must be shorter"),
    ],
)
def test_cel_rules_reject_inconsistent_clusters(obj: dict[str, Any], expected: str) -> None:
    errors = validate("pidsclusters", obj)
    assert any(expected in e for e in errors), errors


def test_timing_alone_is_left_to_the_operator_against_the_worker_defaults() -> None:
    assert validate("pidsclusters", cluster(timing={"leaseSeconds": 3})) == []
    assert validate("pidsclusters", cluster(timing={"heartbeatSeconds": 0.5})) == []


def test_cluster_without_redis_defaults_to_managed() -> None:
    assert validate("pidsclusters", cluster(workers=1)) == []


def test_managed_redis_is_durable_unless_asked_not_to_be() -> None:
    schema = version_of(load_crd("pidsclusters"))["schema"]["openAPIV3Schema"]
    spec = apply_defaults(schema, cluster(workers=1))["spec"]
    managed = spec["redis"]["managed"]
    assert managed["persistence"] == {"enabled": True, "size": "1Gi", "appendfsync": "everysec"}
    assert managed["replicas"] == 1 and managed["ha"] == {
        "ackReplicas": 1,
        "minReplicasToWrite": 1,
        "downAfterMilliseconds": 3000,
    }


@pytest.mark.parametrize(
    "redis",
    [
        {"managed": {"replicas": 3}},
        {"managed": {"replicas": 5, "ha": {"ackReplicas": 2, "minReplicasToWrite": 2, "downAfterMilliseconds": 1000}}},
        {"managed": {"persistence": {"enabled": False}}},
        {
            "external": {
                "sentinel": {
                    "hosts": ["s0.example", "s1.example:26380"],
                    "masterName": "mymaster",
                    "authenticate": False,
                }
            }
        },
    ],
)
def test_redis_shapes_are_accepted(redis: dict[str, Any]) -> None:
    assert validate("pidsclusters", cluster(redis=redis)) == []


@pytest.mark.parametrize(
    "obj, expected",
    [
        ({**task(), "spec": {"function": "pids.tasks:square"}}, "'clusterRef' is a required property"),
        (task(function="pids.tasks.square"), "does not match"),
        (task(function="os:system; rm -rf"), "does not match"),
        (task(weight=0), "0 is less than the minimum of 1e-06"),
        (task(maxAttempts=0), "0 is less than the minimum of 1"),
        (task(items=[]), "items: [] "),
        (task(args="1"), "'1' is not of type 'array'"),
        ({**task(), "status": {"phase": "Exploded"}}, "'Exploded' is not one of"),
    ],
)
def test_invalid_task_is_rejected(obj: dict[str, Any], expected: str) -> None:
    errors = validate("pidstasks", obj)
    assert any(expected in e for e in errors), errors


def test_task_with_both_items_and_args_is_rejected() -> None:
    for extra in ({"args": [2]}, {"kwargs": {"x": 1}}):
        errors = validate("pidstasks", task(items=[[1]], **extra))
        assert any(e.startswith("spec: ") and "should not be valid" in e for e in errors), errors


def test_task_function_cannot_change_after_creation() -> None:
    errors = validate("pidstasks", task(function="pids.tasks:echo"), old=task())
    assert any("function is immutable" in e for e in errors), errors
    assert validate("pidstasks", task(priority=3), old=task()) == []


def test_task_args_and_items_take_any_json() -> None:
    assert validate("pidstasks", task(args=[1, "a", {"b": [None, 2.5]}], kwargs={"x": {"y": 1}})) == []
    assert validate("pidstasks", task(items=[[1], {"args": [2], "weight": 3}])) == []


def cluster_named(name: str, **spec: Any) -> dict[str, Any]:
    return {**cluster(**spec), "metadata": {"name": name}}


def test_cluster_names_longer_than_the_child_names_allow_are_rejected() -> None:
    assert validate("pidsclusters", cluster_named("a" * MAX_CLUSTER_NAME)) == []
    errors = validate("pidsclusters", cluster_named("a" * (MAX_CLUSTER_NAME + 1)))
    assert any(f"at most {MAX_CLUSTER_NAME} characters" in e for e in errors), errors


@pytest.mark.parametrize(
    "modules", [["os"], ["pids.tasks", "subprocess"], ["builtins"], ["os.path"], ["importlib.util"]]
)
def test_modules_that_give_a_shell_need_the_explicit_opt_in(modules: list[str]) -> None:
    errors = validate("pidsclusters", cluster(allowedModules=modules))
    assert any("set allowUnsafeModules true" in e for e in errors), errors
    assert validate("pidsclusters", cluster(allowedModules=modules, allowUnsafeModules=True)) == []


def test_modules_merely_named_like_unsafe_ones_are_accepted() -> None:
    assert validate("pidsclusters", cluster(allowedModules=["osmium", "myapp.os", "system_tools", "pids.tasks"])) == []


def test_the_crd_lists_the_operators_unsafe_modules() -> None:
    spec = version_of(load_crd("pidsclusters"))["schema"]["openAPIV3Schema"]["properties"]["spec"]
    (rule,) = [r["rule"] for r in spec["x-kubernetes-validations"] if "allowUnsafeModules" in r["rule"]]
    listed = rule.split("'^(")[1].split(")")[0].split("|")
    assert sorted(listed) == sorted(UNSAFE_MODULES)
    (name_rule,) = version_of(load_crd("pidsclusters"))["schema"]["openAPIV3Schema"]["x-kubernetes-validations"]
    assert name_rule["rule"] == f"size(self.metadata.name) <= {MAX_CLUSTER_NAME}"
