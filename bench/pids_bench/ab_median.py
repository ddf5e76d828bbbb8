"""The A/B of `pids bench peers --baseline` repeated: the median (and range) over runs of each
row's ratio to its `@base` row, for throughput and for CPU per task, as a markdown table.
One run on a 2-core machine swings by ±20%; the median of several is what BENCHMARKS.md quotes.

    python3 -m pids_bench.ab_median RUN_DIR [RUN_DIR ...]   # each with the peers.json of one run
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

MEASURES = {  # name -> (field of a throughput entry, True when higher is better)
    "processed/s": ("all_busy_per_s", True),
    "CPU µs/task (worker + Redis)": ("cpu_us_per_task", False),
}


def ratios(run: dict[str, Any], row: str, processes: str, field: str, higher_better: bool) -> float | None:
    """New over base (higher better) or base over new (lower better): above 1 means the new is better."""
    new, base = (entry(run["rows"].get(name, {}), processes) for name in (row, f"{row}@base"))
    if not new or not base:
        return None
    a, b = value(new, field), value(base, field)
    return a / b if higher_better else b / a


def entry(row: dict[str, Any], processes: str) -> dict[str, Any] | None:
    """A row's measurement with this many processes, or "alone" (one worker, Redis to itself)."""
    found = row.get("alone") if processes == "alone" else row.get("throughput", {}).get(processes)
    return found if isinstance(found, dict) else None


def value(measured: dict[str, Any], field: str) -> float:
    if field == "all_busy_per_s" and measured.get(field) is None:  # no stretch with all busy: the whole drain
        return float(measured["processed_per_s"])
    if field == "cpu_us_per_task":
        return float(measured["worker_cpu_us_per_task"]) + float(measured["redis_cpu_us_per_task"])
    return float(measured[field])


def table(runs: list[dict[str, Any]]) -> str:
    rows = [name for name in runs[0]["rows"] if not name.endswith("@base")]
    processes = [*(str(p) for p in runs[0]["processes"]), "alone"]
    head = [f"{row} ({p} proc)" if p != "alone" else f"{row} (one worker alone)" for row in rows for p in processes]
    lines = [f"| median of {len(runs)} runs (min-max) | " + " | ".join(head) + " |", "|---|" + "---:|" * len(head)]
    for measure, (field, higher_better) in MEASURES.items():
        cells = []
        for row in rows:
            for p in processes:
                found = [r for run in runs if (r := ratios(run, row, p, field, higher_better)) is not None]
                cells.append(f"{statistics.median(found):.2f}x ({min(found):.2f}-{max(found):.2f})" if found else "–")
        lines.append(f"| {measure} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    runs = [json.loads((Path(d) / "peers.json").read_text()) for d in argv]
    print(table(runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
