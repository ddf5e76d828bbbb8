"""When a worker may release its peers' tasks after an outage: connected for the grace time
(every live worker's heartbeat has landed since) and its own last heartbeat fresh. Pure logic
of the heartbeat's state; the reaping itself is tested on a real Redis."""

from __future__ import annotations

import threading
import time

from pids.heartbeat import HeartbeatLoop
from pids.settings import WorkerSettings


def heartbeat() -> HeartbeatLoop:
    settings = WorkerSettings(worker_id="w", heartbeat_seconds=1.0)
    return HeartbeatLoop(None, settings, dict, list, lambda: None, threading.Event(), lambda: None)  # type: ignore[arg-type]


def test_a_worker_reaps_only_after_the_grace_time_of_good_heartbeats() -> None:
    hb = heartbeat()
    now = time.monotonic()
    assert hb.grace_seconds == 4.0 and not hb.may_reap()  # never connected
    hb.connected_since, hb.last_beat = now - 1.0, now
    assert not hb.may_reap()  # back for 1 s: peers may not have heartbeated yet
    hb.connected_since = now - 5.0
    assert hb.may_reap()


def test_a_heartbeat_stuck_in_a_call_while_redis_was_away_does_not_count_as_connected() -> None:
    hb = heartbeat()
    now = time.monotonic()
    hb.connected_since, hb.last_beat = now - 60.0, now - 4.6  # its last good beat was before the outage
    assert not hb.may_reap()
