"""`pids bench placement --real` end to end on a tiny size: every task completes and every
policy row carries in-range metrics for the real run and the simulator. No timing assertions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

POLICIES = ["gravity", "round_robin"]


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("placement-real")
    cmd = [
        sys.executable,
        "-m",
        "pids",
        "bench",
        "placement",
        "--real",
        "--workload",
        "a-origin",
        "--workload",
        "c-lognormal",
        *[a for p in POLICIES for a in ("--policy", p)],
        "--policy",
        "lpt",
        "--tasks",
        "30",
        "--workers",
        "3",
        "--unit",
        "0.005",
        "--batch-timeout",
        "120",
        "--out",
        str(out),
        "--json",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout), out


def test_every_task_completes_under_every_policy(bench_run: tuple[dict, Path]) -> None:
    document, _ = bench_run
    real_runs = [r for r in document["runs"] if r["real"]]
    assert sorted((r["workload"], r["policy"]) for r in real_runs) == sorted(
        (w, p) for w in ("a-origin", "c-lognormal") for p in POLICIES
    )
    for r in real_runs:
        assert r["tasks"] == r["succeeded"] == 30


def test_each_row_has_real_and_simulated_metrics_in_range(bench_run: tuple[dict, Path]) -> None:
    document, _ = bench_run
    for workload, by_policy in document["results"].items():
        assert set(by_policy) == {*POLICIES, "lpt"}, workload
        assert by_policy["lpt"]["real"] == {}  # centralised reference: simulator only
        for policy, sides in by_policy.items():
            for side in ("sim",) if policy == "lpt" else ("real", "sim"):
                m = sides[side]
                assert 0.0 <= m["balance"] <= 1.0, (workload, policy, side)
                assert 0.0 < m["jain"] <= 1.0 + 1e-9
                assert m["max_mean"] >= 1.0 - 1e-9
                # real tasks sleep at least their true size; server times are whole milliseconds
                assert m["makespan_lb"] >= (0.9 if side == "real" else 1.0 - 1e-9)
            if policy != "lpt":
                real = sides["real"]
                assert real["makespan_s"] > 0 and real["lb_s"] > 0 and real["last_claim_s"] >= 0
                assert real["cycle_overhead_ms"] >= -1.0 and sides["sim"]["makespan_lb_overhead"] >= 1.0 - 1e-9


def test_writes_markdown_and_json(bench_run: tuple[dict, Path]) -> None:
    document, out = bench_run
    assert json.loads((out / "real.json").read_text())["config"] == document["config"]
    md = (out / "real.md").read_text()
    assert "#### a-origin" in md and "#### c-lognormal" in md and "| gravity |" in md and "lpt (ref, sim only)" in md
