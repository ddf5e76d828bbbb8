"""The `pids` command: worker, submit, status, result, demo, bench."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from typing import Any

import redis
from rich.console import Console

from . import __version__
from .errors import PidsError

BENCHMARKS = ("placement", "peers", "scale", "throughput")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except PidsError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        return 2
    except redis.AuthenticationError as exc:
        Console(stderr=True).print(f"[red]error:[/red] Redis refused the password: {exc}", highlight=False)
        return 2
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        url = getattr(args, "redis_url", None) or os.environ.get("PIDS_REDIS_URL", "")
        Console(stderr=True).print(f"[red]error:[/red] Redis unreachable at {_without_password(url)}: {exc}", highlight=False)
        return 2
    except KeyboardInterrupt:
        return 130


def _without_password(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}" if rest else url


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pids", description="Load- and locality-aware distributed task queue on Redis")
    parser.add_argument("--version", action="version", version=f"pids {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def connection_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--redis-url", default=os.environ.get("PIDS_REDIS_URL", "redis://127.0.0.1:6379/0"),
                       help="Redis URL (env PIDS_REDIS_URL); the password may come from PIDS_REDIS_PASSWORD")
        p.add_argument("--cluster", default=os.environ.get("PIDS_CLUSTER", "default"), help="cluster name (env PIDS_CLUSTER)")

    w = sub.add_parser("worker", help="run a worker (settings from PIDS_* env, overridden by flags)")
    w.add_argument("--redis-url", default=None)
    w.add_argument("--cluster", default=None)
    w.add_argument("--worker-id", default=None)
    w.add_argument("--concurrency", type=int, default=None)
    w.add_argument("--prefetch", type=int, default=None, help="extra tasks claimed ahead (batched claims)")
    w.add_argument("--speed", type=float, default=None)
    w.add_argument("--position", default=None, help='"zone/node" where this worker runs')
    w.add_argument("--allowed-modules", default=None, help="comma-separated modules tasks may come from")
    w.add_argument("--policy", default=None, help="placement policy (default gravity)")
    w.add_argument("--G", dest="G", type=float, default=None)
    w.add_argument("--distance-offset", type=float, default=None)
    w.add_argument("--window", type=int, default=None, help="pending tasks each claim cycle plans over")
    w.add_argument("--lease-seconds", type=float, default=None)
    w.add_argument("--heartbeat-seconds", type=float, default=None)
    w.add_argument("--drain-seconds", type=float, default=None)
    w.add_argument("--health-port", type=int, default=None)
    w.add_argument("--log-level", default=os.environ.get("PIDS_LOG_LEVEL", "INFO"))
    w.set_defaults(run=run_worker)

    s = sub.add_parser("submit", help="submit one task")
    connection_options(s)
    s.add_argument("fn", help="module:callable")
    s.add_argument("args", nargs="*", help="positional arguments, each parsed as JSON (plain words stay strings)")
    s.add_argument("--kwargs", default="{}", help="keyword arguments as a JSON object")
    s.add_argument("--task-id", default=None)
    s.add_argument("--weight", type=float, default=1.0)
    s.add_argument("--position", default="")
    s.add_argument("--priority", type=int, default=0)
    s.add_argument("--max-attempts", type=int, default=3)
    s.add_argument("--timeout", type=float, default=None)
    s.add_argument("--wait", type=float, default=None, metavar="SECONDS", help="wait for the result and print it")
    s.set_defaults(run=run_submit)

    st = sub.add_parser("status", help="a task's status, or the cluster's when no id is given")
    connection_options(st)
    st.add_argument("task_id", nargs="?")
    st.add_argument("--json", action="store_true")
    st.set_defaults(run=run_status)

    r = sub.add_parser("result", help="wait for a task's result and print it as JSON")
    connection_options(r)
    r.add_argument("task_id")
    r.add_argument("--timeout", type=float, default=None)
    r.set_defaults(run=run_result)

    d = sub.add_parser("demo", help="embedded Redis + local workers + mixed tasks, then a balance table")
    d.add_argument("--workers", type=int, default=5)
    d.add_argument("--tasks", type=int, default=50)
    d.add_argument("--redis-url", default=None, help="use this Redis instead of starting one")
    d.add_argument("--policy", default="gravity")
    d.add_argument("--seed", type=int, default=1)
    d.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    d.set_defaults(run=lambda a: importlib.import_module("pids.demo").run(a))

    b = sub.add_parser("bench", help="benchmarks: " + ", ".join(BENCHMARKS))
    bench_sub = b.add_subparsers(dest="benchmark", required=True)
    for name in BENCHMARKS:
        try:
            module = importlib.import_module(f"pids.bench.{name}")
        except ImportError:
            continue
        p = bench_sub.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else None)
        module.add_arguments(p)
        p.set_defaults(run=module.run)
    return parser


def run_worker(args: argparse.Namespace) -> int:
    from .settings import WorkerSettings
    from .worker import Worker

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides: dict[str, Any] = {
        "redis_url": args.redis_url, "cluster": args.cluster, "worker_id": args.worker_id,
        "concurrency": args.concurrency, "prefetch": args.prefetch, "speed": args.speed, "position": args.position,
        "allowed_modules": args.allowed_modules, "policy": args.policy, "G": args.G,
        "distance_offset": args.distance_offset, "window": args.window, "lease_seconds": args.lease_seconds,
        "heartbeat_seconds": args.heartbeat_seconds, "drain_seconds": args.drain_seconds,
        "health_port": args.health_port,
    }
    return Worker(WorkerSettings.from_env(**overrides)).run()


def _client(args: argparse.Namespace) -> Any:
    from .client import Client

    return Client(args.redis_url, args.cluster, password=os.environ.get("PIDS_REDIS_PASSWORD"))


def _json_arg(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def run_submit(args: argparse.Namespace) -> int:
    from .errors import TaskArgumentsError

    try:
        kwargs = json.loads(args.kwargs)
    except json.JSONDecodeError as exc:
        raise TaskArgumentsError(f"--kwargs is not valid JSON: {exc}") from None
    handle = _client(args).submit(args.fn, *[_json_arg(a) for a in args.args], kwargs=kwargs, task_id=args.task_id,
                                  weight=args.weight, position=args.position, priority=args.priority,
                                  max_attempts=args.max_attempts, timeout=args.timeout)
    print(handle.id)
    if args.wait is not None:
        print(json.dumps(handle.result(timeout=args.wait)))
    return 0


def run_status(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.task_id:
        info = client.task_info(args.task_id)
        data = {**info.__dict__, "state": info.state.value}
        if args.json:
            print(json.dumps(data))
        else:
            for key, value in data.items():
                print(f"{key:>16}: {value}")
        return 0
    stats = client.cluster_stats()
    settings = client.worker_settings()
    if args.json:
        workers = [{**w.__dict__, "settings": settings.get(w.id)} for w in stats.workers]
        print(json.dumps({**{k: v for k, v in stats.__dict__.items() if k != "workers"},
                          "balance_score": stats.balance_score, "workers": workers}))
        return 0
    from .report import cluster_table, settings_table

    console = Console()
    console.print(cluster_table(stats))
    if settings:
        console.print(settings_table(settings))
    return 0


def run_result(args: argparse.Namespace) -> int:
    print(json.dumps(_client(args).result(args.task_id, timeout=args.timeout)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
