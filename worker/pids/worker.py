"""The worker process: the claim loop's I/O shell around the pure claim cycle (cycle.py), the
task runners (thread, inline or process slots), the heartbeat thread, drain and outages.

Each turn of the loop: collect finished attempts, send failures, then one or two calls of
cycle.lua (complete + claim + snapshot), hand the won tasks to the runner. Any error from Redis
or a reply is classified (faults.py): the loop backs off and tries again, keeping every result;
a poison completion fails only its task. Nothing a task or Redis does ends the process."""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis

from . import redis_info
from .connection import connect
from .cycle import ClaimCycle, CycleConfig
from .errors import ConfigError
from .faults import Fault, FaultLog, classify
from .health import HealthServer, LoopWatch, WorkerMetrics
from .heartbeat import HeartbeatLoop
from .keys import Keys
from .ledger import Ledger, retry_backoff_ms
from .physics import worker_policy
from .placement import Placement, binds_late
from .process_slots import ProcessSlots
from .protocol import CycleReply, CycleRequest, Protocol
from .runners import InlineSlot, Runner, ThreadSlots
from .settings import WorkerSettings
from .wire import ClaimedTask

log = logging.getLogger("pids.worker")

IDLE_WAIT = 1.0  # longest sleep between cycles with nothing to do (new work wakes us sooner)
# pending work planned for others: look again soon, 1 ms first, doubling up to 20 ms
NOT_MINE_FIRST_WAIT, NOT_MINE_MAX_WAIT = 0.001, 0.02
INLINE_BATCH_SECONDS = 0.05  # an inline slot returns to the loop at least this often (results, refills)
MAX_BACKOFF = 5.0
ACK_TIMEOUT_MS = 1000  # how long completions wait for replicas (ack_replicas) before going on


@dataclass
class LoopState:
    backoff: float = 0.1  # before the next try after a Redis fault, doubling up to MAX_BACKOFF
    drain_deadline: float | None = None
    empty_plans: int = 0  # cycles in a row whose plan left pending work to other workers


def make_runner(settings: WorkerSettings, late_binding: bool, on_outcome: Any) -> Runner:
    s = settings
    if s.pool == "process":
        return ProcessSlots(s.concurrency, s.allowed_modules, s.max_result_bytes, on_outcome)
    if s.concurrency == 1 and late_binding:
        return InlineSlot(s.allowed_modules, s.max_result_bytes, on_outcome)
    return ThreadSlots(s.concurrency, s.allowed_modules, s.max_result_bytes, on_outcome)


class Worker:
    def __init__(self, settings: WorkerSettings, client: redis.Redis | None = None,
                 policy: Placement | None = None) -> None:
        self.settings = settings
        self.id = settings.worker_id
        self.redis = client or connect(settings.redis_url, settings.redis_password)
        self.protocol = Protocol(self.redis, Keys(settings.cluster))
        self.policy = policy or worker_policy(settings)  # default: gravity from the settings
        self.metrics = WorkerMetrics()
        self.metrics.settings.info({name: str(value) for name, value in settings.effective().items()})
        self.metrics.held.set_function(lambda: len(self.held))  # read at scrape time, not set per task
        self.metrics.load.set_function(self._held_weight)
        self.watch = LoopWatch(stuck_after=max(15.0, 10 * settings.heartbeat_seconds))
        self.wake = threading.Event()
        late = binds_late(self.policy)
        self.runner = make_runner(settings, late, self.wake.set)
        self.held: dict[str, ClaimedTask] = {}  # changed by the claim loop only; the heartbeat reads a copy
        self.ledger = Ledger()
        self.cycle = ClaimCycle(CycleConfig.of(settings), self.policy)
        self.draining = threading.Event()  # no more claims
        self.leaving = threading.Event()  # and exit once what is held is done (SIGTERM)
        self.stopping = threading.Event()
        self.heartbeat = HeartbeatLoop(self.protocol, settings, self.info, lambda: list(self.held),
                                       lambda: self.drain(leave=settings.exit_when_drained), self.stopping)
        self.faults = FaultLog(log)
        self.connected = False
        self.metrics.connected.set_function(lambda: float(self.connected))
        self.metrics.memory_ratio.set_function(lambda: self.heartbeat.memory_ratio or 0.0)
        self.metrics.epoch_changes.set_function(lambda: self.heartbeat.epoch_changes)
        self.reconcile_claims = False  # a claim's reply was lost: give back claims we do not hold
        self.redis_report: redis_info.RedisReport | None = None

    # -- lifecycle -------------------------------------------------------
    def run(self) -> int:
        """Run until drained (SIGTERM) or stopped; returns a process exit code."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_: self.drain())
            signal.signal(signal.SIGINT, self._on_interrupt)
        health = None
        if self.settings.health_port is not None:
            health = HealthServer(self.settings.health_port, self.metrics, self.alive, self.ready,
                                  host=self.settings.health_host).start()
        try:
            self.heartbeat.thread.start()
            threading.Thread(target=self._listen_for_work, name="pids-listen", daemon=True).start()
            log.info("worker %s: cluster %s, %d %s slots, policy %s", self.id, self.settings.cluster,
                     self.settings.concurrency, self.settings.pool, getattr(self.policy, "name", "?"))
            self._claim_loop()
            self._leave()
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
        return self.watch.alive()

    def ready(self) -> tuple[bool, str]:
        if self.draining.is_set():
            return False, "draining"
        if not self.connected or not self.heartbeat.registered.is_set() or self.heartbeat.connected_since is None:
            return False, f"not connected to Redis ({self.faults.fault.value if self.faults.fault else 'starting'})"
        return True, "ready"

    def info(self) -> dict[str, Any]:
        s = self.settings
        return {"slots": s.concurrency, "prefetch": s.prefetch, "speed": s.speed, "capacity": s.capacity,
                "position": s.position, "draining": self.draining.is_set(), "policy": s.policy, "pool": s.pool}

    # -- the claim loop ----------------------------------------------------
    def _claim_loop(self) -> None:
        loop = LoopState()
        while not self.stopping.is_set():
            try:
                if self._iterate(loop):
                    return
            except ConfigError:
                raise
            except Exception:  # noqa: BLE001 -- a bug of ours must not end the worker either
                log.exception("claim loop: unexpected error; going on")
                self.stopping.wait(1.0)

    def _iterate(self, loop: LoopState) -> bool:
        """One turn of the claim loop; True when the worker should leave."""
        self.watch.tick()
        if self.leaving.is_set() and loop.drain_deadline is None:
            loop.drain_deadline = time.monotonic() + self.settings.drain_seconds
        if self.wake.is_set():  # (clear() takes the event's lock even when there is nothing to clear)
            self.wake.clear()
        self.runner.run_inline(INLINE_BATCH_SECONDS)
        self._collect_outcomes()
        try:
            claimed, waiting_for_others = self._turn()
            if not self.connected:
                self.connected = True
                self.faults.recovered()
            loop.backoff = 0.1
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001 -- classified; the loop goes on whatever it is
            self._failed(exc)
            if loop.drain_deadline is not None and time.monotonic() > loop.drain_deadline:
                log.warning("drain time over while Redis is unreachable: leaving with %d task(s) held "
                            "(their leases run out, or the operator releases them)", len(self.held))
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
            wait = min(NOT_MINE_MAX_WAIT, NOT_MINE_FIRST_WAIT * 2 ** (loop.empty_plans - 1)) if loop.empty_plans \
                else IDLE_WAIT
            next_timeout = self.runner.seconds_to_next_timeout()
            self.wake.wait(wait if next_timeout is None else min(wait, next_timeout + 0.01))
        return False

    def _turn(self) -> tuple[int, bool]:
        """The loop's Redis work; returns (tasks claimed, whether pending work was left to others)."""
        if self.redis_report is None:
            self._check_redis()
        self._send_failures()
        if self.reconcile_claims:
            self._give_back_unheld_claims()
        free = self.settings.concurrency + self.settings.prefetch - len(self.held)
        may_claim = (free > 0 or not self.cycle.late_binding) and not self.draining.is_set() \
            and self.heartbeat.registered.is_set()
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
        if step.saw_dead and self.heartbeat.may_reap():
            self._release_dead_workers()
        if step.wake:
            self.protocol.wake(step.wake)
        if not step.won:
            return 0, step.pending != 0  # 0: the window was empty; None: not read, look again soon
        for task in step.won:
            self.held[task.id] = task
            self.runner.submit(task)
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
                log.error("Redis refused a claim of %s (%s); these tasks are skipped by this worker for a while",
                          list(request.claim_ids)[:5], exc)
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
            log.warning("only %d of %d replica(s) acknowledged the last completions within %d ms",
                        int(acknowledged), self.settings.ack_replicas, ACK_TIMEOUT_MS)

    def _count_sent(self, request: CycleRequest, reply: CycleReply) -> None:
        stale = self.ledger.sent(request.completions, request.totals, reply.completed)
        self.metrics.completed += len(reply.completed.accepted) + len(reply.completed.already)
        if stale:
            self.metrics.stale += len(stale)
            log.warning("%d completion(s) refused as stale (another attempt or an older data set): %s",
                        len(stale), stale[:5])

    def _isolate_completions(self, request: CycleRequest) -> None:
        """A call with completions failed in a way waiting does not fix: send each alone, so one
        that Redis refuses (its result, a broken record) fails its own task and no other."""
        for completion in list(request.completions):
            try:
                self._count_sent(CycleRequest(self.id, [completion]),
                                 CycleReply(self.protocol.complete(self.id, [completion]), [], None))
            except Exception as exc:  # noqa: BLE001
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
                verdict = self.protocol.fail(self.id, task, outcome.error, retryable=outcome.retryable,
                                             backoff_ms=retry_backoff_ms(self.settings.retry_backoff_seconds,
                                                                         task.attempt),
                                             busy_seconds=outcome.seconds)
            except Exception as exc:
                if classify(exc).transient:
                    raise
                verdict = f"not recorded ({type(exc).__name__}: {exc}); its lease will run out"
            self.ledger.failure_sent()
            self.metrics.failed += 1
            if verdict == "scheduled":
                self.metrics.retried += 1
            log.info("task %s attempt %d failed (%s): %s", task.id, task.attempt, verdict,
                     (outcome.error.splitlines() or [""])[0])

    def _collect_outcomes(self) -> None:
        for outcome in self.runner.take_outcomes():
            task = outcome.task
            if self.held.get(task.id) is task:  # (a task abandoned and claimed again is not this one)
                del self.held[task.id]
                self.ledger.record(outcome)

    def _give_back_unheld_claims(self) -> None:
        """Claims Redis has for this worker that it does not hold (their reply was lost) go back now,
        not when their lease runs out."""
        keep = set(self.held) | {c.task_id for c in self.ledger.completions} | \
            {o.task.id for o in self.ledger.failures}
        requeued, dead = self.protocol.release_worker(self.id, reason="claim reply lost", keep=sorted(keep))
        if requeued or dead:
            log.warning("gave back %d claim(s) whose reply was lost", requeued + dead)
        self.reconcile_claims = False

    def _release_dead_workers(self) -> None:
        from .reaper import release_dead_workers

        for worker_id in release_dead_workers(self.protocol):
            log.warning("worker %s missed its heartbeat deadline: its tasks are back in the queue", worker_id)

    def _check_redis(self) -> None:
        report = redis_info.inspect(self.redis)
        self.redis_report = report
        self.metrics.redis_info = {"persistence": report.persistence, "eviction_policy": report.maxmemory_policy,
                                   "role": report.role}
        log.info("%s", report.describe())
        if report.evicting and not self.settings.allow_evicting_redis:
            raise ConfigError(f"Redis maxmemory-policy is {report.maxmemory_policy!r}: it may silently drop tasks "
                              "when full. Set it to noeviction, or start the worker with PIDS_ALLOW_EVICTING_REDIS=true")
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
        self.faults.failed(fault, exc, "claim loop",
                           f"; {len(self.held)} task(s) held, {self.ledger.unsent_results()} result(s) kept")

    def _leave(self) -> None:
        """Hand back what we could not finish and leave the worker table."""
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
            except Exception as exc:  # noqa: BLE001
                log.warning("could not leave cleanly (%s); retrying", exc)
                time.sleep(0.5)

    def _held_weight(self) -> float:
        return sum(task.weight for task in list(self.held.values()))

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
            except Exception:  # noqa: BLE001 -- the claim loop reports Redis faults
                self.stopping.wait(0.5 + random.random())
            finally:
                try:
                    pubsub.close()
                except Exception:  # noqa: BLE001
                    pass
