"""The wordcount example (examples/app) on real workers and a real redis-server: its producer
checks every result, catches a wrong one, and documents whose data lands late succeed once
their dead letters are retried."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from pids.client import Client
from pids.task import TaskState

APP_SRC = Path(__file__).resolve().parents[2] / "examples" / "app" / "src"


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> None:
    """The example package importable here and in the worker processes."""
    monkeypatch.syspath_prepend(str(APP_SRC))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(APP_SRC), os.environ.get("PYTHONPATH", "")]))


def test_the_producer_checks_every_result_and_exits_zero(app: None, start_workers, redis_server, cluster: str) -> None:
    from wordcount import produce

    start_workers(2, concurrency=2, allowed_modules="wordcount.tasks", position="zone-a/n1")
    assert produce.main(["--tasks", "80", "--seed", "3", "--redis-url", redis_server.url, "--cluster", cluster]) == 0


def test_the_producer_reports_a_wrong_result(app: None, start_workers, client: Client) -> None:
    from wordcount import produce
    from wordcount.corpus import documents

    start_workers(1, concurrency=2, allowed_modules="wordcount.tasks")
    submitted = produce.submit(client, documents(6, seed=5), "run")
    client.wait([h for _, h in submitted], timeout=60)
    assert produce.check(client, submitted) == []
    doc, handle = submitted[2]
    client.redis.set(client.keys.result(handle.id), json.dumps({"doc": doc.id, "words": 1}))
    (line,) = produce.check(client, submitted)
    assert line.startswith(f"{handle.id} ({doc.id}) returned")


def test_the_producer_exits_one_when_tasks_fail(
    app: None, start_workers, redis_server, cluster: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from wordcount import produce

    start_workers(1, allowed_modules="pids.tasks")  # not allowed to run wordcount.tasks
    assert produce.main(["--tasks", "5", "--redis-url", redis_server.url, "--cluster", cluster, "--timeout", "60"]) == 1
    assert "0/5 results correct" in capsys.readouterr().out


def test_late_documents_fail_then_succeed_when_their_dead_letters_are_retried(
    app: None, start_workers, client: Client
) -> None:
    from wordcount.corpus import Document, design, summary

    start_workers(2, allowed_modules="wordcount.tasks")
    ready_at = time.time() + 1.5
    docs = [Document("now", 1, 200), Document("late-1", 2, 2000, ready_at), Document("late-2", 3, 200, ready_at)]
    handles = client.submit_batch("b", "wordcount.tasks:count_words", [[d.as_arg()] for d in docs], max_attempts=1)
    client.wait(handles, timeout=30)
    infos = client.task_infos([h.id for h in handles])
    assert [i.state for i in infos if i] == [TaskState.SUCCEEDED, TaskState.FAILED, TaskState.FAILED]
    assert all("DocumentNotReady" in i.error for i in infos[1:] if i)
    time.sleep(max(0.0, ready_at - time.time()))
    assert client.retry([i for i in infos if i and i.state is TaskState.FAILED]) == {
        "b-1": "requeued",
        "b-2": "requeued",
    }
    client.wait(handles, timeout=30)
    assert client.results([h.id for h in handles]) == [{"doc": d.id, **summary(design(d))} for d in docs]
    assert [i.attempt for i in client.task_infos([h.id for h in handles]) if i] == [1, 2, 2]
