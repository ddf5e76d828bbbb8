"""Helpers of the chaos tests (test_pids_chaos.py): the chaos image, a ledger Redis that counts
every execution, a driver pod that submits tasks through the Python client, and the figures.

How executions are counted: the tasks (chaos_tasks:record) add one to a per-item counter in
the ledger Redis when they start and when they end; no test touches that Redis. A task is
*duplicated* when its execution ran to the end more than once; *lost* when it never succeeded
(or, submitted through the client, its wait raised TaskLost). The queue's own `succeeded`
counter gives the recorded completions, checked against the number of tasks.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kube import E2E_DIR, IMAGE_TAG, IMAGES, PortForward, Runner, wait_for

CHAOS_IMAGE = f"pids-e2e-chaos:{IMAGE_TAG}"
LEDGER = "ledger"
LEDGER_URL = "redis://ledger:6379/0"
RESULTS_PATH = E2E_DIR / ".work" / "chaos.json"

LEDGER_MANIFEST = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: ledger}
spec:
  replicas: 1
  selector: {matchLabels: {app: ledger}}
  template:
    metadata: {labels: {app: ledger}}
    spec:
      securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: redis
        image: %(image)s
        imagePullPolicy: IfNotPresent
        args: [--bind, 0.0.0.0, --protected-mode, "no", --save, "", --appendonly, "no"]
        ports: [{containerPort: 6379}]
        securityContext: {readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
        readinessProbe: {exec: {command: [redis-cli, ping]}, periodSeconds: 2}
        volumeMounts: [{name: data, mountPath: /data}]
      volumes: [{name: data, emptyDir: {}}]
---
apiVersion: v1
kind: Service
metadata: {name: ledger}
spec:
  selector: {app: ledger}
  ports: [{port: 6379, targetPort: 6379}]
"""


def build_chaos_image() -> float:
    """docker build of e2e/images/chaos on the worker image, then `kind load`; seconds taken."""
    t0 = time.monotonic()
    context = E2E_DIR / "images" / "chaos"
    subprocess.run(
        [
            "docker",
            "build",
            "--quiet",
            "--build-arg",
            f"BASE_IMAGE={IMAGES['worker']}",
            "-t",
            CHAOS_IMAGE,
            str(context),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )
    cluster = os.environ.get("PIDS_E2E_CLUSTER", "pids-e2e")
    subprocess.run(
        ["kind", "load", "docker-image", CHAOS_IMAGE, "--name", cluster],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return time.monotonic() - t0


@dataclass
class Ledger:
    """Execution counts per tag, read through a port-forward to the ledger Redis."""

    forward: PortForward

    def counts(self, tag: str) -> tuple[dict[int, int], dict[int, int]]:
        """(started, finished): item index -> executions."""
        import redis

        def read() -> tuple[dict[int, int], dict[int, int]]:
            r = redis.Redis(port=self.forward.local_port(), socket_timeout=5, decode_responses=True)
            started, finished = r.hgetall(f"started:{tag}"), r.hgetall(f"finished:{tag}")
            return {int(k): int(v) for k, v in started.items()}, {int(k): int(v) for k, v in finished.items()}

        try:
            return read()
        except redis.RedisError:  # a dead forward: once more on a fresh one
            self.forward.close()
            return read()


def driver_pod(name: str, cluster: str, tag: str, tasks: int, interval: float, seconds: float, wait: float) -> str:
    """A pod running chaos_driver beside `cluster`, configured like its workers."""
    env = {
        "CHAOS_TAG": tag,
        "CHAOS_TASKS": str(tasks),
        "CHAOS_INTERVAL": str(interval),
        "CHAOS_SECONDS": str(seconds),
        "CHAOS_WAIT": str(wait),
        "CHAOS_LEDGER_URL": LEDGER_URL,
    }
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": {"pids.dev/cluster": cluster, "app": "chaos-driver"}},
            "spec": {
                "restartPolicy": "Never",
                "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [
                    {
                        "name": "driver",
                        "image": CHAOS_IMAGE,
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["python3", "-m", "chaos_driver"],
                        "envFrom": [{"configMapRef": {"name": f"{cluster}-config"}}],
                        "env": [
                            {
                                "name": "PIDS_REDIS_PASSWORD",
                                "valueFrom": {"secretKeyRef": {"name": f"{cluster}-redis-auth", "key": "password"}},
                            },
                            *({"name": k, "value": v} for k, v in env.items()),
                        ],
                        "securityContext": {
                            "readOnlyRootFilesystem": True,
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]},
                        },
                        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                    }
                ],
                "volumes": [{"name": "tmp", "emptyDir": {}}],
            },
        }
    )


def driver_result(kubectl: Runner, namespace: str, pod: str, timeout: float) -> dict[str, Any]:
    """The driver's JSON summary, once its pod has ended."""

    def ended() -> str | None:
        phase = kubectl.json("get", "pod", pod, "-n", namespace)["status"].get("phase")
        return phase if phase in ("Succeeded", "Failed") else None

    phase = wait_for(ended, timeout=timeout, interval=2, message=f"driver pod {pod} to end")
    logs = kubectl("logs", pod, "-n", namespace).stdout
    if phase != "Succeeded":
        raise AssertionError(f"driver {pod} {phase}:\n{logs[-3000:]}")
    return json.loads(logs.strip().splitlines()[-1])  # type: ignore[no-any-return]


STALL_WINDOW_SECONDS = 90.0
STALL_MIN_SECONDS = 1.0  # the counter moves every poll (0.2 s) while work flows


def work_flows_again(samples: Sequence[Sequence[Any]], since: float) -> float:
    """Seconds from `since` (the deletion) to the end of the longest stall of the succeeded
    counter that follows: the first rise after the longest time without one (failed reads and
    a counter that restarts from zero count as no rise). 0 if it never stalled for a second."""
    rises, last = [], None
    for t, v in samples:
        if v is not None and last is not None and v > last and since <= t <= since + STALL_WINDOW_SECONDS:
            rises.append(t)
        last = v if v is not None else last
    best, previous = (STALL_MIN_SECONDS, since), since
    for t in rises:
        if t - previous > best[0]:
            best = (t - previous, t)
        previous = t
    return float(best[1] - since)


@dataclass
class Outcome:
    """What one chaos scenario did to its tasks."""

    scenario: str
    tasks: int
    lost: int
    duplicated: int
    reexecuted: int  # started more than once (at-least-once execution; not a duplicate completion)
    flows_again: float
    failover: float | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def save(self) -> None:
        RESULTS_PATH.parent.mkdir(parents=True, exist_ok=True)
        results = json.loads(RESULTS_PATH.read_text()) if RESULTS_PATH.exists() else {}
        results[self.scenario] = {**self.__dict__, "at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        RESULTS_PATH.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
        print(f"[chaos] {json.dumps(results[self.scenario])}")


def execution_counts(ledger: Ledger, tags_and_sizes: Sequence[tuple[str, int]]) -> tuple[int, int, int]:
    """(tasks, duplicated, re-executed) over the given tags and their item counts."""
    tasks = duplicated = reexecuted = 0
    for tag, size in tags_and_sizes:
        started, finished = ledger.counts(tag)
        tasks += size
        duplicated += sum(1 for n in finished.values() if n > 1)
        reexecuted += sum(1 for n in started.values() if n > 1)
    return tasks, duplicated, reexecuted
