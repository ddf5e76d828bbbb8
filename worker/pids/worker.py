"""The worker process: heartbeat, claim cycle, task slots, drain and reconnect.

Each cycle: read the pending window and the worker table (pipelined with the
completions of the last cycle), plan with the placement policy, claim this
worker's share in one atomic call, hand the tasks to slot threads (with one slot,
run them on the loop's own thread).
"""

from __future__ import annotations

import json
import logging
import random
import signal
import threading
import time
from collections import deque
from typing import Any

import numpy as np
import redis

from .connection import connect
from .execution import Outcome, Slots, run_task
from .health import HealthServer, LoopWatch, WorkerMetrics
from .keys import Keys
from .placement import Placement, WorkerTable, binds_late, make_policy
from .protocol import MAX_COMPLETIONS, NO_TOTALS, VIEW, ClaimedTask, Completion, Protocol, Snapshot, WorkerTotals
from .settings import HEAVIEST, WorkerSettings
from .share import DEPTH, Share
from .view import task_window, worker_table

log = logging.getLogger("pids.worker")

REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)
IDLE_WAIT = 1.0  # longest sleep between cycles with nothing to do (new work wakes us sooner)
# pending work planned for others: look again soon, 1 ms first, doubling up to 20 ms
NOT_MINE_FIRST_WAIT, NOT_MINE_MAX_WAIT = 0.001, 0.02
MIN_WINDOW = 2 * DEPTH  # two one-slot workers each find a DEPTH-deep share in one window
MAX_BATCHED_WINDOW = 1024  # tasks a batched worker's snapshot reads at most for the other workers' batches
SETTINGS_EVERY_BEATS = 30  # the settings in effect go to Redis on the first heartbeat, then this often
INLINE_BATCH_SECONDS = 0.05  # a worker running its claimed batch itself cycles at least this often (results, refills)
MAX_BACKOFF = 5.0


def make_worker_policy(settings: WorkerSettings) -> Placement:
    if settings.policy == "gravity":
        return make_policy("gravity", G=settings.G, distance_offset=settings.distance_offset)
    return make_policy(settings.policy)


def claim_window(settings: WorkerSettings, cluster_slots: int) -> tuple[int, int]:
    """(window, heaviest part) read per snapshot: the configured window, but no larger than a few
    times the slots (+ prefetch) of the whole cluster or two DEPTH-deep shares, whichever is more
    (so a small cluster's snapshot is read once per share, not per claim). A worker claiming in
    batches reads at least two of its own batches and, up to MAX_BATCHED_WINDOW, a batch for every
    slot of the cluster: batched workers splitting one small window would each claim a few tasks
    per round trip (eight workers of 100 slots found 25 tasks each in a window of 200)."""
    own_batch = settings.concurrency + settings.prefetch
    every_batch = min(cluster_slots, MAX_BATCHED_WINDOW) if own_batch > 1 else 0
    window = min(max(settings.window, 2 * own_batch, every_batch), max(MIN_WINDOW, 4 * cluster_slots))
    return window, min(HEAVIEST, window // 4)


class Worker:
    def __init__(self, settings: WorkerSettings, client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.id = settings.worker_id
        self.redis = client or connect(settings.redis_url, settings.redis_password)
        self.protocol = Protocol(self.redis, Keys(settings.cluster))
        self.policy = make_worker_policy(settings)
        self.metrics = WorkerMetrics()
        in_effect = {**settings.effective(), "view": VIEW, "heaviest": HEAVIEST}
        self.metrics.settings.info({name: str(value) for name, value in in_effect.items()})
        self._settings_json = json.dumps(in_effect)
        self.metrics.held.set_function(lambda: len(self.held))  # read at scrape time, not set per task
        self.metrics.load.set_function(self._held_weight)
        self.watch = LoopWatch(stuck_after=max(15.0, 10 * settings.heartbeat_seconds))
        self.wake = threading.Event()
        self.slots = Slots(settings.concurrency, settings.allowed_modules, on_outcome=self.wake.set)
        self.held: dict[str, ClaimedTask] = {}  # changed by the claim loop only, read by the heartbeat
        self._held_lock = threading.Lock()
        self.unsent_completions: list[Completion] = []
        self.unsent_totals = NO_TOTALS  # accepted completions not yet added to this worker's totals in Redis
        self._maybe_idle = True  # the last snapshot found no pending task, so it put this worker in the idle set
        self.unsent_failures: list[Outcome] = []
        self.draining = threading.Event()  # no more claims
        self.leaving = threading.Event()  # and exit once what is held is done (SIGTERM)
        self.stopping = threading.Event()
        self.registered = threading.Event()
        self.connected = False
        self._late_binding = binds_late(self.policy)
        self.share = Share()
        # one slot, late binding: the claim loop runs what it claimed itself, in claim order (see _run_claimed)
        self._inline = settings.concurrency == 1 and self._late_binding
        self._claimed: deque[ClaimedTask] = deque()  # claimed, waiting for the loop to run them (inline only)
        self._slot_task: ClaimedTask | None = None  # inline mode's one task on the slot thread (it has a timeout)
        self._inline_task: ClaimedTask | None = None
        self._window = (settings.window, HEAVIEST)  # (window, heaviest) sized from the last snapshot
        self._lease_ms = int(settings.lease_seconds * 1000)

    # -- lifecycle -------------------------------------------------------
    def run(self) -> int:
        """Run until drained (SIGTERM) or stopped; returns a process exit code."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_: self.drain())
            signal.signal(signal.SIGINT, self._on_interrupt)
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
            try:
                self._claim_loop()
            except KeyboardInterrupt:  # a second Ctrl-C that landed outside an inline task
                pass
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

    def _on_interrupt(self, *_: object) -> None:
        """Ctrl-C drains; a second one leaves at once (interrupting a task the loop runs itself)."""
        if not self.leaving.is_set():
            self.drain()
            return
        self.stop()
        if self._inline_task is not None:
            raise KeyboardInterrupt

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
            if self.wake.is_set():  # (clear() takes the event's lock even when there is nothing to clear)
                self.wake.clear()
            self._run_claimed()  # (inline mode) what the last cycle claimed; needs no Redis
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
                if claimed == 0 and not waiting_for_others and not self._runnable():
                    self._send_completions()  # before a long wait: the totals show what this worker did
                self.connected = True
                backoff = 0.1
            except REDIS_ERRORS as exc:
                self.connected = False
                self.metrics.redis_errors += 1
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
            if claimed == 0 and not self._runnable():
                wait = min(NOT_MINE_MAX_WAIT, NOT_MINE_FIRST_WAIT * 2 ** (empty_plans - 1)) if empty_plans else IDLE_WAIT
                next_timeout = self.slots.seconds_to_next_timeout(self.held)
                self.wake.wait(wait if next_timeout is None else min(wait, next_timeout + 0.01))

    def _claim_cycle(self, free: int) -> tuple[int, bool]:
        """Returns (tasks claimed, whether pending work was left for other workers).

        Steady state is one round trip: complete what finished + claim the front of this
        worker's share (kept from the last plan) + read a snapshot when the share runs low,
        pipelined. Without a usable share the first round trip only reads a snapshot to plan
        from, and a second one claims."""
        started = time.perf_counter()
        won: list[ClaimedTask] = []
        pending: int | None = None
        for _ in range(2):
            won, pending = self._claim_from_share(free)
            if won or (pending is not None and not self.share):  # claimed, or nothing (left) for us
                break
        if not won:
            return 0, pending != 0  # 0: the window was empty; None: not read, look again soon
        with self._held_lock:
            for task in won:
                self.held[task.id] = task
        if self._inline:
            self._claimed.extend(won)
        else:
            for task in won:
                self.slots.submit(task)
        self.metrics.claimed += len(won)
        self.metrics.observe_cycle(time.perf_counter() - started)
        return len(won), False

    def _claim_from_share(self, free: int) -> tuple[list[ClaimedTask], int | None]:
        """One round trip. Returns the tasks won and, if a snapshot was read (and planned
        from), how many tasks were pending in its window (None: no snapshot read)."""
        now = time.perf_counter()
        wanted = free if self._late_binding else len(self.share)  # early binding takes its whole share
        sent = self.share.candidates(wanted) if self.share.usable(now) else []
        read_snapshot = not sent or self.share.runs_low(wanted, now)
        window, heaviest = self._window
        completions = self.unsent_completions[:MAX_COMPLETIONS]  # (more only after a long Redis outage: sent next cycles)
        totals = self.unsent_totals if read_snapshot else NO_TOTALS  # with every snapshot read, not every cycle
        completed, won, snapshot = self.protocol.cycle(
            self.id, completions, sent, self._lease_ms, window, heaviest, VIEW, wanted=wanted,
            read_snapshot=read_snapshot, totals=totals, maybe_idle=self._maybe_idle)
        del self.unsent_completions[:MAX_COMPLETIONS]
        self._count_completions(completions, totals, *completed)
        if sent:
            self._maybe_idle = False
        self.share.consume(sent, [task.id for task in won], wanted)
        if snapshot is None:
            return won, None
        live = snapshot.live_workers()
        if len(live) < len(snapshot.workers):
            self._release_dead_workers()
        slots = sum(int(i.get("slots", 1)) + int(i.get("prefetch", 0)) for i in live.values())
        self._window = claim_window(self.settings, slots)
        pending = self._plan(snapshot, free - len(won), time.perf_counter())
        if pending == 0:
            self._maybe_idle = True
        return won, pending

    def _release_dead_workers(self) -> None:
        """A worker in the view is past its heartbeat deadline: give its tasks back now rather
        than at the next reaper turn (up to a heartbeat later). Releasing is fenced, so two
        workers doing it at once give each task back once."""
        for worker_id in self.protocol.release_dead_workers():
            log.warning("worker %s missed its heartbeat deadline: its tasks are back in the queue", worker_id)

    def _plan(self, snapshot: Snapshot, free: int, planned_at: float) -> int:
        """Make this worker's share from `snapshot`; returns the size of its task window.

        A late-binding policy plans as if this worker had DEPTH times its slots: the front of
        that share is what it would plan with its free slots, the rest serves the next cycles.
        An early-binding one (round-robin...) plans with its free slots and queues its whole share."""
        self.share.clear()
        window = task_window(snapshot)
        if len(window) == 0:
            return 0
        slots = self.settings.concurrency + self.settings.prefetch
        table = worker_table(snapshot, self.id, slots * DEPTH if self._late_binding else max(free, 0))
        if self.id not in table.ids:
            return len(window)  # our heartbeat lapsed (e.g. Redis was away): register again first
        me = table.ids.index(self.id)
        plan = self.policy.assign(table, window, me)
        share = np.flatnonzero(plan == me)
        self.share.replace([window.ids[i] for i in share], planned_at)
        if len(share) == 0:
            self._wake_first_owner(table, plan)
        return len(window)

    def _wake_first_owner(self, table: WorkerTable, plan: np.ndarray) -> None:
        """This plan leaves the window to other workers. The one it gives the first task to may be
        asleep until new work wakes it, and enqueue wakes the worker idle longest, not the one the
        plan picks (ties follow the task's sequence number): wake it if it holds nothing. One
        message per such plan at most, so the fan-out per task stays flat however many workers
        there are."""
        owners = plan[plan >= 0]
        if len(owners) > 0 and table.held is not None and table.held[owners[0]] == 0:
            self.protocol.wake(table.ids[int(owners[0])])

    def _run_claimed(self) -> None:
        """One slot, late binding: run the claimed tasks here, one at a time and in claim order,
        sparing two thread hand-offs per task (about a quarter of a no-op task's CPU). A task
        with a timeout goes to the slot thread, which enforces it, and the next one waits for it.
        Returns to the claim loop when the batch is done or after INLINE_BATCH_SECONDS, so the
        results of a long batch go out while it runs."""
        started = time.monotonic()
        while self._runnable() and not self.stopping.is_set():
            task = self._claimed.popleft()
            if task.timeout is not None:
                self._slot_task = task
                self.slots.submit(task)
                return
            self._run_inline(task)
            if time.monotonic() - started > INLINE_BATCH_SECONDS:
                return

    def _runnable(self) -> bool:
        """A claimed task waits to run here, and the slot thread is not busy with the one before it."""
        slot_busy = self._slot_task is not None and self.held.get(self._slot_task.id) is self._slot_task
        return bool(self._claimed) and not slot_busy

    def _run_inline(self, task: ClaimedTask) -> None:
        self._inline_task = task
        try:
            with self.watch.running_task():
                outcome = run_task(task, self.settings.allowed_modules)
        except KeyboardInterrupt:  # a second Ctrl-C: leave now; the task is released with the rest
            return
        finally:
            self._inline_task = None
        self._settle(outcome)

    def _held_weight(self) -> float:
        with self._held_lock:
            return sum(task.weight for task in self.held.values())

    def _collect_outcomes(self) -> None:
        outcomes = self.slots.abandon_overdue(self.held)
        finished = self.slots.outcomes
        while not finished.empty():  # the claim loop is its only reader
            outcomes.append(finished.get_nowait())
        for outcome in outcomes:
            self._settle(outcome)

    def _settle(self, outcome: Outcome) -> None:
        """Turn a finished attempt into a completion or failure to send (unless it was abandoned)."""
        task = outcome.task
        if self.held.get(task.id) is not task:
            return
        with self._held_lock:
            del self.held[task.id]
        if outcome.ok:
            self.unsent_completions.append(Completion(task.id, task.attempt, outcome.result_json, outcome.seconds,
                                                      task.weight))
        else:
            self.unsent_failures.append(outcome)

    def _send_completions(self) -> None:
        """Send what is unsent: completions and the totals of those accepted before (the totals of
        the ones sent now are known after the reply, and go with the next call)."""
        completions, totals = self.unsent_completions, self.unsent_totals
        if completions or totals.tasks:
            accepted, stale = self.protocol.complete(self.id, completions, totals)
            self.unsent_completions = []
            self._count_completions(completions, totals, accepted, stale)

    def _count_completions(self, sent: list[Completion], totals_sent: WorkerTotals, accepted: list[str],
                           stale: list[str]) -> None:
        """After a call that completed `sent` and added `totals_sent`: count what was accepted
        towards the totals still to send."""
        if totals_sent.tasks:
            self.unsent_totals = NO_TOTALS
        self.metrics.completed += len(accepted)
        if stale:
            self.metrics.stale += len(stale)
            log.warning("%d completion(s) rejected as stale (a newer attempt owns them): %s", len(stale), stale[:5])
            rejected = set(stale)
            sent = [c for c in sent if c.task_id not in rejected]
        if sent:
            self.unsent_totals = self.unsent_totals.plus(sent)

    def _send_failures(self) -> None:
        while self.unsent_failures:
            outcome = self.unsent_failures[0]
            task = outcome.task
            backoff_ms = int(1000 * self.settings.retry_backoff_seconds * 2 ** (task.attempt - 1) * (0.5 + random.random()))
            verdict = self.protocol.fail(self.id, task.id, task.attempt, outcome.error, retryable=outcome.retryable,
                                         backoff_ms=backoff_ms, busy_seconds=outcome.seconds)
            self.unsent_failures.pop(0)
            self.metrics.failed += 1
            if verdict == "scheduled":
                self.metrics.retried += 1
            log.info("task %s attempt %d failed (%s): %s", task.id, task.attempt, verdict, outcome.error.splitlines()[0])

    def _leave(self) -> None:
        """Hand back what we could not finish and leave the worker table."""
        for _ in range(3):
            try:
                self._collect_outcomes()
                self._send_completions()
                self._send_completions()  # again: the totals of the completions just accepted
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
        beats = 0
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
                if beats % SETTINGS_EVERY_BEATS == 0:  # again now and then: Redis may have come back empty
                    self.redis.hset(self.protocol.keys.settings, self.id, self._settings_json)
                beats += 1
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
