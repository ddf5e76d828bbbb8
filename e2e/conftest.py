"""Fixtures for the end-to-end tests against a real Kubernetes cluster.

Run them with ``make e2e`` (``e2e/run.sh``), which brings up the kind cluster
and exports:

- ``PIDS_E2E_KUBECONFIG`` / ``KUBECONFIG``: kubeconfig of the cluster
- ``PIDS_E2E_KUBECTL`` / ``PIDS_E2E_HELM``: the kubectl and helm binaries
- ``PIDS_E2E_IMAGE_TAG``: tag of the locally built pids-* images
- ``PIDS_E2E_REQUIRE=1``: a missing cluster is an error, not a skip

Everything here runs real commands (subprocess); nothing is mocked.
Mark tests with ``@pytest.mark.e2e``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from kube import CommandError, Runner, wait_for


def _find_binary(env_var: str, name: str) -> str | None:
    path = os.environ.get(env_var)
    if path and os.access(path, os.X_OK):
        return path
    return shutil.which(name)


def _unavailable(reason: str) -> None:
    if os.environ.get("PIDS_E2E_REQUIRE") == "1":
        pytest.fail(f"e2e cluster required but unavailable: {reason}", pytrace=False)
    pytest.skip(f"no e2e cluster ({reason}); run `make e2e`")


@pytest.fixture(scope="session")
def kubeconfig() -> str:
    """Path of the kubeconfig of a reachable cluster (skips/fails otherwise)."""
    path = os.environ.get("PIDS_E2E_KUBECONFIG") or os.environ.get("KUBECONFIG")
    if not path or not Path(path).is_file():
        _unavailable("PIDS_E2E_KUBECONFIG/KUBECONFIG not set or missing")
    kubectl = _find_binary("PIDS_E2E_KUBECTL", "kubectl")
    if not kubectl:
        _unavailable("kubectl not found")
    probe = subprocess.run(
        [kubectl, "--kubeconfig", path, "get", "--raw", "/readyz"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if probe.returncode != 0:
        _unavailable(f"API server not ready: {probe.stderr.strip()}")
    return str(path)


@pytest.fixture(scope="session")
def kubectl(kubeconfig: str) -> Runner:
    """``kubectl(*args)`` -> CompletedProcess; ``kubectl.json(...)``, ``kubectl.apply(yaml)``."""
    return Runner(_find_binary("PIDS_E2E_KUBECTL", "kubectl") or "kubectl", kubeconfig)


@pytest.fixture(scope="session")
def helm(kubeconfig: str) -> Runner:
    """``helm(*args)`` against the e2e cluster (skips if helm is missing)."""
    binary = _find_binary("PIDS_E2E_HELM", "helm")
    if not binary:
        _unavailable("helm not found (PIDS_E2E_HELM)")
    return Runner(binary, kubeconfig, default_timeout=600.0)


@pytest.fixture
def namespace(kubectl: Runner, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (unless PIDS_E2E_KEEP_NS=1)."""
    base = request.node.name.lower().replace("_", "-")
    base = "".join(c for c in base if c.isalnum() or c == "-").strip("-")[:40].strip("-")
    name = f"e2e-{base}-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    kubectl("label", "namespace", name, "pids.e2e/test=true")
    try:
        yield name
    finally:
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            _dump_namespace(kubectl, name)
        if os.environ.get("PIDS_E2E_KEEP_NS") != "1":
            kubectl("delete", "namespace", name, "--wait=false", check=False)


def _dump_namespace(kubectl: Runner, name: str) -> None:
    """Print what is in a namespace (shown by pytest for failed tests)."""
    for args in (
        ("get", "all,events", "-n", name, "-o", "wide"),
        ("describe", "pods", "-n", name),
    ):
        out = kubectl(*args, check=False)
        print(f"$ kubectl {' '.join(args)}\n{out.stdout}{out.stderr}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    # exposes rep_setup / rep_call / rep_teardown to fixtures (see `namespace`)
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep


def wait_pods_ready(
    kubectl: Runner, namespace: str, selector: str, count: int = 1, timeout: float = 180.0
) -> list[dict[str, Any]]:
    """Wait until at least ``count`` pods matching ``selector`` are Ready."""

    def ready() -> list[dict[str, Any]] | None:
        pods = kubectl.json("get", "pods", "-n", namespace, "-l", selector)["items"]
        ok = [
            p
            for p in pods
            if any(c["type"] == "Ready" and c["status"] == "True" for c in p.get("status", {}).get("conditions", []))
        ]
        return ok if len(ok) >= count else None

    return wait_for(ready, timeout=timeout, interval=2.0, message=f"{count} ready pod(s) {selector} in {namespace}")


@pytest.fixture
def wait() -> Callable[..., Any]:
    """The ``wait_for(predicate, timeout=, interval=, message=)`` helper as a fixture."""
    return wait_for


def run_pod(
    kubectl: Runner,
    namespace: str,
    name: str,
    image: str,
    command: Sequence[str],
    timeout: float = 120.0,
) -> str:
    """Run a one-shot pod (imagePullPolicy Never) to completion; return its logs."""
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "main",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "command": list(command),
                }
            ],
        },
    }
    kubectl.apply(json.dumps(manifest))

    def finished() -> str | None:
        phase = kubectl.json("get", "pod", name, "-n", namespace)["status"].get("phase")
        return phase if phase in ("Succeeded", "Failed") else None

    phase = wait_for(finished, timeout=timeout, interval=2.0, message=f"pod {name} to finish")
    logs = kubectl("logs", name, "-n", namespace, check=False).stdout
    if phase != "Succeeded":
        raise CommandError(f"pod {name} {phase}; logs:\n{logs}")
    return logs


@pytest.fixture
def pods_ready(kubectl: Runner) -> Callable[..., list[dict[str, Any]]]:
    """``pods_ready(namespace, selector, count=1, timeout=180)`` -> the ready pods."""
    return lambda namespace, selector, count=1, timeout=180.0: wait_pods_ready(
        kubectl, namespace, selector, count, timeout
    )


@pytest.fixture
def one_shot_pod(kubectl: Runner) -> Callable[..., str]:
    """``one_shot_pod(namespace, name, image, command, timeout=120)`` -> its logs."""
    return lambda namespace, name, image, command, timeout=120.0: run_pod(
        kubectl, namespace, name, image, command, timeout
    )


# --- PIDS figures (recorded by test_pids_*.py through helpers_pids.FIGURES) ---
def pytest_terminal_summary(terminalreporter: Any) -> None:
    import sys

    helpers = sys.modules.get("helpers_pids")
    text = helpers.FIGURES.summary() if helpers else ""
    if text:
        terminalreporter.write_sep("=", "PIDS e2e measured figures")
        terminalreporter.write_line(text)
