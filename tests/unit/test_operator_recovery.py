"""Crash recovery decisions: which pod events release a worker's claims."""

from __future__ import annotations

from typing import Any

from pids_operator.recovery import PodMemory, release, release_reason


def pod(restarts: int = 0, phase: str = "Running", uid: str = "u1") -> dict[str, Any]:
    return {
        "metadata": {"name": "demo-workers-abc", "uid": uid, "namespace": "ns", "labels": {"pids.dev/cluster": "demo"}},
        "status": {"phase": phase, "containerStatuses": [{"name": "worker", "restartCount": restarts}]},
    }


def test_deleted_pod_is_released() -> None:
    assert release_reason("DELETED", pod(), PodMemory()) == "PodDeleted"


def test_first_sight_sets_a_baseline_without_releasing() -> None:
    memory = PodMemory()
    assert release_reason("ADDED", pod(restarts=2), memory) is None
    assert release_reason("MODIFIED", pod(restarts=2), memory) is None


def test_container_restart_releases_once() -> None:
    memory = PodMemory()
    release_reason("ADDED", pod(restarts=0), memory)
    assert release_reason("MODIFIED", pod(restarts=1), memory) == "ContainerRestarted"
    assert release_reason("MODIFIED", pod(restarts=1), memory) is None


def test_failed_pod_releases_once() -> None:
    memory = PodMemory()
    assert release_reason("MODIFIED", pod(phase="Failed"), memory) == "PodFailed"
    assert release_reason("MODIFIED", pod(phase="Failed"), memory) is None


def test_deletion_forgets_the_pod() -> None:
    memory = PodMemory()
    release_reason("ADDED", pod(), memory)
    release_reason("DELETED", pod(), memory)
    assert memory.restarts == {} and memory.failed == set()


class FakeClient:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def release_worker(self, worker_id: str) -> int:
        self.calls.append(("release", worker_id))
        return 4

    def forget_worker(self, worker_id: str) -> bool:
        self.calls.append(("forget", worker_id))
        return True


def test_release_forgets_deleted_workers_only() -> None:
    c = FakeClient()
    assert release(c, "w1", "PodDeleted") == 4
    assert release(c, "w2", "ContainerRestarted") == 4
    assert c.calls == [("release", "w1"), ("forget", "w1"), ("release", "w2")]
