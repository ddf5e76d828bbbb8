"""The worker process: heartbeat, claim cycle, task slots, drain and reconnect.

Each cycle: read the pending window and the worker table (pipelined with the
completions of the last cycle), plan with the placement policy, claim this
worker's share in one atomic call, hand the tasks to slot threads.
"""

from __future__ import annotations

import logging
import queue
import random
import signal
import threading
import time
from typing import Any

import numpy as np
import redis

from .connection import connect
from .execution import Outcome, Slots
from .health import HealthServer, LoopWatch, WorkerMetrics
from .keys import Keys
from .placement import Placement, binds_late, make_policy
from .protocol import ClaimedTask, Completion, Protocol, Snapshot
from .settings import WorkerSettings
from .view import task_window, worker_table

log = logging.getLogger("pids.worker")

REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)
IDLE_WAIT = 1.0  # longest sleep between cycles with nothing to do (new work wakes us sooner)
# pending work planned for others: look again soon, 1 ms first, doubling up to 20 ms
NOT_MINE_FIRST_WAIT, NOT_MINE_MAX_WAIT = 0.001, 0.02
MIN_WINDOW = 16
SPECULATE_WITHIN = 0.005  # plan from the snapshot of the last claim while it is younger than this (s)
MAX_BACKOFF = 5.0


def make_worker_policy(settings: WorkerSettings) -> Placement:
    if settings.policy == "gravity":
        return make_policy("gravity", G=settings.G, distance_offset=settings.distance_offset)
    return make_policy(settings.policy)


def claim_window(settings: WorkerSettings, cluster_slots: int) -> tuple[int, int]:
    """(window, heaviest part) read per claim cycle: the configured window, but no larger than a
    few times the slots (+ prefetch) of the whole cluster, so small claims do not read 64 tasks each."""
    window = min(settings.window, max(MIN_WINDOW, 4 * cluster_slots))
    return window, min(settings.heaviest, window // 4)


class Worker:
    def __init__(self, settings: WorkerSettings, client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.id = settings.worker_id
        self.redis = client or connect(settings.redis_url, settings.redis_password)
        self.protocol = Protocol(self.redis, Keys(settings.cluster))
        self.policy = make_worker_policy(settings)
        self.metrics = WorkerMetrics()
        self.watch = LoopWatch(stuck_after=max(15.0, 10 * settings.heartbeat_seconds))
        self.wake = threading.Event()
        self.slots = Slots(settings.concurrency, settings.allowed_modules, on_outcome=self.wake.set)
        self.held: dict[str, ClaimedTask] = {}  # changed by the claim loop only, read by the heartbeat
        self._held_lock = threading.Lock()
        self.unsent_completions: list[Completion] = []
        self.unsent_failures: list[Outcome] = []
        self.draining = threading.Event()  # no more claims
        self.leaving = threading.Event()  # and exit once what is held is done (SIGTERM)
        self.stopping = threading.Event()
        self.registered = threading.Event()
        self.connected = False
        self._late_binding = binds_late(self.policy)
        self._last_snapshot: Snapshot | None = None
        self._last_snapshot_at = 0.0
        self._lease_ms = int(settings.lease_seconds * 1000)

    # -- lifecycle -------------------------------------------------------
    def run(self) -> int:
        """Run until drained (SIGTERM) or stopped; returns a process exit code."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_: self.drain())
            signal.signal(signal.SIGINT, lambda *_: self.drain() if not self.leaving.is_set() else self.stopping.set())
        health = None
        if self.settings.health_port is not None:
            health = HealthServer(self.settings.health_port, self.metrics, self.alive, self.ready).start()
        threads = [
            threading.Thread(target=self._heartbeat_loop, name="pids-heartbeat", daemon=True),
            threading.Thread(target=self._listen_for_work, name="pids-listen", daemon=True),
        ]
        for t in threads:
            t.start()
        log.info("worker %s: cluster %s, %d slots, policy %s", self.id, self.settings.cluster,
                 self.settings.concurrency, self.settings.policy)
        try:
            self._claim_loop()
            self._leave()
        finally:
            self.stopping.set()
            self.slots.stop(self.settings.concurrency)
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

    def stop(self) -> None:
        """Leave at once, releasing everything held."""
        self.stopping.set()
        self.draining.set()
        self.leaving.set()
        self.wake.set()

    def alive(self) -> tuple[bool, str]:
        return self.watch.alive()

    def ready(self) -> tuple[bool, str]:
        if self.draining.is_set():
            return False, "draining"
        if not self.connected or not self.registered.is_set():
            return False, "not connected to Redis"
        return True, "ready"

    # -- the claim loop ----------------------------------------------------
    def _claim_loop(self) -> None:
        backoff = 0.1
        drain_deadline: float | None = None
        empty_plans = 0  # cycles in a row whose plan left pending work to other workers
        while not self.stopping.is_set():
            self.watch.tick()
            if self.leaving.is_set() and drain_deadline is None:
                drain_deadline = time.monotonic() + self.settings.drain_seconds
            self.wake.clear()
            claimed, waiting_for_others = 0, False
            try:
                self._collect_outcomes()
                self._send_failures()
                free = self.settings.concurrency + self.settings.prefetch - len(self.held)
                # early binding (round-robin...) binds every task planned for it, busy or not; late binding fills free slots
                may_claim = free > 0 or not self._late_binding
                if may_claim and not self.draining.is_set() and self.registered.is_set():
                    claimed, waiting_for_others = self._claim_cycle(max(free, 0))
                else:
                    self._send_completions()
                self.connected = True
                backoff = 0.1
            except REDIS_ERRORS as exc:
                self.connected = False
                self.metrics.redis_errors.inc()
                log.warning("redis unreachable (%s); %d task(s) held, %d result(s) kept; retrying in %.1fs",
                            exc, len(self.held), len(self.unsent_completions), backoff)
                self.stopping.wait(backoff * (0.5 + random.random()))
                backoff = min(MAX_BACKOFF, backoff * 2)
                continue
            if drain_deadline is not None:
                if not self.held and not self.unsent_completions and not self.unsent_failures:
                    return
                if time.monotonic() > drain_deadline:
                    log.warning("drain time over with %d task(s) unfinished: releasing them", len(self.held))
                    return
            empty_plans = empty_plans + 1 if waiting_for_others else 0
            if claimed == 0:
                wait = min(NOT_MINE_MAX_WAIT, NOT_MINE_FIRST_WAIT * 2 ** (empty_plans - 1)) if empty_plans else IDLE_WAIT
                next_timeout = self.slots.seconds_to_next_timeout(self.held)
                self.wake.wait(wait if next_timeout is None else min(wait, next_timeout + 0.01))

    def _claim_cycle(self, free: int) -> tuple[int, bool]:
        """Returns (tasks claimed, whether pending work was left for other workers).

        Steady state is one round trip: plan from the snapshot that came back with the last
        claim (if it is fresh), then complete + claim + read the next snapshot, pipelined.
        If that claim wins nothing, plan again from the snapshot just read."""
        started = time.perf_counter()
        fresh = self._last_snapshot is not None and started - self._last_snapshot_at < SPECULATE_WITHIN
        mine = self._plan(self._last_snapshot, free)[0] if fresh else []
        window, heaviest = self._window_size()
        completed, won, snapshot = self.protocol.cycle(
            self.id, self.unsent_completions, mine, self._lease_ms, window, heaviest, self.settings.view)
        self.unsent_completions = []
        self._count_completions(*completed)
        pending = 0
        if not won:
            mine, pending = self._plan(snapshot, free)
            if mine:
                _, won, snapshot = self.protocol.cycle(
                    self.id, [], mine, self._lease_ms, window, heaviest, self.settings.view)
        self._last_snapshot, self._last_snapshot_at = snapshot, time.perf_counter()
        if not won:
            return 0, pending > 0
        with self._held_lock:
            for task in won:
                self.held[task.id] = task
        for task in won:
            self.slots.submit(task)
        self.metrics.claimed.inc(len(won))
        self.metrics.claim_latency.observe(time.perf_counter() - started)
        self.metrics.held.set(len(self.held))
        return len(won), False

    def _window_size(self) -> tuple[int, int]:
        s = self.settings
        if self._last_snapshot is None:
            return s.window, s.heaviest
        slots = sum(int(i.get("slots", 1)) + int(i.get("prefetch", 0)) for i in self._last_snapshot.live_workers().values())
        return claim_window(s, slots)

    def _plan(self, snapshot: Snapshot | None, free: int) -> tuple[list[str], int]:
        """The task ids this worker should claim from `snapshot`, and the window's size."""
        if snapshot is None:
            return [], 0
        window = task_window(snapshot)
        if len(window) == 0:
            return [], 0
        table = worker_table(snapshot, self.id, free)
        if self.id not in table.ids:
            return [], len(window)  # our heartbeat lapsed (e.g. Redis was away): register again first
        me = table.ids.index(self.id)
        share = np.flatnonzero(self.policy.assign(table, window, me) == me)
        # a late-binding policy fills free slots; an early-binding one (round-robin...) queues its whole share here
        return [window.ids[i] for i in (share[:free] if self._late_binding else share)], len(window)

    def _collect_outcomes(self) -> None:
        outcomes = self.slots.abandon_overdue(self.held)
        while True:
            try:
                outcomes.append(self.slots.outcomes.get_nowait())
            except queue.Empty:
                break
        for outcome in outcomes:
            task = outcome.task
            if self.held.get(task.id) is not task:
                continue
            with self._held_lock:
                del self.held[task.id]
            if outcome.ok:
                self.unsent_completions.append(Completion(task.id, task.attempt, outcome.result_json, outcome.seconds))
            else:
                self.unsent_failures.append(outcome)
        self.metrics.held.set(len(self.held))

    def _send_completions(self) -> None:
        if self.unsent_completions:
            accepted, stale = self.protocol.complete(self.id, self.unsent_completions)
            self.unsent_completions = []
            self._count_completions(accepted, stale)

    def _count_completions(self, accepted: list[str], stale: list[str]) -> None:
        self.metrics.completed.inc(len(accepted))
        if stale:
            self.metrics.stale.inc(len(stale))
            log.warning("%d completion(s) rejected as stale (a newer attempt owns them): %s", len(stale), stale[:5])

    def _send_failures(self) -> None:
        while self.unsent_failures:
            outcome = self.unsent_failures[0]
            task = outcome.task
            backoff_ms = int(1000 * self.settings.retry_backoff_seconds * 2 ** (task.attempt - 1) * (0.5 + random.random()))
            verdict = self.protocol.fail(self.id, task.id, task.attempt, outcome.error, retryable=outcome.retryable,
                                         backoff_ms=backoff_ms, busy_seconds=outcome.seconds)
            self.unsent_failures.pop(0)
            self.metrics.failed.inc()
            if verdict == "scheduled":
                self.metrics.retried.inc()
            log.info("task %s attempt %d failed (%s): %s", task.id, task.attempt, verdict, outcome.error.splitlines()[0])

    def _leave(self) -> None:
        """Hand back what we could not finish and leave the worker table."""
        for _ in range(3):
            try:
                self._collect_outcomes()
                self._send_completions()
                self._send_failures()
                requeued, dead = self.protocol.release_worker(self.id, reason=f"worker {self.id} left before finishing")
                if requeued or dead:
                    log.info("released %d task(s) back to the queue (%d past max attempts)", requeued + dead, dead)
                self.protocol.forget_worker(self.id)
                return
            except REDIS_ERRORS as exc:
                log.warning("could not leave cleanly (%s); retrying", exc)
                time.sleep(0.5)

    # -- background threads ----------------------------------------------------
    def info(self) -> dict[str, Any]:
        s = self.settings
        return {"slots": s.concurrency, "prefetch": s.prefetch, "speed": s.speed, "capacity": s.capacity,
                "position": s.position, "draining": self.draining.is_set(), "policy": s.policy}

    def _heartbeat_loop(self) -> None:
        ttl_ms = int(self.settings.heartbeat_ttl_seconds * 1000)
        reaper_period_ms = int(self.settings.heartbeat_seconds * 1000)
        while not self.stopping.is_set():
            try:
                if not self.registered.is_set():
                    # a restarted process (same pod, same id) gives back what its predecessor held
                    requeued, dead = self.protocol.release_worker(self.id, reason=f"worker {self.id} restarted")
                    if requeued or dead:
                        log.warning("released %d task(s) held by this worker's previous run", requeued + dead)
                with self._held_lock:
                    held = list(self.held)
                _, drain_requested, _ = self.protocol.heartbeat(self.id, self.info(), ttl_ms, self._lease_ms, held)
                if not self.registered.is_set():
                    self.registered.set()
                    self.wake.set()
                if drain_requested:
                    self.drain(leave=self.settings.exit_when_drained)
                if self.protocol.take_reaper_turn(self.id, reaper_period_ms):  # one worker per period
                    self.protocol.release_expired_leases()
                    self.protocol.release_dead_workers()
            except REDIS_ERRORS:
                pass  # the claim loop reports and backs off
            except Exception:
                log.exception("heartbeat failed")
            self.stopping.wait(self.settings.heartbeat_seconds * (0.9 + 0.2 * random.random()))

    def _listen_for_work(self) -> None:
        """Wake the claim loop when new work is announced, instead of polling: on this worker's
        own channel (enqueue wakes idle workers one per task) and the shared one (released work)."""
        keys = self.protocol.keys
        while not self.stopping.is_set():
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(keys.new_work_channel, keys.wake_channel(self.id))
                while not self.stopping.is_set():
                    if pubsub.get_message(timeout=1.0) is not None:
                        self.wake.set()
            except REDIS_ERRORS:
                self.stopping.wait(0.5 + random.random())
            finally:
                try:
                    pubsub.close()
                except REDIS_ERRORS:
                    pass
