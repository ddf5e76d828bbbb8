"""The claim loop: the I/O shell around the pure claim cycle (cycle.py). Each turn collects the
finished attempts, sends failures, makes one or two calls of cycle.lua (complete + claim +
snapshot) and hands the won tasks to the runner. Any error from Redis or a reply is classified
(faults.py): the loop backs off and tries again, keeping every result; a poison completion fails
only its task; a claim refused for its task leaves that task out for a while."""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass

from . import redis_info
from .cycle import ClaimCycle, CycleConfig
from .errors import ConfigError
from .faults import Fault, FaultLog, classify
from .health import LoopWatch, WorkerMetrics
from .heartbeat import HeartbeatLoop
from .ledger import Ledger, retry_backoff_ms
from .placement import Placement
from .protocol import Protocol
from .reaper import release_dead_workers
from .runners import Runner
from .settings import WorkerSettings
from .wake import Wake
from .wire import ClaimedTask, CycleReply, CycleRequest

log = logging.getLogger("pids.worker")

IDLE_WAIT = 1.0  # longest sleep between cycles with nothing to do (new work wakes us sooner)
# pending work planned for others: look again soon, 1 ms first, doubling up to 20 ms
NOT_MINE_FIRST_WAIT, NOT_MINE_MAX_WAIT = 0.001, 0.02
INLINE_BATCH_SECONDS = 0.05  # an inline slot returns to the loop at least this often (results, refills)
MAX_BACKOFF = 5.0
ACK_TIMEOUT_MS = 1000  # how long completions wait for replicas (ack_replicas) before going on


@dataclass
class Signals:
    """What other threads tell the claim loop."""

    wake: Wake  # look again now: new work, a finished task, a drain
    draining: threading.Event  # no more claims
    leaving: threading.Event  # and leave once what is held is done (SIGTERM)
    stopping: threading.Event  # leave at once


@dataclass
class LoopState:
    backoff: float = 0.1  # before the next try after a Redis fault, doubling up to MAX_BACKOFF
    drain_deadline: float | None = None
    empty_plans: int = 0  # cycles in a row whose plan left pending work to other workers


class ClaimLoop:
    def __init__(
        self,
        settings: WorkerSettings,
        protocol: Protocol,
        policy: Placement,
        runner: Runner,
        metrics: WorkerMetrics,
        signals: Signals,
    ) -> None:
        self.settings = settings
        self.id = settings.worker_id
        self.protocol = protocol
        self.runner = runner
        self.metrics = metrics
        self.signals = signals
        self.wake, self.draining, self.leaving, self.stopping = (
            signals.wake,
            signals.draining,
            signals.leaving,
            signals.stopping,
        )
        self.cycle = ClaimCycle(CycleConfig.of(settings), policy)
        self.held: dict[str, ClaimedTask] = {}  # changed by this loop only; other threads read copies
        self.ledger = Ledger()
        self.watch = LoopWatch(stuck_after=max(15.0, 10 * settings.heartbeat_seconds))
        self.faults = FaultLog(log)
        self.connected = False
        self.connected_since = 0.0  # monotonic start of the claim loop's current run of good calls
        self.reconcile_claims = False  # a claim's reply was lost: give back claims we do not hold
        self.redis_report: redis_info.RedisReport | None = None
        self.heartbeat: HeartbeatLoop | None = None  # set by the worker

    def run(self) -> None:
        """Until the worker leaves (drained, or stopped)."""
        loop = LoopState()
        while not self.stopping.is_set():
            try:
                if self._iterate(loop):
                    return
            except ConfigError:
                raise
            except Exception:
                log.exception("claim loop: unexpected error; going on")
                self.stopping.wait(1.0)

    def _iterate(self, loop: LoopState) -> bool:
        """One turn of the claim loop; True when the worker should leave."""
        self.watch.tick()
        if self.leaving.is_set() and loop.drain_deadline is None:
            loop.drain_deadline = time.monotonic() + self.settings.drain_seconds
        if self.wake.is_set():
            self.wake.clear()
        self.runner.run_inline(INLINE_BATCH_SECONDS)
        self._collect_outcomes()
        try:
            claimed, waiting_for_others = self._turn()
            if not self.connected:
                self.connected = True
                self.connected_since = time.monotonic()
                self.faults.recovered()
            loop.backoff = 0.1
        except ConfigError:
            raise
        except Exception as exc:
            self._failed(exc)
            if loop.drain_deadline is not None and time.monotonic() > loop.drain_deadline:
                log.warning(
                    "drain time over while Redis is unreachable: leaving with %d task(s) held "
                    "(their leases run out, or the operator releases them)",
                    len(self.held),
                )
                return True
            self.stopping.wait(loop.backoff * (0.5 + random.random()))
            loop.backoff = min(MAX_BACKOFF, loop.backoff * 2)
            return False
        if loop.drain_deadline is not None:
            if not self.held and not self.ledger:
                return True
            if time.monotonic() > loop.drain_deadline:
                log.warning("drain time over with %d task(s) unfinished: releasing them", len(self.held))
                return True
        loop.empty_plans = min(loop.empty_plans + 1, 30) if waiting_for_others else 0
        if claimed == 0 and not self.runner.has_inline_work():
            wait = (
                min(NOT_MINE_MAX_WAIT, NOT_MINE_FIRST_WAIT * 2 ** (loop.empty_plans - 1))
                if loop.empty_plans
                else IDLE_WAIT
            )
            next_timeout = self.runner.seconds_to_next_timeout()
            self.wake.wait(wait if next_timeout is None else min(wait, next_timeout + 0.01), self.runner.waitables())
        return False

    def _turn(self) -> tuple[int, bool]:
        """The loop's Redis work; returns (tasks claimed, whether pending work was left to others)."""
        if self.redis_report is None:
            self._check_redis()
        if self.ledger.failures:
            self._send_failures()
        if self.reconcile_claims:
            self._give_back_unheld_claims()
        free = self.settings.concurrency + self.settings.prefetch - len(self.held)
        may_claim = (free > 0 or not self.cycle.late_binding) and not self.draining.is_set() and self._registered()
        claimed, waiting = self._claim(max(free, 0)) if may_claim else (0, False)
        if not may_claim or (claimed == 0 and not waiting and not self.runner.has_inline_work()):
            self._send_completions()  # before a wait: the totals show what this worker did
        return claimed, waiting

    def _claim(self, free: int) -> tuple[int, bool]:
        started = time.perf_counter()
        request = self.cycle.request(free, started, self.ledger.next_completions(), self.ledger.totals)
        step = self.cycle.absorb(request, self._call_cycle(request), free, time.perf_counter())
        if step.again:  # a fresh plan (or share) and nothing won yet: claim from it now
            request = self.cycle.request(free, time.perf_counter(), self.ledger.next_completions(), self.ledger.totals)
            step = self.cycle.absorb(request, self._call_cycle(request), free, time.perf_counter())
        for task in step.won:  # held and running before any other call to Redis can fail
            self.held[task.id] = task
            self.runner.submit(task)
        if step.saw_dead and self._may_reap():
            self._release_dead_workers()
        if step.wake:
            self.protocol.wake(step.wake)
        if not step.won:
            return 0, step.pending != 0  # 0: the window was empty; None: not read, look again soon
        self.metrics.claimed += len(step.won)
        self.metrics.observe_cycle(time.perf_counter() - started)
        return len(step.won), False

    def _call_cycle(self, request: CycleRequest) -> CycleReply:
        try:
            reply = self.protocol.cycle(request)
        except Exception as exc:
            fault = classify(exc)
            if request.claim_ids and fault in (Fault.UNREACHABLE, Fault.PROTOCOL, Fault.UNKNOWN):
                self.reconcile_claims = True  # the claim may have run without us hearing of it
            if request.claim_ids and not fault.transient:
                self.cycle.quarantine(request.claim_ids, time.perf_counter())
                log.error(
                    "Redis refused a claim of %s (%s); these tasks are skipped by this worker for a while",
                    list(request.claim_ids)[:5],
                    exc,
                )
            if request.completions and not fault.transient:
                self._isolate_completions(request)
            raise
        self._count_sent(request, reply)
        if request.completions and self.settings.ack_replicas:
            self._await_replicas()
        return reply

    def _await_replicas(self) -> None:
        """HA Redis: wait until `ack_replicas` replicas have the completions just recorded (WAIT on
        the same connection), so a failover right after does not lose them."""
        acknowledged = self.protocol.held.call("WAIT", self.settings.ack_replicas, ACK_TIMEOUT_MS)
        if isinstance(acknowledged, Exception):
            raise acknowledged
        if int(acknowledged) < self.settings.ack_replicas:
            log.warning(
                "only %d of %d replica(s) acknowledged the last completions within %d ms",
                int(acknowledged),
                self.settings.ack_replicas,
                ACK_TIMEOUT_MS,
            )

    def _count_sent(self, request: CycleRequest, reply: CycleReply) -> None:
        stale = self.ledger.sent(request.completions, request.totals, reply.completed)
        self.metrics.completed += len(reply.completed.accepted) + len(reply.completed.already)
        if stale:
            self.metrics.stale += len(stale)
            log.warning(
                "%d completion(s) refused as stale (another attempt or an older data set): %s", len(stale), stale[:5]
            )

    def _isolate_completions(self, request: CycleRequest) -> None:
        """A call with completions failed in a way waiting does not fix: send each alone, so one
        that Redis refuses (its result, a broken record) fails its own task and no other."""
        for completion in list(request.completions):
            try:
                self._count_sent(
                    CycleRequest(self.id, [completion]),
                    CycleReply(self.protocol.complete(self.id, [completion]), [], None),
                )
            except Exception as exc:
                if classify(exc).transient:
                    raise
                log.error("task %s: Redis refused its completion, failing it instead: %s", completion.task_id, exc)
                self.ledger.unstorable(completion, f"{type(exc).__name__}: {exc}")

    def _send_completions(self, until_empty: bool = False) -> None:
        """Send what is unsent: completions and the totals of those accepted before (the totals of
        the ones sent now are known after the reply, and go with the next call)."""
        while self.ledger.completions or self.ledger.totals.tasks:
            self._call_cycle(CycleRequest(self.id, self.ledger.next_completions(), self.ledger.totals))
            if not until_empty:
                return

    def _send_failures(self) -> None:
        while (outcome := self.ledger.next_failure()) is not None:
            task = outcome.task
            try:
                verdict = self.protocol.fail(
                    self.id,
                    task,
                    outcome.error,
                    retryable=outcome.retryable,
                    backoff_ms=retry_backoff_ms(self.settings.retry_backoff_seconds, task.attempt),
                    busy_seconds=outcome.seconds,
                )
            except Exception as exc:
                if classify(exc).transient:
                    raise
                verdict = f"not recorded ({type(exc).__name__}: {exc}); its lease will run out"
            self.ledger.failure_sent()
            self.metrics.failed += 1
            if verdict == "scheduled":
                self.metrics.retried += 1
            log.info(
                "task %s attempt %d failed (%s): %s",
                task.id,
                task.attempt,
                verdict,
                (outcome.error.splitlines() or [""])[0],
            )

    def _collect_outcomes(self) -> None:
        for outcome in self.runner.take_outcomes():
            task = outcome.task
            if self.held.get(task.id) is task:  # (a task abandoned and claimed again is not this one)
                del self.held[task.id]
                self.ledger.record(outcome)

    def _give_back_unheld_claims(self) -> None:
        """Claims Redis has for this worker that it does not hold (their reply was lost) go back now,
        not when their lease runs out."""
        requeued, dead = self.protocol.release_worker(self.id, reason="claim reply lost", keep=self.owed_ids())
        if requeued or dead:
            log.warning("gave back %d claim(s) whose reply was lost", requeued + dead)
        self.reconcile_claims = False

    def _release_dead_workers(self) -> None:
        for worker_id in release_dead_workers(self.protocol, self.id):
            log.warning("worker %s missed its heartbeat deadline: its tasks are back in the queue", worker_id)

    def _check_redis(self) -> None:
        report = redis_info.inspect(self.protocol.redis)
        self.redis_report = report
        self.ledger.max_result_bytes = report.max_bulk_bytes
        self.metrics.redis_info = {
            "persistence": report.persistence,
            "eviction_policy": report.maxmemory_policy,
            "role": report.role,
        }
        log.info("%s", report.describe())
        if report.evicting and not self.settings.allow_evicting_redis:
            raise ConfigError(
                f"Redis maxmemory-policy is {report.maxmemory_policy!r}: it may silently drop tasks "
                "when full. Set it to noeviction, or start the worker with PIDS_ALLOW_EVICTING_REDIS=true"
            )
        if not report.persistent:
            log.warning("Redis has no persistence (no AOF, no RDB): a restart loses every task")

    def _failed(self, exc: Exception) -> None:
        fault = classify(exc)
        self.connected = False
        self.metrics.redis_errors += 1
        self.metrics.faults[fault.value] = self.metrics.faults.get(fault.value, 0) + 1
        if fault.reconnect:
            self.protocol.held.reset()
        if fault in (Fault.PROTOCOL, Fault.UNKNOWN):
            log.exception("claim loop: unexpected %s", type(exc).__name__)
        self.faults.failed(
            fault, exc, "claim loop", f"; {len(self.held)} task(s) held, {self.ledger.unsent_results()} result(s) kept"
        )

    def leave(self) -> None:
        """Send what is unsent, hand back what was not finished, leave the worker table."""
        for _ in range(3):
            try:
                self._collect_outcomes()
                self._send_completions(until_empty=True)
                self._send_failures()
                requeued, dead = self.protocol.release_worker(self.id, reason=f"worker {self.id} left before finishing")
                if requeued or dead:
                    log.info("released %d task(s) back to the queue (%d past max attempts)", requeued + dead, dead)
                self.protocol.forget_worker(self.id)
                return
            except Exception as exc:
                log.warning("could not leave cleanly (%s); retrying", exc)
                time.sleep(0.5)

    def owed_ids(self) -> list[str]:
        """The tasks this worker holds or owes Redis an outcome for: the heartbeat renews their
        leases, so a result waiting out a Redis fault is not re-run elsewhere meanwhile."""
        return [*list(self.held), *self.ledger.owed_ids()]

    def _registered(self) -> bool:
        return self.heartbeat is not None and self.heartbeat.registered.is_set()

    def _may_reap(self) -> bool:
        """Both the heartbeat and this loop have been connected for the grace time (after an
        outage, every live worker's heartbeat must land before its tasks count as orphaned)."""
        hb = self.heartbeat
        return (
            hb is not None
            and hb.may_reap()
            and self.connected
            and time.monotonic() - self.connected_since >= hb.grace_seconds
        )
