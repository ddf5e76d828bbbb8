"""`pids bench peers` end to end on a tiny size: correctness of the harness, no timing assertions.

Floors and PIDS run in this interpreter. Set PIDS_BENCH_PEER_VENVS=1 to also
run one real peer (huey), whose venv is created on first use (needs PyPI).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from pids.embedded import EmbeddedRedis
from pids_bench.peerdefs import PEERS, Launch, this_python
from pids_bench.peers import find_peers_dir, ping_us
from pids_bench.runner import Workers

pytestmark = pytest.mark.integration

ROWS = ["luafloor", "streams", "pids", "pids-batch"]
if os.environ.get("PIDS_BENCH_PEER_VENVS") == "1":
    ROWS.append("huey")


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str, Path]:
    out = tmp_path_factory.mktemp("peers")
    cmd = [
        sys.executable,
        "-m",
        "pids",
        "bench",
        "peers",
        "--tasks",
        "200",
        "--peers",
        ",".join(ROWS),
        "--processes",
        "2",
        "--alone-tasks",
        "100",
        "--latency-tasks",
        "40",
        "--rate",
        "100",
        "--recovery-tasks",
        "40",
        "--recovery-sleep",
        "0.2",
        "--kill-after",
        "0.3",
        "--recovery-cap",
        "20",
        "--phase-timeout",
        "120",
        "--out",
        str(out),
        "--json",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout), (out / "peers.md").read_text(), out


def test_every_row_measures_throughput_latency_and_traffic(bench_run: tuple[dict, str, Path]) -> None:
    result, _, _ = bench_run
    assert list(result["rows"]) == ROWS
    for name, row in result["rows"].items():
        assert "error" not in row, f"{name}: {row.get('error')}"
        tp = row["throughput"]["2"]
        assert tp["done"] == 200 and not tp["timed_out"]
        assert tp["processed_per_s"] > 0 and tp["enqueue_per_s"] > 0
        assert tp["all_busy_per_s"] is None or tp["all_busy_per_s"] > 0  # None: the 2nd process came too late
        assert tp["commands_per_task"] > 0 and tp["bytes_per_task"] > 0
        ping = row["ping_us"]  # the PING the row is compared with: client and server on two vCPUs, and on one
        assert ping["p99"] >= ping["p50"] > 0
        if len(os.sched_getaffinity(0)) > 1:
            assert ping["same_core_p99"] >= ping["same_core_p50"] > 0
        alone = row["alone"]  # one worker process, Redis to itself
        assert alone["processes"] == 1 and alone["done"] == 100 and alone["processed_per_s"] > 0
        assert alone["all_busy_per_s"] == pytest.approx(alone["processed_per_s"])  # one process: the whole drain
        assert row["latency"]["done"] == 40 and row["latency"]["p99_ms"] >= row["latency"]["p50_ms"] > 0
    assert result["ping_us"]["p50"] > 0


def test_pids_recovers_killed_workers_tasks_without_loss(bench_run: tuple[dict, str, Path]) -> None:
    result, _, _ = bench_run
    assert "recovery" not in result["rows"]["luafloor"]  # floors are not queues
    for name in ("pids", "pids-batch"):
        rec = result["rows"][name]["recovery"]
        assert rec["in_flight_at_kill"] >= 1
        assert rec["lost"] == 0
        assert rec["duplicated"] <= rec["in_flight_at_kill"]
        assert rec["rerun_s"] is not None


def test_writes_markdown_with_ratio_rows_json_and_chart(bench_run: tuple[dict, str, Path]) -> None:
    result, md, out = bench_run
    for name in ROWS:
        assert f"| {name} |" in md
    assert "Ratios of PIDS processed rates" in md and "| luafloor | " in md.split("Ratios of PIDS")[1]
    assert "Recovery:" in md
    whole = md.split("Whole drains:")[1].split("Recovery:")[0]
    for name, row in result["rows"].items():
        assert f"| {name} | {row['throughput']['2']['processed_per_s']:,.0f} |" in whole
    pids_row = next(line for line in md.splitlines() if line.startswith("| pids |"))
    alone_us = 1e6 / result["rows"]["pids"]["alone"]["processed_per_s"]
    pings = [result["ping_us"]["p50"], *(row["ping_us"]["p50"] for row in result["rows"].values())]
    run_ping = statistics.median(pings)  # the run's PING: the one at the start and those before each row
    assert f"{run_ping:.0f} µs: the median" in md
    assert f"| {alone_us:,.0f} | {alone_us / run_ping:.2f}x |" in pids_row
    assert json.loads((out / "peers.json").read_text())["rows"].keys() == result["rows"].keys()
    assert (out / "peers.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_peer_scripts_fail_with_a_clear_message(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pids_bench", "peers", "--peers", "luafloor", "--peers-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "peer scripts not found" in proc.stderr


def test_scale_sweep_reports_per_task_costs_for_each_worker_count(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "pids",
        "bench",
        "scale",
        "--workers",
        "2,6",
        "--tasks",
        "40",
        "--rate",
        "100",
        "--idle",
        "0.5",
        "--timeout",
        "90",
        "--out",
        str(tmp_path),
        "--json",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert [row["W"] for row in result["rows"]] == [2, 6]
    for row in result["rows"]:
        assert row["done"] == 40 and not row["timed_out"]
        assert row["commands_per_task"] > 0 and row["bytes_per_task"] > 0 and row["worker_cpu_us_per_task"] > 0
    assert "| 6 |" in (tmp_path / "scale.md").read_text() or "| 6 (" in (tmp_path / "scale.md").read_text()
    assert (tmp_path / "scale.png").read_bytes()[:4] == b"\x89PNG"


def test_workers_and_server_run_in_their_own_process_groups_in_the_callers_session(tmp_path: Path) -> None:
    """Each is stopped with killpg, yet shares the harness's session: under the kernel's autogroup
    scheduling a session is a scheduling group of its own, and peers in separate groups were
    slowed by their round trips unequally (the Lua floor lost up to a third, PIDS nothing)."""
    with EmbeddedRedis() as server:
        assert server.pid is not None
        assert os.getpgid(server.pid) == server.pid and os.getsid(server.pid) == os.getsid(0)
        workers = Workers(PEERS["luafloor"], Launch(this_python(), find_peers_dir(None), server.url), tmp_path)
        try:
            workers.start_pool(2)
            pids = [p.pid for p in workers.procs]
            assert len(pids) == 2
            assert all(os.getpgid(pid) == pid and os.getsid(pid) == os.getsid(0) for pid in pids)
        finally:
            workers.stop_all()
        assert all(p.poll() is not None for p in workers.procs)


def test_ping_pins_client_and_server_only_while_it_measures() -> None:
    """The PING is measured with client and redis-server on two vCPUs and on one; the workers started
    afterwards must not inherit that pinning, nor the server keep it."""
    with EmbeddedRedis() as server:
        assert server.pid is not None
        before = os.sched_getaffinity(0), os.sched_getaffinity(server.pid)
        ping = ping_us(server.client(), server.pid, n=200)
        assert (os.sched_getaffinity(0), os.sched_getaffinity(server.pid)) == before
    assert ping["p99"] >= ping["p50"] > 0
    if len(before[0]) > 1:
        assert ping["same_core_p99"] >= ping["same_core_p50"] > 0


def test_cycle_ab_compares_two_trees_redis_cost_per_task_pair_by_pair(capsys: pytest.CaptureFixture[str]) -> None:
    from pids_bench import cycle_ab

    tree = Path(__file__).resolve().parents[2]  # the same tree on both sides: each side runs its own drain
    cycle_ab.main([str(tree), str(tree), "--pairs", "2", "--tasks", "2000", "--batch", "50"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines[:2]] == ["pair 1", "pair 2"]
    assert lines[-1].startswith("median old/new ") and float(lines[-1].split()[2]) > 0


def test_cycle_ab_drains_single_submits_with_snapshots_between_cycles(capsys: pytest.CaptureFixture[str]) -> None:
    """The `pids` row's shape: tasks submitted one by one, claimed one a cycle, a snapshot read
    every few cycles; every task is completed (the child checks the succeeded count)."""
    from pids_bench import cycle_ab

    tree = Path(__file__).resolve().parents[2]
    result = cycle_ab.drain(tree, 1000, cycle_ab.Mode(batch=1, single=True, snapshot_every=3))
    assert result["redis_cpu_us_per_task"] > 0
    cycle_ab.main(
        [str(tree), str(tree), "--pairs", "1", "--tasks", "1000", "--batch", "1", "--single", "--snapshot-every", "3"]
    )
    assert capsys.readouterr().out.splitlines()[-1].startswith("median old/new ")


@pytest.mark.skipif(not shutil.which("valgrind"), reason="counting instructions needs valgrind")
def test_cycle_ab_counts_the_cycles_alone_without_the_fill() -> None:
    """--cycles-only zeroes callgrind's counters once the queue is filled: what is left is less
    than the whole drain's count, and still the cycles' own work (more than the server idles)."""
    from pids_bench import cycle_ab

    tree = Path(__file__).resolve().parents[2]
    whole = cycle_ab.redis_instructions(tree, 1000, cycle_ab.Mode(batch=50))
    cycles = cycle_ab.redis_instructions(tree, 1000, cycle_ab.Mode(batch=50, cycles_only=True))
    assert 1000 * 10_000 < cycles < whole


def test_cycle_ab_refuses_cycles_only_without_counting_instructions() -> None:
    from pids_bench import cycle_ab

    with pytest.raises(SystemExit):
        cycle_ab.main(["old", "new", "--cycles-only"])
