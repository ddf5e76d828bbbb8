"""The operator when Redis loses its data, against a real redis-server restarted empty: the
PidsTask object is the durable record (its unfinished part is re-enqueued under the same
ids), and the PidsCluster is Degraded with a reason and warning Events."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import kopf
import pytest

from pids.client import Client
from pids.embedded import EmbeddedRedis
from pids_operator import cluster_ops
from pids_operator.config import OperatorConfig
from pids_operator.metrics import OperatorMetrics
from pids_operator.redis_status import redis_events
from pids_operator.spec import ClusterSpec
from pids_operator.state import OperatorState
from tests.harness import WorkerFactory
from tests.integration.test_operator_redis import ClusterOnlyKube, enqueue, follow, task_body, wait_for


@pytest.fixture
def volatile() -> Iterator[EmbeddedRedis]:
    """A Redis without persistence: a restart loses everything."""
    with EmbeddedRedis(appendonly=False) as server:
        yield server


@pytest.fixture
def warnings() -> list[tuple[str, str, str]]:
    return []


@pytest.fixture
def memo(volatile: EmbeddedRedis, cluster: str, warnings: list[tuple[str, str, str]]) -> kopf.Memo:
    state = OperatorState(
        config=OperatorConfig(),
        kube=ClusterOnlyKube(cluster, volatile.url),  # type: ignore[arg-type]
        metrics=OperatorMetrics(),
        warn=lambda body, reason, message: warnings.append((body["metadata"]["name"], reason, message)),
    )
    return kopf.Memo(pids=state)


def restart_empty(server: EmbeddedRedis) -> None:
    server.stop()
    server.start()


def test_a_batch_redis_lost_is_requeued_from_the_pidstask_under_the_same_ids(
    memo: kopf.Memo,
    volatile: EmbeddedRedis,
    cluster: str,
    start_workers: WorkerFactory,
    warnings: list[tuple[str, str, str]],
) -> None:
    client = Client(volatile.url, cluster)
    body = task_body(cluster, "uid-lost", function="pids.tasks:sleep", items=[[0.05]] * 40)
    status = enqueue(memo, body)
    assert status["epoch"] == client.epoch() != ""
    (worker,) = start_workers(1, redis_url=volatile.url, wait=False)
    wait_for(lambda: client.batch_status("uid-lost").counts.get("succeeded", 0) >= 5, timeout=60)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    status = follow(memo, body, status)
    done = status["counts"]["succeeded"]
    assert 5 <= done < 40 and status["finished"] == {"succeeded": f"0-{done - 1}"}  # FIFO: the first ones
    restart_empty(volatile)
    status = follow(memo, body, status)
    assert status["requeued"] == 40 - done and status["epoch"] == client.epoch()
    assert status["progress"] == f"{done}/40" and status["counts"]["succeeded"] == done
    assert client.batch_ids("uid-lost") == [f"uid-lost-{i}" for i in range(done, 40)]
    requeued = next(c for c in status["conditions"] if c["type"] == "Requeued")
    assert requeued["status"] == "True" and f"re-enqueued {40 - done} of 40" in requeued["message"]
    assert [(name, reason) for name, reason, _ in warnings] == [("t", "Requeued")]
    start_workers(2, redis_url=volatile.url, wait=False, prefix="after")
    wait_for(lambda: client.batch_status("uid-lost").done, timeout=60)
    status = follow(memo, body, status)
    counts = {state: n for state, n in status["counts"].items() if n is not None}  # None: removed by the patch
    assert status["phase"] == "Succeeded" and counts == {"succeeded": 40} and status["progress"] == "40/40"
    assert [c["type"] for c in status["conditions"]].count("Requeued") == 1 and len(warnings) == 1


def test_a_single_task_redis_lost_is_requeued(memo: kopf.Memo, volatile: EmbeddedRedis, cluster: str) -> None:
    client = Client(volatile.url, cluster)
    body = task_body(cluster, "uid-one", args=[6])
    status = enqueue(memo, body)
    restart_empty(volatile)
    status = follow(memo, body, status)
    assert status["requeued"] == 1 and status["phase"] == "Pending"
    assert client.task_info("uid-one").state.value == "pending"


def test_a_task_is_not_requeued_while_redis_keeps_its_data(
    memo: kopf.Memo, volatile: EmbeddedRedis, cluster: str, warnings: list[tuple[str, str, str]]
) -> None:
    body = task_body(cluster, "uid-kept", items=[[i] for i in range(5)])
    status = follow(memo, body, enqueue(memo, body))
    status = follow(memo, body, status)
    assert "requeued" not in status and warnings == []
    assert not any(c["type"] == "Requeued" for c in status["conditions"])


def test_following_while_redis_is_away_says_so_and_keeps_the_progress(
    memo: kopf.Memo, volatile: EmbeddedRedis, cluster: str
) -> None:
    body = task_body(cluster, "uid-away", items=[[1]])
    status = follow(memo, body, enqueue(memo, body))
    volatile.stop()
    away = follow(memo, body, status)
    assert away["reason"] == "RedisUnavailable" and away["progress"] == status["progress"]
    volatile.start()


def refresh(memo: kopf.Memo, status: dict[str, Any], now: float) -> dict[str, Any]:
    state: OperatorState = memo.pids
    body = state.kube.body  # type: ignore[attr-defined]
    return cluster_ops.refresh(state.kube, state.connections, body, ClusterSpec.parse(body["spec"]), status, now=now)  # type: ignore[arg-type]


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_the_cluster_is_degraded_while_redis_is_down_and_after_it_lost_data(
    memo: kopf.Memo, volatile: EmbeddedRedis, cluster: str
) -> None:
    client = Client(volatile.url, cluster)
    client.submit("pids.tasks:square", 2)  # makes the first epoch
    first = refresh(memo, {}, now=10.0)
    assert first["redis"]["epoch"] == client.epoch() and first["phase"] != "Degraded"
    assert first["redis"]["persistence"] == "none" and first["redis"]["evictionPolicy"] == "noeviction"
    assert conditions(first)["RedisEphemeral"] == ("True", "PersistenceDisabled")  # read from the external Redis
    volatile.stop()
    down = refresh(memo, first, now=20.0)
    assert down["phase"] == "Degraded" and conditions(down)["Degraded"] == ("True", "RedisUnreachable")
    volatile.start()
    client.submit("pids.tasks:square", 3)  # the new data set's epoch
    lost = refresh(memo, down, now=30.0)
    assert conditions(lost)["Degraded"] == ("True", "RedisDataLost")
    assert lost["redis"]["lastDataLoss"]["previousEpoch"] == first["redis"]["epoch"] != lost["redis"]["epoch"]
    assert [reason for reason, _ in redis_events(down, lost)] == ["RedisDataLost"]
