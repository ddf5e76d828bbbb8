"""Baseline policies: each rule's defining invariant, in the distributed plan form."""

from __future__ import annotations

import numpy as np
import pytest

from pids.errors import ConfigError
from pids.placement import UNASSIGNED, TaskWindow, WorkerTable, binds_late
from pids_bench.baselines import (
    DelayScheduling,
    EarliestFinish,
    LeastLoaded,
    LeastWorkLeft,
    LongestFirst,
    PowerOfTwo,
    PullFifo,
    Random,
    RoundRobin,
    task_hash,
)
from pids_bench.policies import POLICIES, make_policy, wants_whole_queue


def workers(n=4, load=None, free=None, held=None, capacity=None, speed=None, position=None) -> WorkerTable:
    return WorkerTable(
        ids=[f"w{i:02d}" for i in range(n)],
        capacity=np.ones(n) if capacity is None else np.asarray(capacity, dtype=float),
        load=np.zeros(n) if load is None else np.asarray(load, dtype=float),
        free_slots=np.ones(n, dtype=np.int64) if free is None else np.asarray(free, dtype=np.int64),
        speed=np.ones(n) if speed is None else np.asarray(speed, dtype=float),
        position=position or [],
        held=None if held is None else np.asarray(held, dtype=float),
    )


def tasks(k, weight=None, seq=None, position=None, age=None) -> TaskWindow:
    return TaskWindow(
        ids=[f"t{i:03d}" for i in range(k)],
        weight=np.ones(k) if weight is None else np.asarray(weight, dtype=float),
        priority=np.zeros(k),
        position=position or [],
        age=None if age is None else np.asarray(age, dtype=float),
        seq=None if seq is None else np.asarray(seq),
    )


def test_round_robin_cycles_through_workers_by_enqueue_number() -> None:
    plan = RoundRobin().assign(workers(3), tasks(7, seq=np.arange(10, 17)), 0)
    assert plan.tolist() == [1, 2, 0, 1, 2, 0, 1]


def test_random_is_deterministic_per_seed_and_covers_every_worker() -> None:
    table, window = workers(5), tasks(500)
    first = Random(seed=1).assign(table, window, 0)
    assert first.tolist() == Random(seed=1).assign(table, window, 3).tolist()
    assert first.tolist() != Random(seed=2).assign(table, window, 0).tolist()
    assert set(first.tolist()) == set(range(5))


def test_least_loaded_always_picks_a_current_minimum() -> None:
    held = np.array([3.0, 1.0, 2.0, 1.0])
    plan = LeastLoaded().assign(workers(4, held=held), tasks(6), 0)
    counts = held.copy()
    for w in plan:
        assert counts[w] == counts.min()
        counts[w] += 1
    assert plan[0] == 1  # ties go to the lowest id


def test_least_work_left_picks_the_earliest_drain_time() -> None:
    plan = LeastWorkLeft().assign(workers(3, load=[4.0, 3.0, 4.0], capacity=[2.0, 1.0, 4.0]), tasks(1), 0)
    assert plan.tolist() == [2]  # 4/4 = 1 < 4/2 = 2 < 3/1 = 3


def test_power_of_two_takes_the_less_loaded_of_its_two_candidates() -> None:
    held = np.array([5.0, 0.0, 3.0, 1.0, 2.0, 4.0])
    window = tasks(40)
    plan = PowerOfTwo(seed=4).assign(workers(6, held=held), window, 0)
    counts = held.copy()
    for task_id, w in zip(window.ids, plan):
        a, b = task_hash(task_id, 4, 1) % 6, task_hash(task_id, 4, 2) % 6
        assert w in (a, b)
        assert counts[w] == min(counts[a], counts[b])
        counts[w] += 1


def test_pull_fifo_gives_the_queue_head_to_free_slots_only() -> None:
    plan = PullFifo().assign(workers(3, free=[0, 2, 1]), tasks(5), 0)
    assert plan.tolist() == [1, 2, 1, UNASSIGNED, UNASSIGNED]


def test_delay_scheduling_waits_for_a_local_slot_until_the_delay_is_over() -> None:
    table = workers(2, free=[1, 0], position=["z0/n0", "z0/n1"])
    remote = ["z0/n1", "z0/n1"]
    young = tasks(2, position=remote, age=[1.0, 2.0])
    old = tasks(2, position=remote, age=[9.0, 2.0])
    assert DelayScheduling(delay=5).assign(table, young, 0).tolist() == [UNASSIGNED, UNASSIGNED]
    assert DelayScheduling(delay=5).assign(table, old, 0).tolist() == [0, UNASSIGNED]
    local_later = tasks(2, position=["z0/n1", "z0/n0"], age=[9.0, 0.0])
    assert DelayScheduling(delay=5).assign(table, local_later, 0).tolist() == [UNASSIGNED, 0]


def test_delay_scheduling_without_positions_is_pull_fifo() -> None:
    table, window = workers(3, free=[1, 0, 2]), tasks(6)
    assert DelayScheduling().assign(table, window, 0).tolist() == PullFifo().assign(table, window, 0).tolist()
    with pytest.raises(ConfigError):
        DelayScheduling(delay=-1)


def test_lpt_gives_the_heaviest_tasks_to_free_slots_fastest_first() -> None:
    table = workers(3, free=[1, 1, 0], speed=[1.0, 2.0, 4.0])
    plan = LongestFirst().assign(table, tasks(4, weight=[3.0, 9.0, 1.0, 5.0]), 0)
    assert plan.tolist() == [UNASSIGNED, 1, UNASSIGNED, 0]


def test_eft_sends_the_big_task_to_the_fast_worker_and_respects_transfer_costs() -> None:
    table = workers(2, capacity=[1.0, 4.0], speed=[1.0, 4.0])
    assert EarliestFinish().assign(table, tasks(1, weight=[8.0]), 0).tolist() == [1]
    located = workers(2, position=["z0/n0", "z0/n1"], load=[1.0, 0.0])
    window = tasks(1, weight=[1.0], position=["z0/n0"])
    assert EarliestFinish(transfer=0.0).assign(located, window, 0).tolist() == [1]
    assert EarliestFinish(transfer=5.0).assign(located, window, 0).tolist() == [0]


def test_binding_and_whole_queue_flags() -> None:
    assert not binds_late(RoundRobin()) and not binds_late(EarliestFinish())
    assert binds_late(PullFifo()) and binds_late(make_policy("gravity"))
    assert wants_whole_queue(LongestFirst()) and wants_whole_queue(EarliestFinish())
    assert not wants_whole_queue(PullFifo())


@pytest.mark.parametrize("name", list(POLICIES))
def test_every_policy_returns_a_valid_plan_for_every_me(name: str) -> None:
    rng = np.random.default_rng(0)
    table = workers(
        4, load=rng.uniform(0, 5, 4), free=[1, 0, 2, 1], held=[1, 2, 0, 1], position=["z0/a", "z0/b", "z1/c", "z1/d"]
    )
    window = tasks(
        9, weight=rng.uniform(1, 5, 9), seq=np.arange(9), position=["z0/a", "z1/c", ""] * 3, age=rng.uniform(0, 10, 9)
    )
    policy = make_policy(name)
    plans = [policy.assign(table, window, me) for me in range(4)]
    for plan in plans:
        assert plan.shape == (9,)
        assert np.all((plan >= UNASSIGNED) & (plan < 4))
        assert plan.tolist() == plans[0].tolist()
    if binds_late(policy):
        for w in range(4):
            assert (plans[0] == w).sum() <= table.free_slots[w]


def test_unknown_policy_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        make_policy("teleport")
