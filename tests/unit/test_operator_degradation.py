"""Why a cluster's workers cannot run, read from pod dicts shaped as the API server returns them."""

from __future__ import annotations

from typing import Any

from pids_operator.degradation import MAX_MESSAGE, newly_degraded, pod_problem, workers_problem


def pod(
    name: str, waiting: dict[str, Any] | None = None, last: dict[str, Any] | None = None, running: bool = False
) -> dict[str, Any]:
    state: dict[str, Any] = (
        {"running": {"startedAt": "2026-12-05T18:00:00Z"}} if running else {"waiting": waiting or {}}
    )
    status: dict[str, Any] = {"name": "worker", "state": state, "lastState": {"terminated": last} if last else {}}
    return {"metadata": {"name": name}, "status": {"containerStatuses": [status]}}


NEVER_PULL = {
    "reason": "ErrImageNeverPull",
    "message": 'Container image "pids-worker:nope" is not present with pull policy of Never',
}
CRASHING = {"reason": "CrashLoopBackOff", "message": "back-off 20s restarting failed container=worker"}
CONFIG_ERROR = {"exitCode": 2, "reason": "Error", "message": "error: PIDS_WINDOW must be a number, got 'many'\n"}


def test_an_image_that_cannot_be_pulled_names_the_reason_and_the_kubelets_message() -> None:
    p = pod_problem(pod("w-1", NEVER_PULL))
    assert p is not None and p.reason == "ErrImageNeverPull" and p.pod == "w-1"
    assert 'image "pids-worker:nope" is not present' in p.message


def test_a_crash_loop_reports_the_containers_last_words_and_exit_code() -> None:
    p = pod_problem(pod("w-1", CRASHING, last=CONFIG_ERROR))
    assert p is not None and p.reason == "CrashLoopBackOff"
    assert p.message == "error: PIDS_WINDOW must be a number, got 'many' (exit code 2)"


def test_a_crash_loop_without_a_message_still_gives_the_exit_code() -> None:
    p = pod_problem(pod("w-1", CRASHING, last={"exitCode": 137, "reason": "OOMKilled"}))
    assert p is not None and p.message == "exit code 137"


def test_pods_starting_or_running_are_no_problem() -> None:
    assert pod_problem(pod("w-1", {"reason": "ContainerCreating"})) is None
    assert pod_problem(pod("w-1", running=True, last=CONFIG_ERROR)) is None
    assert pod_problem({"metadata": {"name": "pending"}, "status": {"phase": "Pending"}}) is None
    assert workers_problem([pod("w-1", running=True)]) is None and workers_problem([]) is None


def test_the_cluster_problem_is_the_most_common_one_and_counts_its_pods() -> None:
    pods = [
        pod("w-1", CRASHING, last=CONFIG_ERROR),
        pod("w-2", NEVER_PULL),
        pod("w-3", NEVER_PULL),
        pod("w-4", running=True),
    ]
    p = workers_problem(pods)
    assert p is not None and p.reason == "ErrImageNeverPull" and p.pod == "w-2"
    assert p.message.startswith("ErrImageNeverPull (2 of 4 worker pods, e.g. w-2): Container image")
    one = workers_problem([pod("w-1", CRASHING, last=CONFIG_ERROR)])
    assert (
        one is not None
        and one.message == "CrashLoopBackOff (pod w-1): error: PIDS_WINDOW must be a number, got 'many' (exit code 2)"
    )


def test_long_last_words_keep_their_end() -> None:
    traceback = "Traceback (most recent call last):\n" + "  frame\n" * 200 + "ValueError: the actual cause"
    p = pod_problem(pod("w-1", CRASHING, last={"exitCode": 1, "message": traceback}))
    assert p is not None and len(p.message) <= MAX_MESSAGE and p.message.endswith("the actual cause (exit code 1)")


def degraded(reason: str | None) -> dict[str, Any]:
    status = "True" if reason else "False"
    return {
        "conditions": [
            {"type": "Ready", "status": "False"},
            {"type": "Degraded", "status": status, "reason": reason or "AsExpected", "message": "why"},
        ]
    }


def test_an_event_is_due_when_a_cluster_turns_degraded_or_changes_reason() -> None:
    assert newly_degraded(degraded(None), degraded("ErrImageNeverPull")) == ("ErrImageNeverPull", "why")
    assert newly_degraded({}, degraded("CrashLoopBackOff")) == ("CrashLoopBackOff", "why")
    assert newly_degraded(degraded("ErrImageNeverPull"), degraded("CrashLoopBackOff")) == ("CrashLoopBackOff", "why")
    assert newly_degraded(degraded("CrashLoopBackOff"), degraded("CrashLoopBackOff")) is None
    assert newly_degraded(degraded("CrashLoopBackOff"), degraded(None)) is None
