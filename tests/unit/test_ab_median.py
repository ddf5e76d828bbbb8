"""The repeated A/B's summary: per row and process count, the median ratio to the base row over
runs, higher meaning the new code is better for throughput and for CPU per task alike."""

from __future__ import annotations

from typing import Any

from pids_bench.ab_median import table
from pids_bench.peers import with_baseline_rows


def run(new_rate: float, base_rate: float, new_cpu: float, base_cpu: float) -> dict[str, Any]:
    def row(rate: float, cpu: float) -> dict[str, Any]:
        measured = {"all_busy_per_s": rate, "worker_cpu_us_per_task": cpu, "redis_cpu_us_per_task": 10.0}
        return {"throughput": {"2": measured}, "alone": measured}

    return {"processes": [2], "rows": {"pids": row(new_rate, new_cpu), "pids@base": row(base_rate, base_cpu)}}


def test_the_summary_is_the_median_ratio_to_the_base_row_with_its_range() -> None:
    runs = [run(90, 100, 90, 90), run(120, 100, 40, 90), run(100, 100, 90, 90)]
    lines = table(runs).splitlines()
    assert lines[0] == "| median of 3 runs (min-max) | pids (2 proc) | pids (one worker alone) |"
    assert lines[2] == "| processed/s | 1.00x (0.90-1.20) | 1.00x (0.90-1.20) |"
    assert lines[3] == "| CPU µs/task (worker + Redis) | 1.00x (1.00-2.00) | 1.00x (1.00-2.00) |"


def test_a_baseline_run_adds_the_base_rows_of_the_rows_asked_for_only() -> None:
    known = ["luafloor", "pids", "pids-batch", "pids@base", "pids-batch@base"]
    assert with_baseline_rows(["pids-batch"], known) == ["pids-batch", "pids-batch@base"]
    assert with_baseline_rows(["pids-batch@base", "pids-batch"], known) == ["pids-batch@base", "pids-batch"]
    assert with_baseline_rows(["luafloor"], known) == ["luafloor", "pids@base", "pids-batch@base"]
