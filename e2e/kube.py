"""The e2e cluster's names and the command runner: the images, the chart, kubectl/helm
calls that fail with their output, and polling (shared by conftest and the test helpers)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pids import __version__ as pids_version

E2E_DIR = Path(__file__).resolve().parent
REPO_ROOT = E2E_DIR.parent
CHART_DIR = REPO_ROOT / "charts" / "pids"
IMAGE_TAG = os.environ.get("PIDS_E2E_IMAGE_TAG", pids_version)
IMAGES = {
    "worker": f"pids-worker:{IMAGE_TAG}",
    "operator": f"pids-operator:{IMAGE_TAG}",
    "redis": f"pids-redis:{IMAGE_TAG}",
    "wordcount": f"pids-example-wordcount:{IMAGE_TAG}",  # examples/app: users' own code FROM pids-worker
}

T = TypeVar("T")


class CommandError(AssertionError):
    """A kubectl/helm call failed; the message carries its output."""


@dataclass
class Runner:
    """Runs one CLI (kubectl or helm) against the e2e cluster."""

    binary: str
    kubeconfig: str
    default_timeout: float = 120.0

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[str]:
        cmd = [self.binary, *args]
        env = {**os.environ, "KUBECONFIG": self.kubeconfig}
        proc = subprocess.run(
            cmd,
            input=input,
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout or self.default_timeout,
        )
        if check and proc.returncode != 0:
            raise CommandError(
                f"{' '.join(cmd)} exited {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
            )
        return proc

    def json(self, *args: str, **kw: Any) -> Any:
        """Run with ``-o json`` and parse the output."""
        return json.loads(self(*args, "-o", "json", **kw).stdout)

    def apply(self, manifest: str, *args: str) -> subprocess.CompletedProcess[str]:
        """``kubectl apply -f -`` of a YAML/JSON string."""
        return self("apply", "-f", "-", *args, input=manifest)


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 120.0,
    interval: float = 1.0,
    message: str = "condition",
) -> T:
    """Poll ``predicate`` until it returns something truthy and return that.

    Exceptions raised by the predicate count as "not yet"; the last one is
    reported if the timeout expires.
    """
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    last_value: Any = None
    while True:
        try:
            last_value = predicate()
            if last_value:
                return last_value
        except Exception as exc:
            last_exc = exc
        if time.monotonic() >= deadline:
            detail = f"; last error: {last_exc!r}" if last_exc else f"; last value: {last_value!r}"
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {message}{detail}")
        time.sleep(interval)


class Plugin:
    """`kubectl pids ...` through the real kubectl, which finds the plugin on PATH."""

    def __init__(self, kubectl: Runner, bin_dir: Path, namespace: str) -> None:
        shim = bin_dir / "kubectl-pids"
        shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m pids.kubectl "$@"\n')
        shim.chmod(0o755)
        self.kubectl, self.namespace = kubectl, namespace
        self.env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "KUBECONFIG": kubectl.kubeconfig,
            "PIDS_KUBECTL": kubectl.binary,
            "COLUMNS": "250",
        }

    def __call__(self, *args: str, rc: int = 0, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [self.kubectl.binary, "pids", *args, "-n", self.namespace],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
        )
        assert proc.returncode == rc, (
            f"kubectl pids {' '.join(args)} exited {proc.returncode}, not {rc}\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
        return proc

    def json(self, *args: str, rc: int = 0) -> Any:
        return json.loads(self(*args, "-o", "json", rc=rc).stdout)


class PortForward:
    """`kubectl port-forward <target> :<port>`; restarted by `local_port()` when it died."""

    def __init__(self, kubectl: Runner, namespace: str, target: str, port: int) -> None:
        self.kubectl, self.namespace, self.target, self.port = kubectl, namespace, target, port
        self.proc: subprocess.Popen[str] | None = None
        self._local = 0

    def local_port(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            self._local = wait_for(self._start, timeout=60, interval=1, message=f"port-forward {self.target}")
        return self._local

    def _start(self) -> int:
        self.close()
        cmd = [
            self.kubectl.binary,
            "--kubeconfig",
            self.kubectl.kubeconfig,
            "port-forward",
            "-n",
            self.namespace,
            self.target,
            f":{self.port}",
            "--address",
            "127.0.0.1",
        ]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        m = re.search(r"127\.0\.0\.1:(\d+)", line)
        if not m:
            rest = self.proc.stdout.read() if self.proc.poll() is not None else ""
            raise CommandError(f"port-forward {self.target} failed: {line}{rest}")
        # drain the rest of its output so the pipe never fills
        threading.Thread(target=lambda p=self.proc: [None for _ in p.stdout], daemon=True).start()  # type: ignore[union-attr]
        return int(m.group(1))

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None
