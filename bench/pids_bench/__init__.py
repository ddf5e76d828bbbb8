"""The research around PIDS: baseline placement rules, a discrete-event simulator, seeded
workloads and the benchmarks `pids bench placement|peers|scale` (see BENCHMARKS.md).

Not part of the shipped `pids` package: installed beside it with `pip install -e ./bench`.
"""
