"""Gravity: the physics properties the design promises, and how plans are formed."""

from __future__ import annotations

import numpy as np
import pytest

from pids.errors import ConfigError
from pids.physics import Gravity, _place_by_pull, _place_equal_weights, distance_matrix, path_distance, worker_policy
from pids.placement import UNASSIGNED, TaskWindow, WorkerTable
from pids.settings import WorkerSettings
from pids_bench.baselines import LeastWorkLeft


def workers(load, capacity=None, free=None, speed=None, position=None, whole_cluster=False) -> WorkerTable:
    load = np.asarray(load, dtype=float)
    n = len(load)
    return WorkerTable(
        ids=[f"w{i:02d}" for i in range(n)],
        capacity=np.ones(n) if capacity is None else np.asarray(capacity, dtype=float),
        load=load,
        free_slots=np.ones(n, dtype=np.int64) if free is None else np.asarray(free, dtype=np.int64),
        speed=np.ones(n) if speed is None else np.asarray(speed, dtype=float),
        position=position or [],
        whole_cluster=whole_cluster,
    )


def tasks(weight, position=None, priority=None, age=None, seq=None) -> TaskWindow:
    weight = np.asarray(weight, dtype=float)
    return TaskWindow(
        ids=[f"t{i:03d}" for i in range(len(weight))],
        weight=weight,
        priority=np.zeros(len(weight)) if priority is None else np.asarray(priority, dtype=float),
        position=position or [],
        age=None if age is None else np.asarray(age, dtype=float),
        seq=None if seq is None else np.asarray(seq, dtype=float),
    )


def test_path_distance_counts_levels_below_the_common_prefix() -> None:
    assert path_distance("z0/n1", "z0/n1") == 0
    assert path_distance("z0/n1", "z0/n2") == 1
    assert path_distance("z0/n1", "z1/n5") == 2
    assert path_distance("z0/n1", "") == 0  # a task without position is near everyone
    assert path_distance("", "z0/n1") == 2  # a worker without position is far from located data


def test_distance_matrix_matches_pairwise_distances() -> None:
    ws, ts = ["z0/n0", "z0/n1", "z1/n2"], ["z0/n1", "z1/n2", "z0/n1", ""]
    expected = np.array([[path_distance(w, t) for t in ts] for w in ws], dtype=float)
    np.testing.assert_array_equal(distance_matrix(ws, ts), expected)


def test_more_free_capacity_pulls_harder() -> None:
    pull = Gravity().pull_matrix(workers([0.0, 2.0], capacity=[4.0, 4.0]), tasks([1.0]))
    assert pull[0, 0] > pull[1, 0]
    bigger = Gravity().pull_matrix(workers([1.0, 1.0], capacity=[2.0, 4.0]), tasks([1.0]))
    assert bigger[1, 0] > bigger[0, 0]


def test_more_load_repels_monotonically() -> None:
    pull = Gravity().pull_matrix(workers([0.0, 1.0, 5.0, 50.0]), tasks([1.0, 3.0]))
    assert np.all(np.diff(pull, axis=0) < 0)
    assert pull[-1].max() < 0  # far above the water line: repulsion


def test_larger_distance_pulls_less_whether_attracted_or_repelled() -> None:
    positions = ["z0/n0", "z0/n1", "z1/n2"]
    located = tasks([1.0], position=["z0/n0"])
    for load in (0.0, 40.0):
        pull = Gravity().pull_matrix(workers([load, load, load], position=positions), located)[:, 0]
        assert pull[0] > pull[1] > pull[2]


def test_heavier_task_pulls_harder_on_a_free_worker() -> None:
    pull = Gravity().pull_matrix(workers([0.0, 30.0]), tasks([1.0, 5.0]))
    assert pull[0, 1] > pull[0, 0]


@pytest.mark.parametrize("seed", range(5))
def test_without_positions_the_pull_is_weighted_least_loaded(seed: int) -> None:
    rng = np.random.default_rng(seed)
    table = workers(rng.uniform(0, 10, 6), capacity=rng.uniform(1, 4, 6))
    window = tasks(rng.uniform(0.5, 5, 8))
    best = np.argmax(Gravity(G=rng.uniform(0.1, 5)).pull_matrix(table, window), axis=0)
    finish = (table.load[:, None] + window.weight[None, :]) / table.capacity[:, None]
    np.testing.assert_array_equal(best, np.argmin(finish, axis=0))


@pytest.mark.parametrize("seed", range(5))
def test_equal_capacities_no_positions_no_hints_equals_least_work_left(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_tasks = 20
    table = workers(rng.integers(0, 6, 5).astype(float), capacity=np.full(5, 2.0), free=np.full(5, n_tasks))
    window = tasks(np.ones(n_tasks))
    np.testing.assert_array_equal(Gravity().assign(table, window, 0), LeastWorkLeft().assign(table, window, 0))


def test_ties_go_to_the_lowest_worker_id() -> None:
    plan = Gravity().assign(workers([0.0, 0.0, 0.0]), tasks([1.0]), me=2)
    assert plan.tolist() == [0]


@pytest.mark.parametrize("n_workers", [2, 3])
def test_equal_workers_agree_on_who_takes_what_wherever_their_windows_start(n_workers: int) -> None:
    """Workers planning from windows a task or two apart (claimed in between) give each task they
    both see to the same worker: ties follow the task's sequence number, not its place in the
    window (with ties to the lowest index, two workers' shares coincided every other shift)."""
    table = workers(np.ones(n_workers), free=np.full(n_workers, 8), whole_cluster=True)
    plans = [
        Gravity().assign(table, tasks(np.ones(16), seq=np.arange(100 + shift, 116 + shift)), 0).tolist()
        for shift in range(3)
    ]
    for shift in (1, 2):
        assert plans[shift][: 16 - shift] == plans[0][shift:]
    assert sorted(plans[0].count(w) for w in range(n_workers)) == sorted(
        len(range(w, 16, n_workers)) for w in range(n_workers)
    )  # still an even split
    # a partial view (planners count and index workers differently): ties to the lowest index
    partial = workers(np.ones(n_workers), free=np.full(n_workers, 8))
    assert Gravity().assign(partial, tasks(np.ones(16), seq=np.arange(101, 117)), 0)[0] == 0


def test_positive_pull_beats_negative_pull_for_a_single_task() -> None:
    rng = np.random.default_rng(7)
    for _ in range(50):
        table = workers(rng.choice([0.0, 50.0], 4) + rng.uniform(0, 1, 4), capacity=rng.uniform(1, 3, 4))
        window = tasks([rng.uniform(0.5, 5)])
        pull = Gravity().pull_matrix(table, window)[:, 0]
        w = Gravity().assign(table, window, 0)[0]
        assert w == int(np.argmax(pull))
        if pull.max() > 0:
            assert pull[w] > 0


def test_plan_is_the_same_whoever_computes_it() -> None:
    rng = np.random.default_rng(3)
    table = workers(rng.uniform(0, 10, 5), free=[1, 0, 2, 1, 0], position=["z0/a", "z0/b", "z1/c", "z1/d", "z0/e"])
    window = tasks(rng.uniform(1, 9, 12), position=[["z0/a", "z1/c", "z1/d"][i % 3] for i in range(12)])
    plans = [Gravity().assign(table, window, me).tolist() for me in range(5)]
    assert all(p == plans[0] for p in plans)


def test_a_worker_gets_no_more_than_its_free_slots_and_a_full_worker_nothing() -> None:
    table = workers([0.0, 0.0, 0.0], free=[2, 0, 1])
    plan = Gravity().assign(table, tasks(np.ones(10)), 0)
    assert (plan == 0).sum() == 2
    assert (plan == 1).sum() == 0
    assert (plan == 2).sum() == 1
    assert (plan == UNASSIGNED).sum() == 7


def test_heaviest_task_settles_first() -> None:
    plan = Gravity().assign(workers([0.0, 5.0], free=[1, 0]), tasks([1.0, 10.0, 2.0]), 0)
    assert plan.tolist() == [UNASSIGNED, 0, UNASSIGNED]


def test_age_can_outweigh_size_and_g_sets_the_exchange_rate() -> None:
    table = workers([0.0, 5.0], free=[1, 0])
    window = tasks([1.0, 10.0], age=[30.0, 0.0])
    assert Gravity(G=1.0).assign(table, window, 0).tolist() == [0, UNASSIGNED]  # 1 + 30 > 10
    assert Gravity(G=5.0).assign(table, window, 0).tolist() == [UNASSIGNED, 0]  # 5 + 30 < 50


def test_a_slow_idle_worker_leaves_a_big_task_to_a_much_faster_busy_one() -> None:
    table = workers([0.0, 1.0], capacity=[1.0, 10.0], speed=[1.0, 10.0], free=[1, 0])
    assert Gravity().assign(table, tasks([10.0]), 0).tolist() == [UNASSIGNED]
    assert Gravity().assign(table, tasks([0.1]), 0).tolist() == [0]


def test_local_work_is_claimed_before_remote_work() -> None:
    positions = ["z0/n0", "z0/n1"]
    table = workers([0.0, 30.0], free=[1, 0], position=positions)
    window = tasks([5.0, 1.0], position=["z0/n1", "z0/n0"])
    assert Gravity().assign(table, window, 0).tolist() == [UNASSIGNED, 0]


def test_equal_loads_prefer_the_worker_next_to_the_data() -> None:
    table = workers([0.0, 0.0], position=["z0/n0", "z0/n1"])
    assert Gravity().assign(table, tasks([1.0], position=["z0/n1"]), 0).tolist() == [1]


def test_empty_inputs_give_empty_or_unassigned_plans() -> None:
    assert Gravity().assign(workers([]), tasks([1.0]), 0).tolist() == [UNASSIGNED]
    assert Gravity().assign(workers([0.0]), tasks([]), 0).tolist() == []
    assert Gravity().assign(workers([0.0], free=[0]), tasks([1.0]), 0).tolist() == [UNASSIGNED]


def test_invalid_parameters_raise_config_error() -> None:
    with pytest.raises(ConfigError):
        Gravity(G=0)
    with pytest.raises(ConfigError):
        Gravity(distance_offset=-1)


def test_a_worker_runs_gravity_with_the_settings_constants() -> None:
    policy = worker_policy(WorkerSettings(G=2.0, distance_offset=3.0))
    assert isinstance(policy, Gravity)
    assert (policy.G, policy.distance_offset) == (2.0, 3.0)


@pytest.mark.parametrize("name", ["lpt", "eft", "round_robin", "teleport"])
def test_a_worker_refuses_every_policy_but_gravity_naming_the_choice(name: str) -> None:
    """LPT and EFT need the whole queue, the baselines live in pids-bench: `pids worker` runs none of them."""
    with pytest.raises(
        ConfigError, match=rf"placement policy '{name}' is not one a worker runs; choose one of: gravity"
    ):
        worker_policy(WorkerSettings(policy=name))


@pytest.mark.parametrize("seed", range(40))
def test_equal_weights_take_the_short_loop_and_plan_as_the_general_one(seed: int) -> None:
    """Without positions and with one weight for the whole window, a worker's pull is the same for
    every task, and `assign` keeps only the strongest workers instead of every pull per task. It
    must give every task to the same worker as the general loop, ties and tie-breaks included."""
    rng = np.random.default_rng(seed)
    n_workers, n_tasks = int(rng.integers(1, 9)), int(rng.integers(1, 80))
    load = rng.integers(0, 4, n_workers).astype(float) * rng.choice([1.0, 0.5, 2.5])  # many equal loads
    scale = (1.0 / rng.choice([1.0, 2.0, 3.0], n_workers)).tolist()
    weight = float(rng.choice([1.0, 0.5, 2.5]))
    free = rng.integers(0, 12, n_workers).tolist()
    order = rng.permutation(n_tasks).tolist()
    tie_starts = rng.integers(0, n_workers, n_tasks).tolist() if seed % 3 else None
    fixed_rows = [[1.0 - weight * s for s in scale] for _ in range(n_tasks)]
    general, _ = _place_by_pull(
        order, fixed_rows, load.tolist(), scale, [weight] * n_tasks, list(free), tie_starts, None
    )
    assert _place_equal_weights(order, load.tolist(), scale, weight, list(free), tie_starts) == general
    assert all(general.count(w) <= free[w] for w in range(n_workers))


def test_a_worker_claims_its_share_in_the_order_gravity_placed_it() -> None:
    """A worker plans a share deeper than its free slots and claims it a few tasks at a time: the
    front it claims first must be what gravity placed first (the heaviest), not queue order."""
    g = Gravity(G=1.0)
    window = tasks([1.0, 1.0, 8.0, 1.0, 3.0], age=[0.0] * 5)
    table = workers([0.0], free=[5])
    share = np.flatnonzero(g.assign(table, window, me=0) == 0)
    assert share.tolist() == [0, 1, 2, 3, 4]  # all of it, in window order
    assert g.claim_order(table, window, 0, share).tolist() == [2, 4, 0, 1, 3]  # heaviest first, then queue order
    located = tasks([1.0, 1.0, 1.0], position=["z/far", "z/here", "z/here"], age=[0.0] * 3)
    here = workers([0.0], free=[3], position=["z/here"])
    assert g.claim_order(here, located, 0, np.arange(3)).tolist() == [1, 2, 0]  # its own data first
