"""`pids bench NAME ...` (or `python -m pids_bench NAME ...`): imports only the benchmark named."""

from __future__ import annotations

import importlib

from pids.errors import ConfigError

BENCHMARKS = {
    "placement": "placement quality of every policy on simulated workloads (--real: on worker processes too)",
    "peers": "PIDS next to the Redis task queues users would pick instead: rates, latency, recovery",
    "scale": "per-task cost of PIDS as the number of workers W grows",
    "soak": "Redis memory under an endless stream of tasks with retention (flat or not)",
}


def run(name: str | None, argv: list[str]) -> int:
    """Run benchmark `name` with its own options `argv`; without a name, list the benchmarks."""
    if name is None:
        for benchmark, what in BENCHMARKS.items():
            print(f"{benchmark:<10} {what}")
        return 0
    if name not in BENCHMARKS:
        raise ConfigError(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHMARKS)}")
    module = importlib.import_module(f"pids_bench.{name}")
    return int(module.main(argv, prog=f"pids bench {name}"))
