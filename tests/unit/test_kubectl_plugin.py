"""kubectl-pids' pure parts: what kubectl's failures become, the PidsTask `submit` builds, and
how results, describe and top are printed."""

from __future__ import annotations

import csv
import importlib
import io
import json
import tomllib
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from rich.console import Console

from pids.cluster_state import ClusterStats, WorkerInfo
from pids.errors import TaskArgumentsError, TaskFunctionError
from pids.health import WorkerMetrics
from pids.kubectl import views
from pids.kubectl.access import in_cluster_pod, in_cluster_service
from pids.kubectl.kubectl import AccessDenied, Kubectl, KubectlError, ObjectNotFound, kubectl_error
from pids.kubectl.main import build_parser, main, task_manifest
from pids.kubectl.top import CLAIMED
from pids.task import TaskInfo, TaskState

ROOT = Path(__file__).resolve().parents[2]


def render(renderable: object, width: int = 200) -> str:
    console = Console(record=True, width=width, force_terminal=False)
    console.print(renderable)
    return console.export_text()


def info(task_id: str, state: TaskState, worker: str = "w-1", attempt: int = 1, error: str = "") -> TaskInfo:
    return TaskInfo(
        id=task_id,
        fn="m:f",
        state=state,
        attempt=attempt,
        max_attempts=3,
        weight=1.0,
        worker=worker,
        error=error,
        batch="b",
        enqueued_at=100.0,
        first_claimed_at=100.5,
        claimed_at=100.5,
        finished_at=101.25 if state.is_final else None,
        result_size=None,
    )


TRACEBACK = 'DocumentNotReady: doc-3 lands in 4.0 s\nTraceback (most recent call last):\n  File "tasks.py", line 9'
ROWS = views.items(
    ["b-0", "b-1", "b-2", "b-3"],
    [
        info("b-0", TaskState.SUCCEEDED, attempt=2, error="Flaky: attempt 1"),
        info("b-1", TaskState.FAILED, "w-2", 3, TRACEBACK),
        info("b-2", TaskState.PENDING, worker=""),
        None,
    ],
    [{"words": 5}, None, None, None],
)


def test_kubectl_failures_become_errors_that_name_the_cause() -> None:
    missing = kubectl_error('Error from server (NotFound): pidstasks.pids.dev "x" not found\n', "PidsTask 'x'", "ns")
    assert isinstance(missing, ObjectNotFound) and str(missing) == "no PidsTask 'x' in namespace 'ns'"
    denied = kubectl_error(
        'Error from server (Forbidden): pidstasks.pids.dev "x" is forbidden: User "u" cannot get '
        'resource "pidstasks"\n',
        "PidsTask 'x'",
        "ns",
    )
    assert isinstance(denied, AccessDenied) and 'User "u" cannot get' in str(denied)
    no_crd = kubectl_error('error: the server doesn\'t have a resource type "pidstasks"\n', "PidsTask 'x'", "ns")
    assert "CRDs are not installed" in str(no_crd)
    down = kubectl_error(
        "The connection to the server localhost:8080 was refused - did you specify the right host "
        "or port?\nUnable to connect to the server\n",
        "x",
        "ns",
    )
    assert "cannot reach the Kubernetes API server" in str(down)
    other = kubectl_error("error: something odd\n", "x", "ns")
    assert type(other) is KubectlError and str(other) == "kubectl failed on x: error: something odd"


def test_a_missing_kubectl_binary_is_a_clear_error() -> None:
    with pytest.raises(KubectlError, match="not found: install kubectl or set PIDS_KUBECTL"):
        Kubectl(namespace="ns", binary="/nonexistent/kubectl").run("version")


def test_kubectl_gets_the_users_context_kubeconfig_and_namespace() -> None:
    kubectl = Kubectl(namespace="ns", context="ctx", kubeconfig="/k", binary="kubectl")
    assert kubectl.command("get", "pods") == [
        "kubectl",
        "--kubeconfig",
        "/k",
        "--context",
        "ctx",
        "--namespace",
        "ns",
        "get",
        "pods",
    ]
    assert kubectl.command("get", "--raw", "/x", namespaced=False) == [
        "kubectl",
        "--kubeconfig",
        "/k",
        "--context",
        "ctx",
        "get",
        "--raw",
        "/x",
    ]


def test_the_namespace_may_come_before_or_after_the_subcommand() -> None:
    parser = build_parser()
    assert parser.parse_args(["-n", "a", "results", "t"]).namespace == "a"
    assert parser.parse_args(["results", "t", "-n", "b"]).namespace == "b"
    assert parser.parse_args(["results", "t"]).namespace is None


def test_only_in_cluster_service_hosts_are_reached_by_port_forward() -> None:
    assert in_cluster_service("demo-redis.ns1.svc") == ("demo-redis", "ns1")
    assert in_cluster_service("demo-redis.ns1.svc.cluster.local") == ("demo-redis", "ns1")
    assert in_cluster_service("redis.example.com") is None and in_cluster_service("10.0.0.5") is None


def test_sentinel_announced_pod_hosts_name_the_pod_its_service_and_namespace() -> None:
    host = "demo-redis-1.demo-redis-pods.ns1.svc.cluster.local"
    assert in_cluster_pod(host) == ("demo-redis-1", "demo-redis-pods", "ns1")
    assert in_cluster_pod("demo-redis.ns1.svc") is None and in_cluster_pod("10.0.0.5") is None


def test_submit_builds_a_pidstask_with_json_arguments_and_only_the_options_given() -> None:
    args = build_parser().parse_args(["submit", "demo", "pids.tasks:echo", "3", "word", '{"a": [1]}', "--weight", "2"])
    manifest = task_manifest(args)
    assert manifest["apiVersion"] == "pids.dev/v1alpha1" and manifest["kind"] == "PidsTask"
    assert manifest["metadata"] == {"generateName": "echo-"}
    assert manifest["spec"] == {
        "clusterRef": {"name": "demo"},
        "function": "pids.tasks:echo",
        "args": [3, "word", {"a": [1]}],
        "weight": 2.0,
    }


def test_submit_makes_a_batch_from_items_and_rejects_mixed_or_bad_input() -> None:
    parser = build_parser()
    args = parser.parse_args(
        ["submit", "demo", "app.tasks:count_Words", "--items", "[[1], [2]]", "--name", "t1", "--max-attempts", "1"]
    )
    manifest = task_manifest(args)
    assert manifest["metadata"] == {"name": "t1"}
    assert manifest["spec"]["items"] == [[1], [2]] and manifest["spec"]["maxAttempts"] == 1
    assert task_manifest(parser.parse_args(["submit", "d", "m:Count_Words_2"]))["metadata"] == {
        "generateName": "count-words-2-"
    }
    with pytest.raises(TaskArgumentsError, match="--items makes a batch"):
        task_manifest(parser.parse_args(["submit", "d", "m:f", "1", "--items", "[[1]]"]))
    with pytest.raises(TaskArgumentsError, match="--items must be a JSON list"):
        task_manifest(parser.parse_args(["submit", "d", "m:f", "--items", '{"a": 1}']))
    with pytest.raises(TaskArgumentsError, match="--kwargs is not valid JSON"):
        task_manifest(parser.parse_args(["submit", "d", "m:f", "--kwargs", "{nope"]))
    with pytest.raises(TaskFunctionError, match="module:callable"):
        task_manifest(parser.parse_args(["submit", "d", "os.system"]))


def test_bad_input_exits_two_with_the_error_before_anything_is_created(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-n", "ns", "submit", "demo", "not-a-function"]) == 2
    assert "task function must look like" in capsys.readouterr().err


def test_items_carry_a_result_only_when_succeeded() -> None:
    assert [(r.item, r.state, r.result, r.pod, r.attempts) for r in ROWS] == [
        (0, "succeeded", {"words": 5}, "w-1", 2),
        (1, "failed", None, "w-2", 3),
        (2, "pending", None, "", 1),
        (3, "missing", None, "", 0),
    ]
    assert ROWS[0].wait_seconds == 0.5 and ROWS[0].run_seconds == 0.75 and ROWS[2].run_seconds is None
    assert ROWS[1].error_line == "DocumentNotReady: doc-3 lands in 4.0 s"


def test_results_as_json_keep_the_whole_error_of_what_did_not_succeed() -> None:
    parsed = json.loads(views.results_json(ROWS))
    assert parsed[0] == {"item": 0, "id": "b-0", "state": "succeeded", "result": {"words": 5}, "error": None}
    assert parsed[1]["error"] == TRACEBACK and parsed[3]["state"] == "missing"


def test_results_as_csv_have_one_line_per_item_with_the_result_as_json() -> None:
    text = views.results_csv(ROWS)
    assert len(text.splitlines()) == 5
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0] == {"item": "0", "id": "b-0", "state": "succeeded", "result": '{"words":5}', "error": ""}
    assert rows[1]["error"] == "DocumentNotReady: doc-3 lands in 4.0 s" and rows[1]["result"] == ""


def test_results_table_shows_each_items_result_or_error() -> None:
    text = render(views.results_table("PidsTask t", ROWS))
    assert '{"words": 5}' in text and "DocumentNotReady: doc-3 lands in 4.0 s" in text and "missing" in text


def test_describe_shows_the_pod_of_each_item_and_the_tracebacks() -> None:
    body = {
        "metadata": {"namespace": "ns"},
        "spec": {"clusterRef": {"name": "demo"}, "function": "m:f"},
        "status": {
            "phase": "Running",
            "reason": "InProgress",
            "message": "2/4\nTraceback: in the status",
            "taskId": "b",
            "batch": True,
        },
    }
    text = render(views.describe("t", body, ROWS))
    assert "Running (InProgress) (2/4)" in text and "Traceback: in the status" not in text
    assert "demo" in text and "m:f" in text and "w-1: 1, w-2: 1" in text
    assert "1 failed, 1 missing, 1 pending, 1 succeeded" in text and "Flaky: attempt 1" in text  # history kept
    assert "item 1 (b-1) failed at attempt 3 on w-2:" in text and 'File "tasks.py", line 9' in text
    many = views.items(
        [f"b-{i}" for i in range(4)], [info(f"b-{i}", TaskState.FAILED, error="E") for i in range(4)], [None] * 4
    )
    assert "... and 2 more failed item(s): kubectl pids results t -o json" in render(views.describe("t", body, many, 2))


def test_heartbeat_age_is_counted_from_the_deadline_the_heartbeat_set() -> None:
    assert views.heartbeat_age(10_000, now_ms=8_500, ttl_ms=3_000) == 1.5
    assert views.heartbeat_age(None, 8_500, 3_000) is None


def test_top_lists_live_workers_and_pods_redis_does_not_know_yet() -> None:
    worker = WorkerInfo(
        id="w-1",
        slots=4,
        speed=1.0,
        position="zone-a/n1",
        load=2.5,
        held=2,
        draining=False,
        alive=True,
        tasks_done=10,
        work_done=10.0,
        busy_seconds=1.0,
    )
    stats = ClusterStats(
        backlog=7, scheduled=1, running=2, succeeded=10, failed=1, cancelled=0, enqueued=21, workers=[worker]
    )
    rows = views.worker_rows(
        stats,
        {"w-1": 2.0},
        {"w-1": 10_000.0},
        9_000,
        3_000,
        {"w-1": "Running", "w-2": "Pending"},
        {"w-1": 12.5, "w-2": None},
    )
    assert [(r.worker, r.pod, r.alive, r.free_slots, r.slots, r.heartbeat_age, r.claims_per_second) for r in rows] == [
        ("w-1", "Running", True, 2, 4, 2.0, 12.5),
        ("w-2", "Pending", False, 0, 0, None, None),
    ]
    queue = views.QueueRow(pending=7, scheduled=1, running=2, dead_letters=1, succeeded=10, failed=1)
    assert json.loads(views.top_json("demo", queue, rows))["queue"]["dead_letters"] == 1
    text = render(views.top_table("demo", queue, rows))
    assert "pending 7" in text and "dead letters 1" in text and "2/4" in text and "zone-a/n1" in text
    assert "2.0s ago" in text and "12.5" in text


def test_claims_are_read_from_the_workers_own_metrics() -> None:
    metrics = WorkerMetrics()
    metrics.claimed = 42
    match = CLAIMED.search(generate_latest(metrics.registry).decode())
    assert match is not None and float(match.group(1)) == 42


def test_the_plugin_is_installed_as_kubectl_pids() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, function = scripts["kubectl-pids"].partition(":")
    assert getattr(importlib.import_module(module), function) is main
