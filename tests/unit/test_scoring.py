"""Metric formulas on hand-computed cases, and the lower bound against brute-force optima."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from pids.scoring import balance_score, jain_index, makespan_lower_bound, max_over_mean, percentile


def test_balance_score_is_one_minus_coefficient_of_variation() -> None:
    assert balance_score([1, 1, 1, 1]) == 1.0
    assert balance_score([1, 3]) == pytest.approx(0.5)  # mean 2, std 1
    assert balance_score([2, 0]) == 0.0  # mean 1, std 1
    assert balance_score([10, 0, 0, 0]) == 0.0  # clamped at zero, never negative


def test_balance_score_of_nothing_is_zero() -> None:
    assert balance_score([]) == 0.0
    assert balance_score([0, 0]) == 0.0


def test_jain_index_hand_cases() -> None:
    assert jain_index([1, 1]) == 1.0
    assert jain_index([1, 0]) == pytest.approx(0.5)
    assert jain_index([1, 3]) == pytest.approx(16 / 20)
    assert jain_index([0, 0]) == 0.0


def test_max_over_mean_hand_cases() -> None:
    assert max_over_mean([1, 3]) == pytest.approx(1.5)
    assert max_over_mean([2, 2, 2]) == 1.0


def test_lower_bound_takes_the_larger_of_average_and_largest_task() -> None:
    assert makespan_lower_bound([4, 2, 2], [1, 1]) == pytest.approx(4.0)  # both terms 4
    assert makespan_lower_bound([4, 2, 2], [1, 3]) == pytest.approx(2.0)  # 8 / 4 beats 4 / 3
    assert makespan_lower_bound([1, 1, 1, 1], [1, 1]) == pytest.approx(2.0)
    assert makespan_lower_bound([4, 2, 2], [1, 1], slots=[2, 1]) == pytest.approx(4.0)  # 8/3 < 4
    assert makespan_lower_bound([], [1]) == 0.0


def test_lower_bound_counts_the_latest_arrival() -> None:
    assert makespan_lower_bound([4, 2, 2], [1, 1], arrivals=[0, 0, 10]) == pytest.approx(12.0)
    assert makespan_lower_bound([4, 2, 2], [1, 2], arrivals=[0, 0, 10]) == pytest.approx(11.0)


@pytest.mark.parametrize("seed", range(6))
def test_lower_bound_never_exceeds_the_optimal_makespan(seed: int) -> None:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 20, size=7).astype(float)
    speeds = rng.choice([1.0, 2.0, 3.0], size=3)
    best = min(
        max(sizes[np.array(assignment) == w].sum() / speeds[w] for w in range(len(speeds)))
        for assignment in itertools.product(range(len(speeds)), repeat=len(sizes))
    )
    assert makespan_lower_bound(sizes, speeds) <= best + 1e-9


def test_percentile_interpolates_and_handles_empty() -> None:
    assert percentile([1, 2, 3, 4, 5], 50) == 3.0
    assert percentile(list(range(101)), 99) == pytest.approx(99.0)
    assert percentile([], 99) == 0.0
