"""The heartbeat thread: registers the worker (giving back what a previous run under the same id
held), renews its heartbeat and leases, relays drain requests, notices a new Redis epoch (Redis
lost its data) and takes its turn at reaping — but only once it has been connected for a
heartbeat TTL, so after an outage every worker gets the time to heartbeat before its peers
count it dead."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from . import reaper, redis_info
from .faults import FaultLog, classify
from .protocol import Protocol
from .settings import WorkerSettings

log = logging.getLogger("pids.worker")
MEMORY_CHECK_SECONDS = 10.0
SETTINGS_SECONDS = 30.0  # the settings in effect go to Redis on the first beat, then this often


class HeartbeatLoop:
    def __init__(
        self,
        protocol: Protocol,
        settings: WorkerSettings,
        info: Callable[[], dict[str, Any]],
        held: Callable[[], list[str]],
        on_drain: Callable[[], None],
        stopping: threading.Event,
        on_registered: Callable[[], None],
    ) -> None:
        self.protocol = protocol
        self.settings = settings
        self.worker_id = settings.worker_id
        self.info = info
        self.held = held
        self.on_drain = on_drain
        self.on_registered = on_registered  # the claim loop waits for the first heartbeat: wake it
        self.stopping = stopping
        self.registered = threading.Event()
        self.epoch = ""
        self.epoch_changes = 0
        self.swept = 0  # final tasks this worker's reaper turns deleted
        self.memory_ratio: float | None = None
        self.connected_since: float | None = None  # monotonic start of the current run of good heartbeats
        self.last_beat: float | None = None  # monotonic time of the last good heartbeat
        self.faults = FaultLog(log)
        self._last_memory_check = 0.0
        self._settings_json = json.dumps(settings.effective())  # for `pids status`
        self._last_settings = -SETTINGS_SECONDS
        self.thread = threading.Thread(target=self.run, name="pids-heartbeat", daemon=True)

    @property
    def grace_seconds(self) -> float:
        return self.settings.heartbeat_ttl_seconds + self.settings.heartbeat_seconds

    def may_reap(self) -> bool:
        """Connected long enough that every live worker has heartbeated since Redis came back, and
        still: a heartbeat stuck in a call (Redis went away meanwhile) is no proof of either."""
        since, last, now = self.connected_since, self.last_beat, time.monotonic()
        return (
            since is not None
            and last is not None
            and now - since >= self.grace_seconds
            and now - last < self.settings.heartbeat_ttl_seconds
        )

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.beat()
                self.faults.recovered()
            except Exception as exc:
                self.connected_since = None
                self.faults.failed(classify(exc), exc, "heartbeat")
            self.stopping.wait(self.settings.heartbeat_seconds * (0.9 + 0.2 * random.random()))

    def beat(self) -> None:
        s = self.settings
        if not self.registered.is_set():
            # a restarted process (same pod, same id) gives back what its predecessor held
            requeued, dead = self.protocol.release_worker(self.worker_id, reason=f"worker {self.worker_id} restarted")
            if requeued or dead:
                log.warning("released %d task(s) held by this worker's previous run", requeued + dead)
        reply = self.protocol.heartbeat(
            self.worker_id, self.info(), int(s.heartbeat_ttl_seconds * 1000), int(s.lease_seconds * 1000), self.held()
        )
        self.last_beat = time.monotonic()
        if self.connected_since is None:
            self.connected_since = self.last_beat
        if self.epoch and reply.epoch != self.epoch:
            self.epoch_changes += 1
            log.error(
                "Redis lost its data (epoch %s -> %s): the tasks this worker holds are gone and their "
                "results will be refused; Kubernetes-submitted work is re-enqueued by the operator",
                self.epoch,
                reply.epoch,
            )
        self.epoch = reply.epoch
        if not self.registered.is_set():
            self.registered.set()
            self.on_registered()
        if reply.drain_requested:
            self.on_drain()
        if self.may_reap() and reaper.take_turn(self.protocol, self.worker_id, int(s.heartbeat_seconds * 1000)):
            reaper.queue_due_retries(self.protocol)
            reaper.release_expired_leases(self.protocol)
            for worker_id in reaper.release_dead_workers(self.protocol, self.worker_id):
                log.warning("worker %s missed its heartbeat deadline: its tasks are back in the queue", worker_id)
            reaper.trim_dead_letters(self.protocol, s.retention_ms or 0)
            self.swept += reaper.sweep_finals(self.protocol, budget_seconds=s.heartbeat_seconds / 2)
        if time.monotonic() - self._last_settings >= SETTINGS_SECONDS:  # again now and then: Redis may restart empty
            self._last_settings = time.monotonic()
            self.protocol.redis.hset(self.protocol.keys.settings, self.worker_id, self._settings_json)
        if time.monotonic() - self._last_memory_check > MEMORY_CHECK_SECONDS:
            self._last_memory_check = time.monotonic()
            self.check_memory()

    def check_memory(self) -> None:
        report = redis_info.inspect(self.protocol.redis)
        self.memory_ratio = report.memory_ratio
        if self.memory_ratio is not None and self.memory_ratio > redis_info.MEMORY_WARNING_RATIO:
            log.warning(
                "Redis memory %.0f%% full (%s): it refuses writes when full; shorten task retention or raise maxmemory",
                100 * self.memory_ratio,
                report.describe(),
            )
