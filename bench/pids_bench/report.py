"""Render a peers run: markdown tables with ratios, JSON, and a PNG bar chart."""

from __future__ import annotations

from pathlib import Path
from statistics import median
from typing import Any

PIDS_ROWS = ("pids", "pids-batch")


def _f(x: float | None, digits: int = 0) -> str:
    return "–" if x is None else f"{x:,.{digits}f}"


def _rate(tp: dict[str, Any] | None) -> float | None:
    """The rate a drain is compared by: while every worker process was taking tasks, else (no such
    stretch, or a run recorded before it was measured) the whole drain's."""
    if not tp:
        return None
    return float(tp.get("all_busy_per_s") or tp["processed_per_s"])


def _tp(row: dict[str, Any], procs: int) -> float | None:
    return _rate(row.get("throughput", {}).get(str(procs)))


def _whole_drain_only(tp: dict[str, Any]) -> bool:
    return "all_busy_per_s" in tp and tp["all_busy_per_s"] is None


def _ratio(a: float | None, b: float | None) -> str:
    return "–" if not a or not b else f"{a / b:.2f}x"


def reference_ping(result: dict[str, Any], key: str = "p50") -> float | None:
    """The run's PING: the median of the one at the start and those before each row. Single
    PINGs scatter by about a fifth within minutes here, more than the rows differ."""
    pings = [result["ping_us"], *(row["ping_us"] for row in result["rows"].values() if "ping_us" in row)]
    values = [p[key] for p in pings if key in p]
    return median(values) if values else None


def markdown(result: dict[str, Any]) -> str:
    rows: dict[str, dict[str, Any]] = result["rows"]
    procs = result["processes"]
    ping = reference_ping(result)
    same_core = reference_ping(result, "same_core_p50")
    floor = rows.get("luafloor")
    lines = [
        f"{result['tasks']:,} no-op tasks per run; latency at {result['rate']:g} tasks/s offered with "
        f"{procs[0]} worker processes. *x PING*: against the run's PING p50, {ping:.0f} µs: the median of "
        "one Python client's PINGs at the start and before each row (*PING* column), with client and "
        "redis-server pinned to two vCPUs"
        + (f"; pinned to one vCPU the median is {same_core:.0f} µs (second figure of the column)" if same_core else "")
        + f". One worker alone: {result.get('alone_tasks', 0):,} tasks drained by one worker process, Redis to "
        "itself as for the PING. *processed/s*: while every worker process was taking tasks, from the first task "
        "of the process that started last to the last task of the one that ended first (\\*: no such stretch "
        "held a tenth of the tasks, so the whole drain's); the whole drains are in a table of their own below.",
        "",
        "| peer | delivery | enqueue/s | "
        + " | ".join(f"processed/s ({p} proc)" for p in procs)
        + f" | PING p50 µs | µs/task/worker ({procs[0]} proc) | x PING | one worker alone: µs/task | x PING | vs Lua floor "
        "| latency p50 / p99 ms | cmds/task | bytes/task |",
        "|---|---|---:|" + "---:|" * len(procs) + "---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in rows.items():
        if "error" in row:
            lines.append(
                f"| {name} | {row['mode']} | error: {row['error'].splitlines()[0][:100]} |" + " |" * (len(procs) + 10)
            )
            continue
        tp0 = row["throughput"].get(str(procs[0]), {})
        rate0 = _rate(tp0)
        us = procs[0] / rate0 * 1e6 if rate0 else None
        lat = row.get("latency")
        lat_s = f"{lat['p50_ms']:.1f} / {lat['p99_ms']:.1f}" if lat else "–"
        cells = [name, row["mode"], _f(tp0.get("enqueue_per_s"))]
        for p in procs:
            tp = row["throughput"].get(str(p), {})
            cells.append(
                _f(_rate(tp))
                + (" \\*" if _whole_drain_only(tp) else "")
                + (" (timeout)" if tp.get("timed_out") else "")
            )
        alone = _rate(row.get("alone"))
        alone_us = 1e6 / alone if alone else None
        row_ping = row.get("ping_us", {})
        ping_cell = _f(row_ping.get("p50")) + (
            f" / {row_ping['same_core_p50']:.0f}" if "same_core_p50" in row_ping else ""
        )
        cells += [
            ping_cell,
            _f(us),
            _ratio(us, ping),
            _f(alone_us),
            _ratio(alone_us, ping),
            _ratio(rate0, _tp(floor, procs[0]) if floor else None),
            lat_s,
            _f(tp0.get("commands_per_task"), 1),
            _f(tp0.get("bytes_per_task")),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    pids = [n for n in PIDS_ROWS if n in rows and "error" not in rows[n]]
    if pids:
        lines += [
            "",
            "Ratios of PIDS processed rates to each row (same run):",
            "",
            "| vs | " + " | ".join(f"{n} ({p} proc)" for n in pids for p in procs) + " |",
            "|---|" + "---:|" * (len(pids) * len(procs)),
        ]
        for name, row in rows.items():
            if name in pids or "error" in row:
                continue
            lines.append(
                f"| {name} | " + " | ".join(_ratio(_tp(rows[n], p), _tp(row, p)) for n in pids for p in procs) + " |"
            )
    measured = {n: r for n, r in rows.items() if "error" not in r}
    if any("all_busy_per_s" in tp for r in measured.values() for tp in r["throughput"].values()):
        lines += [
            "",
            "Whole drains: tasks / (last task ended - first task started), start-up of the processes "
            "included, tasks/s:",
            "",
            "| peer | " + " | ".join(f"{p} proc" for p in procs) + " |",
            "|---|" + "---:|" * len(procs),
        ]
        for name, row in measured.items():
            lines.append(
                f"| {name} | "
                + " | ".join(_f(row["throughput"].get(str(p), {}).get("processed_per_s")) for p in procs)
                + " |"
            )
    rec = {n: r["recovery"] for n, r in rows.items() if r.get("recovery")}
    if rec:
        cap = next(iter(rec.values()))["cap_s"]
        lines += [
            "",
            f"Recovery: two workers, kill -9 one with tasks in flight; wait capped at {cap:g} s.",
            "",
            "| peer | delivery | tasks | in flight at kill | lost (by cap) | duplicated | "
            "killed worker's tasks run again after | all done after |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for name, r in rec.items():
            rerun, done = (f"> {cap:g} s" if v is None else f"{v:.2f} s" for v in (r["rerun_s"], r["all_done_s"]))
            lines.append(
                f"| {name} | {rows[name]['mode']} | {r['tasks']} | {r['in_flight_at_kill']} | {r['lost']} | "
                f"{r['duplicated']} | {rerun} | {done} |"
            )
    return "\n".join(lines) + "\n"


def chart(result: dict[str, Any], path: Path) -> None:
    """Grouped bars: processed tasks/s per row, one bar per process count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {n: r for n, r in result["rows"].items() if "error" not in r}
    names = list(rows)
    procs = result["processes"]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(names) + 2), 4.5))
    width = 0.8 / len(procs)
    for k, p in enumerate(procs):
        vals = [_tp(rows[n], p) or 0.0 for n in names]
        bars = ax.bar([i + k * width for i in range(len(names))], vals, width, label=f"{p} worker processes")
        ax.bar_label(bars, labels=[f"{v:,.0f}" for v in vals], fontsize=7, rotation=90, padding=2)
    ax.set_xticks([i + width * (len(procs) - 1) / 2 for i in range(len(names))], names, rotation=30, ha="right")
    ax.set_ylabel("processed no-op tasks/s, every process busy (log)")
    ax.set_yscale("log")
    m = result.get("machine", {})
    ax.set_title(
        f"{result['tasks']:,} no-op tasks, one local Redis {m.get('redis', '')}; {m.get('cores', '?')} cores, "
        f"load average {m.get('loadavg_start', [0])[0]:.1f} at start",
        fontsize=9,
    )
    ax.legend(fontsize=8)
    ax.margins(y=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
