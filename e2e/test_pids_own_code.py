"""Users' own code on a real cluster, and the kubectl plugin (issue 18).

The wordcount example (examples/app): its image FROM pids-worker (built offline by
e2e/images.sh), a PidsCluster allowing its module, a PidsTask calling it, the connection
Secret `<cluster>-app`, and an in-cluster producer Job that submits 1,000 tasks with
Client.map and checks every result. Then each `kubectl pids` subcommand, run through the real
kubectl's plugin lookup (a `kubectl-pids` on PATH running this checkout's pids.kubectl), and
its errors: no such object, no permission, Redis unreachable.

One `helm install` for the module; the tests share the cluster "wordcount" and run in file order.
"""

from __future__ import annotations

import base64
import json
import sys
import time
from typing import Any

import pytest
from helpers_pids import (
    FIGURES,
    cluster_manifest,
    get,
    release,  # noqa: F401  (module fixture)
    wait_cluster_ready,
    wait_task_phase,
    wait_until,
    worker_pods,
)
from kube import IMAGES, REPO_ROOT, Plugin, Runner

pytestmark = pytest.mark.e2e
APP = REPO_ROOT / "examples" / "app"
CLUSTER = "wordcount"  # examples/app/cluster.yaml
SAMPLE = "wordcount-sample"  # examples/app/task.yaml
sys.path.insert(0, str(APP / "src"))  # the expected counts come from the example's own corpus

from wordcount.corpus import Document, design, summary  # noqa: E402


def expected(arg: dict[str, Any]) -> dict[str, Any]:
    doc = Document.from_arg(arg)
    return {"doc": doc.id, **summary(design(doc))}


@pytest.fixture(scope="module")
def kpids(release, tmp_path_factory: pytest.TempPathFactory) -> Plugin:  # noqa: F811
    return Plugin(release.kubectl, tmp_path_factory.mktemp("plugin-bin"), release.namespace)


def secret_data(kubectl: Runner, namespace: str, name: str) -> dict[str, str]:
    secret = kubectl.json("get", "secret", name, "-n", namespace)
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def table_rows(text: str) -> list[list[str]]:
    """The body rows of the tables rich printed, as lists of cells."""
    return [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in text.splitlines()
        if line.startswith("│")
    ]


def test_users_image_runs_their_function_from_a_pidstask(release, kpids):  # noqa: F811
    k, ns = release.kubectl, release.namespace
    t0 = time.monotonic()
    release.apply_file(APP / "cluster.yaml")
    wait_cluster_ready(k, ns, CLUSTER, 3, timeout=240)
    FIGURES.record("apply examples/app/cluster.yaml -> 3 wordcount workers Ready", time.monotonic() - t0)
    assert {c["image"] for p in worker_pods(k, ns, CLUSTER) for c in p["spec"]["containers"]} == {IMAGES["wordcount"]}

    release.apply_file(APP / "task.yaml")
    task = wait_task_phase(k, ns, SAMPLE, timeout=120)
    items = task["spec"]["items"]
    results = kpids.json("results", SAMPLE)
    assert [r["item"] for r in results] == list(range(len(items)))
    assert [r["result"] for r in results] == [expected(item["args"][0]) for item in items]
    lines = kpids("results", SAMPLE, "-o", "csv").stdout.splitlines()
    assert lines[0] == "item,id,state,result,error" and len(lines) == len(items) + 1
    assert all(",succeeded," in line for line in lines[1:])


def test_the_operator_publishes_the_connection_secret(release):  # noqa: F811
    k, ns = release.kubectl, release.namespace
    data = secret_data(k, ns, f"{CLUSTER}-app")
    password = secret_data(k, ns, f"{CLUSTER}-redis-auth")["password"]
    host = f"{CLUSTER}-redis.{ns}.svc"
    assert data == {
        "url": f"redis://:{password}@{host}:6379/0",
        "host": host,
        "port": "6379",
        "password": password,
        "cluster": CLUSTER,
    }


def test_an_in_cluster_producer_job_submits_1000_tasks_and_checks_every_result(release):  # noqa: F811
    k, ns = release.kubectl, release.namespace
    t0 = time.monotonic()
    release.apply_file(APP / "producer-job.yaml")

    def finished() -> str | None:
        job = get(k, ns, "job", "wordcount-producer") or {}
        done = [
            c["type"]
            for c in (job.get("status") or {}).get("conditions") or []
            if c["type"] in ("Complete", "Failed") and c["status"] == "True"
        ]
        return done[0] if done else None

    outcome = wait_until(finished, 300, "the producer Job to finish", lambda: release.diag("job/wordcount-producer"))
    logs = k("logs", "job/wordcount-producer", "-n", ns, check=False)
    assert outcome == "Complete", f"producer Job {outcome}:\n{logs.stdout}{logs.stderr}"
    assert "1000/1000 results correct" in logs.stdout, logs.stdout
    FIGURES.record("producer Job: 1000 wordcount tasks submitted with map, all checked", time.monotonic() - t0)


def test_kubectl_pids_top_shows_each_worker_and_the_queue(release, kpids):  # noqa: F811
    k, ns = release.kubectl, release.namespace
    pods = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in worker_pods(k, ns, CLUSTER)}
    top = kpids.json("top", CLUSTER)
    workers = {w["worker"]: w for w in top["workers"] if w["alive"]}
    assert set(workers) == set(pods)
    for name, w in workers.items():
        assert (w["pod"], w["slots"], w["free_slots"], w["held"], w["position"]) == ("Running", 4, 4, 0, pods[name])
        assert w["heartbeat_age"] is not None and 0 <= w["heartbeat_age"] <= 15  # TTL: 3 x the 5 s heartbeat
        assert w["claims_per_second"] is not None and w["claims_per_second"] >= 0  # read through the pod proxy
    assert top["queue"]["pending"] == 0 and top["queue"]["running"] == 0
    assert top["queue"]["succeeded"] >= 1008 and top["queue"]["dead_letters"] == 0
    table = kpids("top", CLUSTER).stdout
    assert "claims/s" in table and all(name in table for name in pods)


def test_kubectl_pids_submit_describe_and_retry_documents_that_land_late(release, kpids):  # noqa: F811
    k, ns = release.kubectl, release.namespace
    ready_at = time.time() + 20
    docs = [Document("on-time", 11, 200), Document("late-1", 12, 2000, ready_at), Document("late-2", 13, 200, ready_at)]
    items = json.dumps([{"args": [d.as_arg()], "weight": d.weight} for d in docs])
    out = kpids(
        "submit",
        CLUSTER,
        "wordcount.tasks:count_words",
        "--items",
        items,
        "--max-attempts",
        "1",
        "--name",
        "late-docs",
        "--wait",
        "120",
        "-o",
        "json",
        rc=1,
    )  # 1: it ended Failed
    assert out.stdout.startswith("pidstask.pids.dev/late-docs created")
    first = json.loads(out.stdout.split("\n", 1)[1])
    assert [r["state"] for r in first] == ["succeeded", "failed", "failed"]
    assert all(r["error"].startswith("DocumentNotReady: late-") for r in first[1:])
    created = get(k, ns, "pidstask", "late-docs")
    assert created and created["spec"]["function"] == "wordcount.tasks:count_words"

    pods = [p["metadata"]["name"] for p in worker_pods(k, ns, CLUSTER)]
    described = kpids("describe", "late-docs").stdout
    assert "failed at attempt 1 on" in described and "DocumentNotReady" in described and "Traceback" in described
    assert any(pod in described for pod in pods)

    time.sleep(max(0.0, ready_at - time.time()))
    retried = kpids("retry", "late-docs").stdout
    assert "2 dead-lettered item(s) of PidsTask late-docs back in the queue" in retried
    wait_task_phase(k, ns, "late-docs", timeout=120)  # the operator follows it again
    results = kpids.json("results", "late-docs")
    assert [r["result"] for r in results] == [expected(d.as_arg()) for d in docs]
    assert kpids("retry", "late-docs").stdout.strip() == "PidsTask late-docs has no dead-lettered items"
    rows = table_rows(kpids("describe", "late-docs").stdout)  # item, state, attempts, pod, ...
    assert [(row[1], row[2]) for row in rows] == [("succeeded", "1/1"), ("succeeded", "2/2"), ("succeeded", "2/2")], (
        rows
    )
    assert all(row[3] in pods for row in rows)


def test_kubectl_pids_errors_name_what_is_missing_refused_or_unreachable(release, kpids, tmp_path):  # noqa: F811
    k, ns = release.kubectl, release.namespace
    assert f"no PidsTask 'no-such-task' in namespace '{ns}'" in kpids("results", "no-such-task", rc=2).stderr
    assert f"no PidsCluster 'no-such-cluster' in namespace '{ns}'" in kpids("top", "no-such-cluster", rc=2).stderr

    # a ServiceAccount without any role: the API server's refusal comes through
    k("create", "serviceaccount", "nobody", "-n", ns)
    token = k("create", "token", "nobody", "-n", ns).stdout.strip()
    config = k.json("config", "view", "--raw", "--minify")
    config["users"] = [{"name": "nobody", "user": {"token": token}}]
    config["contexts"][0]["context"]["user"] = "nobody"
    (tmp_path / "nobody").write_text(json.dumps(config))
    denied = kpids("results", SAMPLE, "--kubeconfig", str(tmp_path / "nobody"), rc=2).stderr
    assert "permission denied for PidsTask" in denied and "forbidden" in denied

    # a cluster whose Redis never runs: its image is not on the node
    broken = json.loads(cluster_manifest("broken", 1))
    broken["spec"]["redis"] = {"managed": {"image": "pids-redis:no-such-tag", "imagePullPolicy": "Never"}}
    release.apply(json.dumps(broken))
    wait_until(
        lambda: get(k, ns, "secret", "broken-app"),
        60,
        "the connection Secret of the broken cluster",
        lambda: release.diag("pidscluster/broken"),
    )
    unreachable = kpids("top", "broken", rc=2).stderr
    assert "the Redis of PidsCluster 'broken' is unreachable" in unreachable and "port-forward" in unreachable
