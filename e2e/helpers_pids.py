"""Helpers of the PIDS e2e tests (test_pids_*.py): a Helm release per test
module, waits that explain themselves, a Redis port-forward with the pids
Client, and the measured figures.

Everything runs real kubectl/helm (and, to kill a worker process from outside
its PID namespace, docker exec into the kind node); nothing is mocked.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kube import CHART_DIR, E2E_DIR, IMAGES, REPO_ROOT, CommandError, PortForward, Runner, wait_for

EXAMPLES = REPO_ROOT / "examples"
RELEASE = "pids"
CRD_CHART_DIR = REPO_ROOT / "charts" / "pids-crds"
CRD_RELEASE = "pids-crds"
CRD_NAMESPACE = "default"  # the CRDs are cluster-wide; this only holds the release record
OPERATOR_DEPLOYMENT = RELEASE  # the chart's full name when the release name contains "pids"
OPERATOR_SELECTOR = f"app.kubernetes.io/name=pids-operator,app.kubernetes.io/instance={RELEASE}"
FIGURES_PATH = E2E_DIR / ".work" / "figures.json"


# -- measured figures ---------------------------------------------------------
@dataclass
class Figures:
    """Named measurements of this run, kept in e2e/.work/figures.json and
    printed at the end of the session (conftest's pytest_terminal_summary)."""

    path: Path = FIGURES_PATH
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, name: str, seconds: float, note: str = "") -> float:
        seconds = round(float(seconds), 2)
        with self._lock:
            self.values[name] = {"seconds": seconds, "note": note, "at": time.strftime("%Y-%m-%dT%H:%M:%S")}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.values, indent=2, sort_keys=True) + "\n")
        print(f"[figure] {name}: {seconds:.2f} s {note}")
        return seconds

    def summary(self) -> str:
        if not self.values:
            return ""
        width = max(len(n) for n in self.values)
        lines = [f"{n:<{width}}  {v['seconds']:8.2f} s  {v['note']}" for n, v in sorted(self.values.items())]
        return "\n".join(lines) + f"\n(written to {self.path.relative_to(REPO_ROOT)})"


FIGURES = Figures()


# -- diagnostics ----------------------------------------------------------------
def describe(kubectl: Runner, namespace: str, *what: str, logs_of: Sequence[str] = (), tail: int = 40) -> str:
    """`kubectl describe` of some objects, recent events and the tail of some
    logs (label selectors), for assertion messages."""
    out = []
    for obj in what:
        r = kubectl("describe", obj, "-n", namespace, check=False)
        out.append(f"$ kubectl describe {obj} -n {namespace}\n{r.stdout}{r.stderr}")
    r = kubectl("get", "events", "-n", namespace, "--sort-by=.lastTimestamp", check=False)
    out.append("$ kubectl get events\n" + "\n".join((r.stdout + r.stderr).splitlines()[-25:]))
    for selector in logs_of:
        r = kubectl(
            "logs", "-n", namespace, "-l", selector, f"--tail={tail}", "--prefix", "--all-containers", check=False
        )
        out.append(f"$ kubectl logs -l {selector}\n{r.stdout}{r.stderr}")
    return "\n".join(out)


def operator_diag(kubectl: Runner, namespace: str, *what: str) -> str:
    return describe(kubectl, namespace, *what, logs_of=(OPERATOR_SELECTOR,))


def wait_until(
    predicate: Callable[[], Any],
    timeout: float,
    message: str,
    diag: Callable[[], str] | None = None,
    interval: float = 1.0,
) -> Any:
    """wait_for, with the output of `diag()` appended when it times out."""
    try:
        return wait_for(predicate, timeout=timeout, interval=interval, message=message)
    except TimeoutError as e:
        detail = diag() if diag else ""
        raise AssertionError(f"{e}\n{detail}") from None


# -- objects ----------------------------------------------------------------------
def get(kubectl: Runner, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
    r = kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    if r.returncode != 0:
        if "NotFound" in r.stderr or "not found" in r.stderr:
            return None
        raise CommandError(r.stderr)
    return json.loads(r.stdout)


def condition(obj: dict[str, Any] | None, kind: str) -> str | None:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return c.get("status")
    return None


def pod_ready(pod: dict[str, Any]) -> bool:
    return condition(pod, "Ready") == "True" and not pod["metadata"].get("deletionTimestamp")


def worker_selector(cluster: str) -> str:
    return f"app.kubernetes.io/name=pids-worker,pids.dev/cluster={cluster}"


def worker_pods(kubectl: Runner, namespace: str, cluster: str) -> list[dict[str, Any]]:
    return kubectl.json("get", "pods", "-n", namespace, "-l", worker_selector(cluster))["items"]


def wait_cluster_ready(
    kubectl: Runner, namespace: str, cluster: str, workers: int, timeout: float = 180
) -> dict[str, Any]:
    """Until the PidsCluster reports `workers` ready replicas and phase Ready."""

    def ready() -> dict[str, Any] | None:
        pc = get(kubectl, namespace, "pidscluster", cluster)
        s = (pc or {}).get("status") or {}
        ok = s.get("readyReplicas") == workers and s.get("replicas") == workers and s.get("phase") == "Ready"
        return pc if ok else None

    return wait_until(
        ready,
        timeout,
        f"PidsCluster {cluster} Ready with {workers} workers",
        lambda: operator_diag(kubectl, namespace, f"pidscluster/{cluster}", f"deployment/{cluster}-workers"),
    )


def wait_task_phase(
    kubectl: Runner, namespace: str, task: str, phases: Sequence[str] = ("Succeeded",), timeout: float = 240
) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        pt = get(kubectl, namespace, "pidstask", task)
        phase = ((pt or {}).get("status") or {}).get("phase")
        if phase in ("Failed",) and "Failed" not in phases:
            raise AssertionError(
                f"PidsTask {task} Failed: {json.dumps(pt['status'], indent=1)[:3000]}\n"
                + operator_diag(kubectl, namespace, f"pidstask/{task}")
            )
        return pt if phase in phases else None

    try:
        return wait_for(done, timeout=timeout, interval=1.0, message=f"PidsTask {task} phase in {list(phases)}")
    except TimeoutError as e:
        raise AssertionError(f"{e}\n" + operator_diag(kubectl, namespace, f"pidstask/{task}")) from None


def batch_task(name: str, cluster: str, function: str, items: list[Any], **spec: Any) -> str:
    """A PidsTask manifest (JSON, which kubectl accepts) of a batch."""
    return json.dumps(
        {
            "apiVersion": "pids.dev/v1alpha1",
            "kind": "PidsTask",
            "metadata": {"name": name},
            "spec": {"clusterRef": {"name": cluster}, "function": function, "items": items, **spec},
        }
    )


def cluster_manifest(name: str, workers: int, worker: dict[str, Any] | None = None, **spec: Any) -> str:
    """A PidsCluster manifest (JSON) with a managed Redis; `worker` is merged into the worker defaults."""
    body = {
        "apiVersion": "pids.dev/v1alpha1",
        "kind": "PidsCluster",
        "metadata": {"name": name},
        "spec": {
            "workers": workers,
            "redis": {"managed": {}},
            "allowedModules": ["pids.tasks"],
            "worker": {
                "image": IMAGES["worker"],
                "imagePullPolicy": "IfNotPresent",
                "concurrency": 4,
                "resources": {"requests": {"cpu": "50m", "memory": "96Mi"}, "limits": {"memory": "512Mi"}},
                **(worker or {}),
            },
            **spec,
        },
    }
    return json.dumps(body)


# -- a Helm release per test module -------------------------------------------------
@dataclass
class Release:
    namespace: str
    kubectl: Runner
    helm: Runner

    def apply_file(self, path: Path) -> subprocess.CompletedProcess[str]:
        return self.kubectl("apply", "-n", self.namespace, "-f", str(path))

    def apply(self, manifest: str) -> subprocess.CompletedProcess[str]:
        return self.kubectl.apply(manifest, "-n", self.namespace)

    def diag(self, *what: str) -> str:
        return operator_diag(self.kubectl, self.namespace, *what)


def _ns_name(prefix: str) -> str:
    return f"e2e-{prefix}-{uuid.uuid4().hex[:6]}"


_CRDS_CURRENT: list[bool] = []  # set once this session has installed the current CRD chart


def install_crds(helm: Runner, chart: Path = CRD_CHART_DIR) -> None:
    """`helm upgrade --install pids-crds charts/pids-crds` (the README's first step), with
    --take-ownership: it adopts CRDs that an older chart's crds/ directory created, which no
    release owns."""
    helm(
        "upgrade", "--install", CRD_RELEASE, str(chart), "-n", CRD_NAMESPACE, "--take-ownership", "--wait", timeout=300
    )


def install_release(
    kubectl: Runner, helm: Runner, prefix: str, figures: Figures | None = None, chart: Path = CHART_DIR
) -> Release:
    """A fresh namespace with `helm install pids charts/pids` in it, the operator Available.
    The current CRD chart is installed first unless another `chart` is given."""
    if chart == CHART_DIR and not _CRDS_CURRENT:
        install_crds(helm)
        _CRDS_CURRENT.append(True)
    ns = _ns_name(prefix)
    kubectl("create", "namespace", ns)
    kubectl("label", "namespace", ns, "pids.e2e/test=true")
    t0 = time.monotonic()
    helm("install", RELEASE, str(chart), "-n", ns, timeout=300)  # exactly what the README says
    r = kubectl(
        "wait",
        "-n",
        ns,
        "--for=condition=Available",
        f"deployment/{OPERATOR_DEPLOYMENT}",
        "--timeout=180s",
        check=False,
        timeout=200,
    )
    if r.returncode != 0:
        raise AssertionError(
            f"operator Deployment not Available:\n{r.stdout}{r.stderr}\n"
            + operator_diag(kubectl, ns, f"deployment/{OPERATOR_DEPLOYMENT}")
        )
    if figures is not None:
        figures.record(f"helm install -> operator Available [{prefix}]", time.monotonic() - t0)
    return Release(ns, kubectl, helm)


def teardown_release(rel: Release, failed: bool) -> None:
    """Delete the CRs first (their finalizers need the operator), then the release and the namespace."""
    if failed:
        print(rel.diag("pidsclusters", "pidstasks"))
    if os.environ.get("PIDS_E2E_KEEP_NS") == "1":
        return
    rel.kubectl(
        "delete",
        "pidstasks,pidsclusters",
        "--all",
        "-n",
        rel.namespace,
        "--wait=true",
        "--timeout=60s",
        check=False,
        timeout=90,
    )
    rel.helm("uninstall", RELEASE, "-n", rel.namespace, "--wait", "--timeout", "60s", check=False, timeout=90)
    rel.kubectl("delete", "namespace", rel.namespace, "--wait=false", check=False)


@pytest.fixture(scope="module")
def release(kubectl: Runner, helm: Runner, request: pytest.FixtureRequest) -> Iterator[Release]:
    """`helm install pids charts/pids` into a namespace of this test module."""
    prefix = request.module.__name__.removeprefix("test_pids_").replace("_", "-")[:20]
    rel = install_release(kubectl, helm, prefix, FIGURES)
    failed_before = request.session.testsfailed
    yield rel
    teardown_release(rel, request.session.testsfailed > failed_before)


# -- Redis through a port-forward, read with pids.client.Client ---------------------
class RedisAccess:
    """A pids Client on `svc/<cluster>-redis` through a port-forward; after a connection error
    the forward is started again (one to a deleted pod can outlive it) and the client rebuilt."""

    def __init__(self, kubectl: Runner, namespace: str, cluster: str) -> None:
        self.cluster = cluster
        self.forward = PortForward(kubectl, namespace, f"svc/{cluster}-redis", 6379)
        self._client: Any = None
        self._port = 0
        secret = kubectl.json("get", "secret", f"{cluster}-redis-auth", "-n", namespace)
        self.password = base64.b64decode(secret["data"]["password"]).decode()

    def client(self) -> Any:
        from pids.client import Client

        port = self.forward.local_port()
        if self._client is None or port != self._port:
            self._client = Client(f"redis://127.0.0.1:{port}/0", cluster=self.cluster, password=self.password)
            self._port = port
        return self._client

    def call(self, fn: Callable[[Any], Any], attempts: int = 3) -> Any:
        """fn(client), restarting the forward on a connection error."""
        import redis

        for i in range(attempts):
            try:
                return fn(self.client())
            except (redis.ConnectionError, redis.TimeoutError, ConnectionError):
                self.close()
                if i == attempts - 1:
                    raise
                time.sleep(1)
        return None

    def close(self) -> None:
        self.forward.close()
        self._client = None


@dataclass
class BatchCheck:
    total: int
    states: dict[str, int]
    max_attempt: int
    first_enqueued: float
    last_finished: float
    claimed_by: dict[str, int]
    reruns: int  # tasks that needed more than one attempt
    last_rerun_finished: float | None  # when the last of them completed


def check_batch(
    redis_access: RedisAccess, batch_id: str, n: int, expected: Callable[[int], Any] | None = None
) -> BatchCheck:
    """Every task <batch_id>-<i> of the batch succeeded, once, with the right result."""
    from pids.task import TaskState

    def read(c: Any) -> tuple[list[Any], list[Any]]:
        ids = c.batch_ids(batch_id)
        assert len(ids) == n, f"batch {batch_id} has {len(ids)} tasks in Redis, expected {n}"
        assert ids == [f"{batch_id}-{i}" for i in range(n)], "batch task ids are not <batch>-<i>"
        infos = [c.task_info(t) for t in ids]
        return infos, c.results(ids)

    infos, results = redis_access.call(read)
    states: dict[str, int] = {}
    claimed: dict[str, int] = {}
    for info in infos:
        states[info.state.value] = states.get(info.state.value, 0) + 1
        claimed[info.worker] = claimed.get(info.worker, 0) + 1
    bad = [i.id for i in infos if i.state is not TaskState.SUCCEEDED]
    assert not bad, f"{len(bad)} task(s) not succeeded: {bad[:10]}; states {states}"
    if expected is not None:
        wrong = [(i, r) for i, r in enumerate(results) if r != expected(i)]
        assert not wrong, f"{len(wrong)} wrong result(s), e.g. (i, result) {wrong[:5]}"
    reruns = [i for i in infos if i.attempt > 1]
    return BatchCheck(
        n,
        states,
        max(i.attempt for i in infos),
        min(i.enqueued_at for i in infos),
        max(i.finished_at or 0 for i in infos),
        claimed,
        len(reruns),
        max((i.finished_at or 0 for i in reruns), default=None),
    )


# -- killing a worker's process from the node ----------------------------------------
def docker() -> str | None:
    return shutil.which("docker")


def container_pid(node: str, container_id: str) -> int:
    """Host-side PID (in the node's PID namespace) of a container's main process."""
    cid = container_id.split("://", 1)[-1]
    out = subprocess.run(
        ["docker", "exec", node, "crictl", "inspect", "-o", "go-template", "--template", "{{.info.pid}}", cid],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if out.returncode != 0 or not out.stdout.strip().isdigit():
        raise CommandError(f"crictl inspect {cid} on {node}: {out.stdout}{out.stderr}")
    return int(out.stdout.strip())


def signal_container(pod: dict[str, Any], container: str, sig: str) -> int:
    """`kill -<sig>` the main process of a pod's container from its kind node.

    From inside the pod this is impossible: the worker is PID 1 of its PID
    namespace, and the kernel drops SIGKILL/SIGSTOP sent to a namespace's init
    from within. The kind node is the parent namespace, so it can."""
    node = pod["spec"]["nodeName"]
    cs = next(s for s in pod["status"]["containerStatuses"] if s["name"] == container)
    pid = container_pid(node, cs["containerID"])
    r = subprocess.run(
        ["docker", "exec", node, "kill", f"-{sig}", str(pid)], capture_output=True, text=True, timeout=30
    )
    if r.returncode != 0:
        raise CommandError(f"kill -{sig} {pid} on {node}: {r.stderr}")
    return pid


def restart_count(pod: dict[str, Any], container: str = "worker") -> int:
    for s in (pod.get("status") or {}).get("containerStatuses") or []:
        if s["name"] == container:
            return int(s.get("restartCount") or 0)
    return 0
