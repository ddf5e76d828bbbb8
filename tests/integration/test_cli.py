"""The `pids` command against a real redis-server: submit/status/result, demo, worker probes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

from pids.client import Client
from pids.embedded import EmbeddedRedis, free_port
from pids.protocol import VIEW
from pids.settings import HEAVIEST, WorkerSettings
from tests.harness import WorkerFactory


def pids(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pids", *args], capture_output=True, text=True, timeout=timeout)


def test_submit_status_result_round_trip(
    redis_server: EmbeddedRedis, cluster: str, start_workers: WorkerFactory
) -> None:
    start_workers(1)
    conn = ["--redis-url", redis_server.url, "--cluster", cluster]
    submitted = pids("submit", *conn, "pids.tasks:square", "7", "--task-id", "cli-1", "--weight", "2")
    assert submitted.returncode == 0, submitted.stderr
    assert submitted.stdout.strip() == "cli-1"
    result = pids("result", *conn, "cli-1", "--timeout", "30")
    assert result.returncode == 0 and json.loads(result.stdout) == 49
    status = json.loads(pids("status", *conn, "cli-1", "--json").stdout)
    assert status["state"] == "succeeded" and status["attempt"] == 1 and status["weight"] == 2.0
    overview = json.loads(pids("status", *conn, "--json").stdout)
    assert overview["succeeded"] == 1 and len(overview["workers"]) == 1
    assert overview["redis"]["persistence"] == "none" and overview["redis"]["eviction_policy"] == "noeviction"
    assert overview["redis"]["epoch"].isdigit()
    table = pids("status", *conn).stdout
    assert "persistence none, eviction noeviction" in table and "do not survive a restart" in table


def test_status_shows_each_workers_settings_in_effect(
    redis_server: EmbeddedRedis, cluster: str, start_workers: WorkerFactory
) -> None:
    start_workers(1, G=0.5)
    conn = ["--redis-url", redis_server.url, "--cluster", cluster]
    (worker,) = json.loads(pids("status", *conn, "--json").stdout)["workers"]
    settings = worker["settings"]
    assert settings["G"] == 0.5 and settings["concurrency"] == 1 and settings["cluster"] == cluster
    assert settings["window"] == WorkerSettings.window and settings["view"] == VIEW and settings["heaviest"] == HEAVIEST
    assert "redis_password" not in settings
    table = pids("status", *conn)
    assert table.returncode == 0 and "settings in effect" in table.stdout and "distance_offset" in table.stdout


def test_settings_of_workers_that_left_the_table_are_dropped(client: Client, start_workers: WorkerFactory) -> None:
    (worker,) = start_workers(1)
    assert list(client.worker_settings()) == ["w0"]
    worker.terminate()  # SIGTERM: drains and leaves the worker table
    worker.wait(30)
    assert client.worker_settings() == {}
    assert client.redis.hlen(client.keys.settings) == 0


def test_cli_reports_bad_input_clearly(redis_server: EmbeddedRedis, cluster: str) -> None:
    conn = ["--redis-url", redis_server.url, "--cluster", cluster]
    bad_fn = pids("submit", *conn, "no-colon")
    assert bad_fn.returncode == 2 and "module:callable" in bad_fn.stderr
    bad_kwargs = pids("submit", *conn, "pids.tasks:echo", "--kwargs", "{nope")
    assert bad_kwargs.returncode == 2 and "--kwargs is not valid JSON" in bad_kwargs.stderr
    missing = pids("status", *conn, "no-such-task")
    assert missing.returncode == 2 and "no task 'no-such-task'" in missing.stderr


def test_unreachable_redis_gives_a_clear_error() -> None:
    out = pids("submit", "--redis-url", f"redis://127.0.0.1:{free_port()}/0", "pids.tasks:noop", timeout=60)
    assert out.returncode == 2 and "Redis" in out.stderr and "unreachable" in out.stderr


def test_demo_json_reports_every_worker_and_the_balance_score() -> None:
    out = pids("demo", "--workers", "3", "--tasks", "30", "--json", timeout=180)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["tasks"] == 30 and report["failed"] == 0
    assert len(report["workers"]) == 3 and sum(w["tasks"] for w in report["workers"]) == 30
    assert 0.0 <= report["balance_score"] <= 1.0


def test_demo_table_ends_with_the_balance_score_line() -> None:
    out = pids("demo", "--workers", "2", "--tasks", "10", timeout=180)
    assert out.returncode == 0, out.stderr
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("balance score: 0.") or last == "balance score: 1.00"


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_worker_serves_health_readiness_and_metrics(client: Client, start_workers: WorkerFactory) -> None:
    port = free_port()
    worker, *_ = start_workers(1, health_port=port)
    client.map("pids.tasks:square", range(5))
    deadline = time.monotonic() + 30
    while client.cluster_stats().succeeded < 5:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    assert get(base + "/healthz")[0] == 200
    assert get(base + "/readyz") == (200, "ready\n")
    code, metrics = get(base + "/metrics")
    assert code == 200 and "pids_tasks_completed_total 5.0" in metrics and "pids_claim_cycle_seconds_bucket" in metrics
    info = next(line for line in metrics.splitlines() if line.startswith("pids_worker_settings_info{"))
    assert (
        'G="0.03"' in info and 'concurrency="1"' in info and f'view="{VIEW}"' in info and "redis_password" not in info
    )
    client.drain_worker("w0")
    deadline = time.monotonic() + 10
    while worker.poll() is None:  # drain requested through Redis: stops claiming and leaves
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert worker.returncode == 0
