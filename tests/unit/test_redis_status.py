"""The Redis part of a PidsCluster's status: what Redis is, and when it makes the cluster Degraded."""

from __future__ import annotations

from typing import Any

from pids.redis_info import RedisReport
from pids_operator.cluster_status import QueueCounts, build_cluster_status
from pids_operator.redis_status import (
    DATA_LOSS_NOTICE_SECONDS,
    RedisObservation,
    degraded_by,
    describe_error,
    redis_events,
    redis_health,
)
from pids_operator.spec import ClusterSpec

DURABLE = ClusterSpec.parse({})
EPHEMERAL = ClusterSpec.parse({"redis": {"managed": {"persistence": {"enabled": False}}}})
HA = ClusterSpec.parse({"redis": {"managed": {"replicas": 3}}})
EXTERNAL = ClusterSpec.parse({"redis": {"external": {"url": "redis://r:6379/0"}}})
SENTINEL = ClusterSpec.parse({"redis": {"external": {"sentinel": {"hosts": ["s1"], "masterName": "m"}}}})


def report(**fields: Any) -> RedisReport:
    """pids.redis_info's report of a durable Redis, with `fields` changed."""
    base: dict[str, Any] = {
        "version": "7.0.15",
        "run_id": "r1",
        "role": "master",
        "aof_enabled": True,
        "appendfsync": "everysec",
        "rdb_saves": False,
        "maxmemory": 751619276,
        "maxmemory_policy": "noeviction",
        "used_memory": 2_000_000,
    }
    return RedisReport(**{**base, **fields})


EPHEMERAL_REPORT = report(aof_enabled=False)


def seen(epoch: str = "e1", rep: RedisReport | None = None, primary: str = "") -> RedisObservation:
    return RedisObservation(reachable=True, epoch=epoch, report=rep or report(), primary=primary)


DOWN = RedisObservation(reachable=False, error="ConnectionError: connection refused")


def test_a_healthy_durable_redis_is_reported_and_degrades_nothing() -> None:
    h = redis_health(DURABLE, {}, seen(), now=10.0)
    assert h.degraded is None
    assert h.block == {
        "mode": "durable",
        "persistence": "aof-everysec",
        "evictionPolicy": "noeviction",
        "maxmemory": 751619276,
        "usedMemory": 2_000_000,
        "role": "master",
        "epoch": "e1",
    }
    (c,) = h.conditions
    assert (c["type"], c["status"], c["reason"]) == ("RedisEphemeral", "False", "Persistent")


def test_an_unreachable_redis_degrades_the_cluster_and_keeps_what_was_known() -> None:
    h = redis_health(DURABLE, {"epoch": "e1", "role": "master"}, DOWN, now=10.0)
    assert h.degraded == ("RedisUnreachable", "ConnectionError: connection refused")
    assert h.block["epoch"] == "e1" and h.block["role"] == "master"


def test_a_changed_epoch_is_a_data_loss_that_degrades_for_a_while() -> None:
    h = redis_health(DURABLE, {"epoch": "e1"}, seen("e2"), now=100.0)
    assert h.block["lastDataLoss"] == {
        "at": "1970-01-01T00:01:40Z",
        "atUnix": 100.0,
        "previousEpoch": "e1",
        "epoch": "e2",
    }
    assert h.degraded is not None and h.degraded[0] == "RedisDataLost" and "'e1' -> 'e2'" in h.degraded[1]
    later = redis_health(DURABLE, h.block, seen("e2"), now=100.0 + DATA_LOSS_NOTICE_SECONDS - 1)
    assert later.degraded is not None and later.degraded[0] == "RedisDataLost"
    over = redis_health(DURABLE, h.block, seen("e2"), now=100.0 + DATA_LOSS_NOTICE_SECONDS + 1)
    assert over.degraded is None and over.block["lastDataLoss"]["epoch"] == "e2"


def test_an_epoch_gone_is_a_data_loss_and_the_next_one_is_not_another() -> None:
    gone = redis_health(DURABLE, {"epoch": "e1"}, seen(""), now=1.0)
    assert gone.block["lastDataLoss"]["previousEpoch"] == "e1" and gone.block["epoch"] == ""
    fresh = redis_health(DURABLE, gone.block, seen("e2"), now=2.0)
    assert fresh.block["lastDataLoss"] == gone.block["lastDataLoss"]


def test_the_first_epoch_is_no_loss() -> None:
    assert "lastDataLoss" not in redis_health(DURABLE, {}, seen("e1"), now=1.0).block
    assert "lastDataLoss" not in redis_health(DURABLE, {"epoch": ""}, seen("e1"), now=1.0).block


def test_an_evicting_redis_degrades_the_cluster() -> None:
    h = redis_health(EXTERNAL, {}, seen(rep=report(maxmemory_policy="allkeys-lru")), now=1.0)
    assert h.degraded is not None and h.degraded[0] == "RedisEvicting" and "allkeys-lru" in h.degraded[1]


def test_an_ephemeral_managed_redis_says_so() -> None:
    h = redis_health(EPHEMERAL, {}, seen(rep=EPHEMERAL_REPORT), now=1.0)
    (c,) = h.conditions
    assert (c["status"], c["reason"]) == ("True", "PersistenceDisabled") and "restart" in c["message"]
    assert h.block["mode"] == "ephemeral" and h.degraded is None


def test_external_redis_persistence_comes_from_its_report() -> None:
    h = redis_health(EXTERNAL, {}, seen(rep=EPHEMERAL_REPORT), now=1.0)
    assert h.conditions[0]["status"] == "True" and h.block["mode"] == "external-ephemeral"
    unknown = redis_health(EXTERNAL, {}, DOWN, now=1.0)
    assert unknown.conditions[0]["status"] == "Unknown" and unknown.block["mode"] == "external"
    known = redis_health(EXTERNAL, h.block, DOWN, now=2.0)  # unreachable now: the last report holds
    assert known.conditions[0]["status"] == "True" and known.block["mode"] == "external-ephemeral"
    assert redis_health(SENTINEL, {}, seen(), now=1.0).block["mode"] == "external-sentinel"


def test_ha_reports_the_primary() -> None:
    h = redis_health(HA, {}, seen(primary="demo-redis-1.demo-redis-pods.ns.svc:6379"), now=1.0)
    assert h.block["mode"] == "ha" and h.block["primary"] == "demo-redis-1.demo-redis-pods.ns.svc:6379"


def status_with(spec: ClusterSpec, previous: dict[str, Any], obs: RedisObservation, now: float) -> dict[str, Any]:
    h = redis_health(spec, previous.get("redis") or {}, obs, now)
    status = build_cluster_status(
        name="demo",
        generation=1,
        previous=previous,
        deployment_status={"replicas": 2, "readyReplicas": 2},
        replicas=2,
        desired=2,
        counts=None if not obs.reachable else QueueCounts(),
        draining={},
        redis_url="redis://r",
        now=now,
        degraded=h.degraded[1] if h.degraded else None,
        degraded_reason=h.degraded[0] if h.degraded else "AsExpected",
        extra_conditions=h.conditions,
    )
    status["redis"] = h.block
    return status


def test_a_cluster_that_lost_data_is_degraded_but_its_workers_are_ready() -> None:
    s = status_with(DURABLE, {"redis": {"epoch": "e1"}}, seen("e2"), now=5.0)
    conds = {c["type"]: (c["status"], c["reason"]) for c in s["conditions"]}
    assert s["phase"] == "Degraded" and conds["Ready"] == ("True", "WorkersReady")
    assert conds["Degraded"] == ("True", "RedisDataLost") and degraded_by(s, "RedisDataLost")
    assert degraded_by(s, "RedisUnreachable") is None


def test_warnings_are_posted_once_when_things_go_wrong() -> None:
    starting = status_with(DURABLE, {}, DOWN, now=0.5)
    assert redis_events({}, starting) == []  # a new Redis not up yet is no news
    ok = status_with(DURABLE, starting, seen("e1"), now=1.0)
    assert redis_events(starting, ok) == []
    down = status_with(DURABLE, ok, DOWN, now=2.0)
    assert redis_events(ok, down) == [("RedisUnreachable", "ConnectionError: connection refused")]
    still_down = status_with(DURABLE, down, DOWN, now=3.0)
    assert redis_events(down, still_down) == []
    lost = status_with(DURABLE, still_down, seen("e2"), now=4.0)
    ((reason, message),) = redis_events(still_down, lost)
    assert reason == "RedisDataLost" and "'e1' -> 'e2'" in message
    again = status_with(DURABLE, lost, seen("e3"), now=5.0)  # lost again while still Degraded for the first
    assert [r for r, _ in redis_events(lost, again)] == ["RedisDataLost"]


def test_an_ephemeral_cluster_warns_when_created() -> None:
    s = status_with(EPHEMERAL, {}, seen(rep=EPHEMERAL_REPORT), now=1.0)
    assert [r for r, _ in redis_events({}, s)] == ["PersistenceDisabled"]
    assert redis_events(s, status_with(EPHEMERAL, s, seen(rep=EPHEMERAL_REPORT), now=2.0)) == []


def test_error_messages_stay_short() -> None:
    e = ConnectionError("No master found for 'pids' : <redis.client.Redis(<ConnectionPool(...)>)> - more\nlines")
    assert describe_error(e) == "ConnectionError: No master found for 'pids'"
    assert len(describe_error(ValueError("x" * 1000))) == 300
