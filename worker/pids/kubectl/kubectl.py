"""kubectl, run as a subprocess: the plugin reaches the cluster only through the API server,
with the user's own kubeconfig, context and permissions. Its failures become PidsErrors that
say what was missing or refused."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import threading
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import PidsError, RedisUnavailable

KUBECTL_ENV = "PIDS_KUBECTL"  # the kubectl binary, when not the one on PATH
POD_RUNNING_TIMEOUT = "10s"  # how long port-forward waits for a running pod behind the Service
FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+)")
KIND_NAMES = {"pidstask": "PidsTask", "pidscluster": "PidsCluster", "secret": "Secret", "configmap": "ConfigMap"}


class KubectlError(PidsError):
    """kubectl failed; the message says how."""


class ObjectNotFound(KubectlError):
    """No such object in the namespace."""


class AccessDenied(KubectlError):
    """The API server refused the request (RBAC)."""


def kubectl_error(stderr: str, what: str, namespace: str) -> KubectlError:
    """The error for what kubectl printed when asked about `what` (e.g. "PidsTask 'x'")."""
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    said = lines[-1] if lines else "no output"
    if "(NotFound)" in stderr or re.search(r'"[^"]*" not found', stderr):
        return ObjectNotFound(f"no {what} in namespace {namespace!r}")
    if "(Forbidden)" in stderr or " forbidden" in stderr:
        return AccessDenied(f"permission denied for {what} in namespace {namespace!r}: {said}")
    if "doesn't have a resource type" in stderr:
        return KubectlError(f"the PIDS CRDs are not installed in this cluster ({said})")
    if "Unable to connect to the server" in stderr or "connection refused" in stderr:
        return KubectlError(f"cannot reach the Kubernetes API server: {said}")
    return KubectlError(f"kubectl failed on {what}: {said}")


@dataclass(frozen=True)
class Kubectl:
    """kubectl with the user's --namespace/--context/--kubeconfig."""

    namespace: str = ""  # empty: the context's namespace (see resolved())
    context: str | None = None
    kubeconfig: str | None = None
    binary: str = field(default_factory=lambda: os.environ.get(KUBECTL_ENV, "kubectl"))
    timeout: float = 60.0

    def resolved(self) -> Kubectl:
        """This kubectl with the namespace filled in from the kubeconfig's context, like kubectl does."""
        if self.namespace:
            return self
        current = self.run(
            "config",
            "view",
            "--minify",
            "--output",
            "jsonpath={..namespace}",
            namespaced=False,
            what="the kubeconfig's current context",
        )
        return replace(self, namespace=current.strip() or "default")

    def command(self, *args: str, namespaced: bool = True) -> list[str]:
        cmd = [self.binary]
        if self.kubeconfig:
            cmd += ["--kubeconfig", self.kubeconfig]
        if self.context:
            cmd += ["--context", self.context]
        if namespaced and self.namespace:
            cmd += ["--namespace", self.namespace]
        return cmd + list(args)

    def run(self, *args: str, input: str | None = None, namespaced: bool = True, what: str = "") -> str:
        """kubectl's stdout; a KubectlError naming `what` when it fails."""
        try:
            proc = subprocess.run(
                self.command(*args, namespaced=namespaced),
                input=input,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except FileNotFoundError:
            raise KubectlError(f"{self.binary!r} not found: install kubectl or set {KUBECTL_ENV}") from None
        except subprocess.TimeoutExpired:
            raise KubectlError(f"kubectl {' '.join(args[:2])} did not answer in {self.timeout:.0f} s") from None
        if proc.returncode != 0:
            raise kubectl_error(proc.stderr, what or f"kubectl {' '.join(args[:3])}", self.namespace or "default")
        return proc.stdout

    def get(self, kind: str, name: str) -> dict[str, Any]:
        out = self.run("get", kind, name, "--output", "json", what=f"{KIND_NAMES.get(kind, kind)} {name!r}")
        return json.loads(out)  # type: ignore[no-any-return]

    def select(self, kind: str, selector: str) -> list[dict[str, Any]]:
        out = self.run("get", kind, "--selector", selector, "--output", "json", what=f"{kind} {selector}")
        return json.loads(out)["items"]  # type: ignore[no-any-return]

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        kind = manifest.get("kind", "object")
        out = self.run(
            "create", "--filename", "-", "--output", "json", input=json.dumps(manifest), what=f"a new {kind}"
        )
        return json.loads(out)  # type: ignore[no-any-return]

    def patch_status(self, kind: str, name: str, status: dict[str, Any]) -> None:
        self.run(
            "patch",
            kind,
            name,
            "--subresource",
            "status",
            "--type",
            "merge",
            "--patch",
            json.dumps({"status": status}),
            what=f"the status of {KIND_NAMES.get(kind, kind)} {name!r}",
        )

    def raw(self, path: str) -> str:
        """GET an API server path (e.g. a pod's port through its proxy subresource)."""
        return self.run("get", "--raw", path, namespaced=False, what=path)


class PortForward:
    """`kubectl port-forward <target> :<port>`: a local port that reaches the target ("svc/<name>"
    or "pod/<name>") through the API server, while the context is open."""

    def __init__(self, kubectl: Kubectl, target: str, port: int, ready_timeout: float = 30.0) -> None:
        self.kubectl, self.target, self.port, self.ready_timeout = kubectl, target, port, ready_timeout
        self.process: subprocess.Popen[str] | None = None

    def __enter__(self) -> int:
        cmd = self.kubectl.command(
            "port-forward",
            self.target,
            f":{self.port}",
            "--address",
            "127.0.0.1",
            f"--pod-running-timeout={POD_RUNNING_TIMEOUT}",
        )
        try:
            self.process = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        except FileNotFoundError:
            raise KubectlError(f"{self.kubectl.binary!r} not found: install kubectl or set {KUBECTL_ENV}") from None
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_pump, args=(self.process, lines), daemon=True).start()
        said: list[str] = []
        while True:
            try:
                line = lines.get(timeout=self.ready_timeout)
            except queue.Empty:
                self.__exit__()
                raise RedisUnavailable(
                    f"port-forward to {self.target} not ready after {self.ready_timeout:.0f} s"
                ) from None
            if line is None:  # kubectl exited
                self.__exit__()
                reason = said[-1] if said else "it exited"
                raise RedisUnavailable(
                    f"kubectl port-forward {self.target} (namespace {self.kubectl.namespace!r}) failed: {reason}"
                )
            match = FORWARDING.search(line)
            if match:
                return int(match.group(1))
            said.append(line.strip())

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def _pump(process: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    """Read kubectl's output to the end (so its pipe never fills), handing each line over."""
    for line in process.stdout or ():
        lines.put(line)
    lines.put(None)
