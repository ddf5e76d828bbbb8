"""The placement simulator: determinism, hand-checked schedules, crashes, batching, and the bench."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from pids.cycle import DEPTH, ClaimCycle, Step
from pids.physics import Gravity
from pids.placement import UNASSIGNED, TaskWindow, WorkerTable
from pids_bench import placement as bench
from pids_bench.policies import make_policy
from pids_bench.simulator import simulate
from pids_bench.workloads import WORKLOADS, WorkerSpec, Workload, make_workload


def tiny(sizes, arrival=None, speeds=(1.0, 1.0), **kw) -> Workload:
    sizes = np.asarray(sizes, dtype=float)
    return Workload(
        name="tiny",
        description="hand-made",
        workers=[WorkerSpec(id=f"w{i:02d}", speed=s) for i, s in enumerate(speeds)],
        size=sizes,
        hint=sizes.copy(),
        arrival=np.zeros(len(sizes)) if arrival is None else np.asarray(arrival, dtype=float),
        **kw,
    )


@dataclass
class Spy:
    """Wraps a policy, recording every snapshot it was shown."""

    inner: object
    calls: list[tuple[WorkerTable, TaskWindow, int]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.inner.name  # type: ignore[attr-defined]

    @property
    def late_binding(self) -> bool:
        return getattr(self.inner, "late_binding", True)

    @property
    def whole_queue(self) -> bool:
        return getattr(self.inner, "whole_queue", False)

    def assign(self, workers: WorkerTable, tasks: TaskWindow, me: int) -> np.ndarray:
        self.calls.append((workers, tasks, me))
        return self.inner.assign(workers, tasks, me)  # type: ignore[attr-defined]


def test_pull_fifo_schedule_matches_hand_computation() -> None:
    r = simulate(tiny([4, 2, 2]), make_policy("pull_fifo"))
    assert r.start.tolist() == [0, 0, 2]
    assert r.finish.tolist() == [4, 2, 4]
    assert r.busy.tolist() == [4, 4]
    assert r.wait.tolist() == [0, 0, 2]
    assert r.makespan == 4 and r.lower_bound == 4
    assert r.metrics()["balance"] == 1.0


def test_round_robin_schedule_matches_hand_computation() -> None:
    r = simulate(tiny([4, 2, 2]), make_policy("round_robin"))
    assert r.worker_of.tolist() == [0, 1, 0]
    assert r.busy.tolist() == [6, 2]
    assert r.makespan == 6
    m = r.metrics()
    assert m["balance"] == pytest.approx(0.5)  # mean 4, std 2
    assert m["makespan_lb"] == pytest.approx(1.5)
    assert m["wait_mean"] == pytest.approx(4 / 3)


def test_speed_and_transfer_set_the_run_time() -> None:
    w = Workload(
        name="tiny",
        description="",
        size=np.array([6.0]),
        hint=np.array([6.0]),
        arrival=np.zeros(1),
        workers=[WorkerSpec(id="w00", speed=3.0, position="z0/n0")],
        position=["z1/n1"],
        transfer=1.5,
    )
    r = simulate(w, make_policy("pull_fifo"))
    assert r.finish.tolist() == [6 / 3 + 1.5 * 2]
    assert r.remote.tolist() == [True]


def test_arrivals_are_respected() -> None:
    r = simulate(tiny([1, 1], arrival=[0, 5]), make_policy("gravity"))
    assert r.start.tolist() == [0, 5]
    assert r.wait.tolist() == [0, 0]


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_same_seed_gives_the_same_run_and_another_seed_another(name: str) -> None:
    runs = [simulate(make_workload(name, s, 80, 4), Gravity(), seed=s, window=16) for s in (1, 1, 2)]
    for attr in ("busy", "start", "finish", "worker_of"):
        np.testing.assert_array_equal(getattr(runs[0], attr), getattr(runs[1], attr))
    assert not np.array_equal(runs[0].finish, runs[2].finish)


@pytest.mark.parametrize("name", list(WORKLOADS))
@pytest.mark.parametrize("policy", bench.POLICIES)
def test_every_task_completes_once_and_the_lower_bound_holds(name: str, policy: str) -> None:
    workload = make_workload(name, 0, 60, 4)
    r = simulate(workload, bench.policy_for(policy, workload, 0, {}), window=16)
    assert not np.isnan(r.finish).any()
    assert (r.finish >= workload.arrival).all()
    assert (r.wait >= 0).all()
    assert r.makespan >= r.lower_bound - 1e-9


def test_the_simulator_drives_the_policy_object_it_is_given() -> None:
    spy = Spy(Gravity())
    simulate(make_workload("a-origin", 0, 40, 4), spy, window=8)
    assert spy.calls
    for table, window, me in spy.calls:
        assert 0 <= me < len(table)
        assert len(window) <= 8
        assert table.free_slots[me] == DEPTH  # a one-slot worker plans a DEPTH-deep share
        assert table.ids == sorted(table.ids)


def test_every_plan_of_a_simulated_worker_is_made_by_the_workers_claim_cycle(monkeypatch) -> None:
    absorbed: list[Step] = []
    absorb = ClaimCycle.absorb

    def counted(self: ClaimCycle, *args: object) -> Step:
        step = absorb(self, *args)  # type: ignore[arg-type]
        absorbed.append(step)
        return step

    monkeypatch.setattr(ClaimCycle, "absorb", counted)
    spy = Spy(Gravity())
    r = simulate(make_workload("e-poisson", 0, 60, 4), spy, window=16)
    assert not np.isnan(r.finish).any()
    assert len(spy.calls) == sum(1 for step in absorbed if step.pending) > 0
    assert sum(len(step.won) for step in absorbed) == 60


def test_windows_are_sized_as_the_worker_sizes_them_from_the_cluster() -> None:
    """A worker reads its configured window first, then claim_window's: for 4 one-slot workers,
    at most 64 tasks (two DEPTH-deep shares)."""
    spy = Spy(make_policy("pull_fifo"))
    simulate(tiny([1.0] * 300, speeds=(1.0,) * 4), spy, window=128)
    sizes = [len(window) for _, window, _ in spy.calls]
    assert sizes[0] == 128 and max(sizes[4:]) == 64


def test_a_worker_with_prefetch_holds_at_most_its_slots_and_prefetch() -> None:
    spy = Spy(make_policy("pull_fifo"))
    r = simulate(make_workload("a-origin", 0, 200, 4), spy, batch=8)
    assert not np.isnan(r.finish).any()
    held = np.concatenate([np.asarray(t.held) for t, _, _ in spy.calls])
    assert held.max() <= 8
    for table, _, me in spy.calls:  # the planner's share is DEPTH x (slot + prefetch) deep; the others' free slots
        assert table.free_slots[me] == 8 * DEPTH and np.delete(table.free_slots, me).max() <= 8


@dataclass(frozen=True)
class ToTheLast:
    """Every task to the last worker of the table."""

    name: str = "to_the_last"

    def assign(self, workers: WorkerTable, tasks: TaskWindow, me: int) -> np.ndarray:
        return np.full(len(tasks), len(workers) - 1 if len(workers) else UNASSIGNED, dtype=np.int64)


def test_a_plan_that_gives_the_first_task_to_an_idle_worker_wakes_it() -> None:
    """Both workers sleep on an empty queue; the task wakes the one idle longest (w00, by id),
    whose plan gives it to w01, which it wakes: w01 starts it at once, not at its next look."""
    r = simulate(tiny([1.0], arrival=[5.5]), ToTheLast())
    assert r.worker_of.tolist() == [1] and r.start.tolist() == [5.5]


def test_centralised_references_plan_over_the_whole_queue() -> None:
    spy = Spy(make_policy("lpt"))
    simulate(make_workload("a-origin", 0, 300, 4), spy, window=16)
    assert len(spy.calls[0][1]) == 300


def test_an_early_binding_reference_binds_the_whole_queue_at_once() -> None:
    spy = Spy(make_policy("eft"))
    r = simulate(make_workload("a-origin", 0, 300, 4), spy, window=16)
    assert not np.isnan(r.finish).any()
    assert spy.calls and all(window.age is not None and window.age.max() == 0 for _, window, _ in spy.calls)


def test_a_crashed_workers_tasks_run_again_elsewhere() -> None:
    w = make_workload("f-burst-crash", 0, 100, 4)
    crash = next(s.crash_at for s in w.workers if s.crash_at is not None)
    r = simulate(w, make_policy("pull_fifo"))
    assert not r.survived[3] and r.survived[[0, 1, 2]].all()
    assert not np.isnan(r.finish).any()
    assert not (r.worker_of == 3)[r.finish > crash].any()


def test_bench_runs_end_to_end_and_writes_its_table_json_and_plots(tmp_path: Path, capsys) -> None:
    code = bench.main(
        [
            "--workload",
            "a-origin",
            "--workload",
            "d-locality",
            "--seeds",
            "1",
            "--tasks",
            "40",
            "--workers",
            "4",
            "--window",
            "16",
            "--grid-seeds",
            "1",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "| gravity |" in out and "#### d-locality" in out
    document = json.loads((tmp_path / "results.json").read_text())
    assert set(document["results"]) == {"a-origin", "d-locality"}
    assert set(document["results"]["a-origin"]) == set(bench.POLICIES)
    for png in ("work_bars.png", "wait_cdf.png", "makespan_lb.png", "grid_heatmap.png"):
        assert (tmp_path / png).stat().st_size > 1000


def test_the_windows_heavy_part_breaks_weight_ties_by_id_as_zrevrange_does() -> None:
    """snapshot.lua reads the heaviest pending tasks with ZREVRANGE, which orders equal weights by
    member, the greater first, after the queue front; the simulator's model of it does the same
    (ids compare as text: "b-9" > "b-11")."""
    sizes = [1.0] * 30
    sizes[2:12] = [5.0] * 10  # b-2 ... b-11, equally heavy
    spy = Spy(make_policy("pull_fifo"))
    simulate(tiny(sizes, ids=[f"b-{i}" for i in range(30)]), spy, window=8, heavy=4)
    _, first_window, _ = spy.calls[0]
    assert first_window.ids == ["b-0", "b-1", "b-2", "b-3", "b-9", "b-8", "b-7", "b-6"]
