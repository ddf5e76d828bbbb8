"""The worker process: wires the claim loop (claim_loop.py), the task runner (thread, inline or
process slots), the heartbeat thread, the health server and the new-work listener, and handles
signals: SIGTERM drains, a second Ctrl-C leaves at once."""

from __future__ import annotations

import contextlib
import logging
import random
import signal
import threading
from collections.abc import Callable
from typing import Any

import redis

from .claim_loop import ClaimLoop, Signals
from .connection import connect
from .errors import ConfigError
from .health import HealthServer, WorkerMetrics
from .heartbeat import HeartbeatLoop
from .keys import Keys
from .physics import worker_policy
from .placement import Placement, binds_late
from .process_slots import ProcessSlots
from .protocol import Protocol
from .runners import InlineSlot, Runner, ThreadSlots
from .settings import WorkerSettings
from .wake import Wake

log = logging.getLogger("pids.worker")


def make_runner(settings: WorkerSettings, late_binding: bool, on_outcome: Callable[[], None]) -> Runner:
    s = settings
    if s.pool == "process":
        return ProcessSlots(s.concurrency, s.allowed_modules, s.max_result_bytes)
    if s.concurrency == 1 and late_binding:
        return InlineSlot(s.allowed_modules, s.max_result_bytes, on_outcome)
    return ThreadSlots(s.concurrency, s.allowed_modules, s.max_result_bytes, on_outcome)


class Worker:
    def __init__(
        self, settings: WorkerSettings, client: redis.Redis | None = None, policy: Placement | None = None
    ) -> None:
        self.settings = settings
        self.id = settings.worker_id
        self.redis = client or connect(settings.redis_url, settings.redis_password)
        self.protocol = Protocol(self.redis, Keys(settings.cluster), list_retention_ms=settings.retention_ms)
        self.policy = policy or worker_policy(settings)  # default: gravity from the settings
        self.metrics = WorkerMetrics()
        self.metrics.settings.info({name: str(value) for name, value in settings.effective().items()})
        self.signals = Signals(Wake(), threading.Event(), threading.Event(), threading.Event())
        self.wake, self.draining, self.leaving, self.stopping = (
            self.signals.wake,
            self.signals.draining,
            self.signals.leaving,
            self.signals.stopping,
        )
        self.runner = make_runner(settings, binds_late(self.policy), self.wake.set)
        self.loop = ClaimLoop(settings, self.protocol, self.policy, self.runner, self.metrics, self.signals)
        self.heartbeat = HeartbeatLoop(
            self.protocol,
            settings,
            self.info,
            self.loop.owed_ids,
            lambda: self.drain(leave=settings.exit_when_drained),
            self.stopping,
            self.wake.set,
        )
        self.loop.heartbeat = self.heartbeat
        m = self.metrics  # read at scrape time, not set per task
        m.held.set_function(lambda: len(self.loop.held))
        m.load.set_function(lambda: sum(task.weight for task in list(self.loop.held.values())))
        m.connected.set_function(lambda: float(self.loop.connected))
        m.memory_ratio.set_function(lambda: self.heartbeat.memory_ratio or 0.0)
        m.epoch_changes.set_function(lambda: self.heartbeat.epoch_changes)
        m.swept.set_function(lambda: self.heartbeat.swept)

    @property
    def held(self) -> dict[str, Any]:
        return self.loop.held

    # -- lifecycle -------------------------------------------------------
    def run(self) -> int:
        """Run until drained (SIGTERM) or stopped; returns a process exit code."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_: self.drain())
            signal.signal(signal.SIGINT, self._on_interrupt)
        health = None
        if self.settings.health_port is not None:
            health = HealthServer(
                self.settings.health_port, self.metrics, self.alive, self.ready, host=self.settings.health_host
            ).start()
        try:
            self.heartbeat.thread.start()
            threading.Thread(target=self._listen_for_work, name="pids-listen", daemon=True).start()
            log.info(
                "worker %s: cluster %s, %d %s slots, policy %s",
                self.id,
                self.settings.cluster,
                self.settings.concurrency,
                self.settings.pool,
                getattr(self.policy, "name", "?"),
            )
            self.loop.run()
            self.loop.leave()
        except ConfigError as exc:
            log.error("%s", exc)
            return 2
        finally:
            self.stopping.set()
            self.runner.stop()
            if health:
                health.stop()
        return 0

    def drain(self, leave: bool = True) -> None:
        """Stop claiming; finish what is held. leave: then exit (after at most drain_seconds,
        releasing the rest); otherwise stay idle until drain() with leave or stop()."""
        if not self.draining.is_set():
            log.info("worker %s draining: %d task(s) held", self.id, len(self.held))
        self.draining.set()
        if leave:
            self.leaving.set()
        self.wake.set()

    def _on_interrupt(self, *_: object) -> None:
        """Ctrl-C drains; a second one leaves at once."""
        if self.leaving.is_set():
            self.stop()
        else:
            self.drain()

    def stop(self) -> None:
        """Leave at once, releasing everything held."""
        self.stopping.set()
        self.draining.set()
        self.leaving.set()
        self.wake.set()

    def alive(self) -> tuple[bool, str]:
        ok, reason = self.runner.healthy()
        if not ok:
            return False, reason
        if getattr(self.runner, "running_since", None) is not None:
            return True, "ok: running a task inline"
        return self.loop.watch.alive()

    def ready(self) -> tuple[bool, str]:
        if self.draining.is_set():
            return False, "draining"
        if not self.loop.connected or not self.heartbeat.registered.is_set() or self.heartbeat.connected_since is None:
            fault = self.loop.faults.fault or self.heartbeat.faults.fault
            return False, f"not connected to Redis ({fault.value if fault else 'starting'})"
        return True, "ready"

    def info(self) -> dict[str, Any]:
        s = self.settings
        return {
            "slots": s.concurrency,
            "prefetch": s.prefetch,
            "speed": s.speed,
            "capacity": s.capacity,
            "position": s.position,
            "draining": self.draining.is_set(),
            "policy": s.policy,
            "pool": s.pool,
        }

    def _listen_for_work(self) -> None:
        """Wake the claim loop when new work is announced, instead of polling: on this worker's
        own channel (enqueue wakes idle workers one per task) and the shared one (released work)."""
        keys = self.protocol.keys
        while not self.stopping.is_set():
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            try:
                pubsub.subscribe(keys.new_work_channel, keys.wake_channel(self.id))
                while not self.stopping.is_set():
                    if pubsub.get_message(timeout=1.0) is not None:
                        self.wake.set()
            except Exception:
                self.stopping.wait(0.5 + random.random())
            finally:
                with contextlib.suppress(Exception):
                    pubsub.close()
