"""The `pids` command: worker, submit, status, result, demo, bench."""

from __future__ import annotations

import argparse
import functools
import importlib
import importlib.util
import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import fields
from typing import TYPE_CHECKING, Any

import redis
from rich.console import Console
from rich.text import Text

from . import __version__
from .connection import without_password
from .errors import ConfigError, PidsError
from .limits import decode_json
from .settings import WorkerSettings

if TYPE_CHECKING:
    from .placement import Placement


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), argv)


def run_command(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parse `argv` and run the command it names (its `run` default), errors as one line and exit code 2."""
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except PidsError as exc:
        return _error(str(exc))
    except redis.AuthenticationError as exc:
        return _error(f"Redis refused the password: {exc}")
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        url = getattr(args, "redis_url", None) or os.environ.get("PIDS_REDIS_URL", "")
        return _error(f"Redis unreachable at {without_password(url)}: {exc}")
    except KeyboardInterrupt:
        return 130


def _error(message: str) -> int:
    """Print an error (as plain text: a value in it may look like markup) and give exit code 2."""
    Console(stderr=True).print(Text.assemble(("error:", "red"), " ", message), highlight=False, soft_wrap=True)
    return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pids", description="Load- and locality-aware distributed task queue on Redis"
    )
    parser.add_argument("--version", action="version", version=f"pids {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def connection_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--redis-url",
            default=os.environ.get("PIDS_REDIS_URL", "redis://127.0.0.1:6379/0"),
            help="Redis URL (env PIDS_REDIS_URL); the password may come from PIDS_REDIS_PASSWORD",
        )
        p.add_argument(
            "--cluster", default=os.environ.get("PIDS_CLUSTER", "default"), help="cluster name (env PIDS_CLUSTER)"
        )

    w = sub.add_parser("worker", help="run a worker (settings from PIDS_* env, overridden by flags)")
    add_worker_arguments(w)
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
    d.add_argument("--seed", type=int, default=1)
    d.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    d.set_defaults(run=lambda a: importlib.import_module("pids.demo").run(a))

    b = sub.add_parser(
        "bench",
        help="benchmarks of the pids-bench package (see BENCHMARKS.md)",
        description="Run a benchmark of the pids-bench package; without a NAME, list them.",
    )
    b.add_argument("benchmark", nargs="?", metavar="NAME")
    b.add_argument("options", nargs=argparse.REMAINDER, help="the benchmark's own options (pids bench NAME --help)")
    b.set_defaults(run=run_bench)
    return parser


SETTING_HELP = {
    "prefetch": "extra tasks claimed ahead of free slots (batched claims)",
    "position": '"zone/node" where this worker runs',
    "allowed_modules": "comma-separated modules tasks may come from",
    "policy": "placement policy (gravity)",
    "window": "pending tasks each claim cycle plans over",
    "pool": "process (default: hard timeouts, contained crashes) or thread slots",
    "health_host": "address the health server listens on (0.0.0.0 in a pod)",
    "allow_evicting_redis": "run on a Redis whose maxmemory-policy may drop keys",
}


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    """A flag per worker setting (--lease-seconds for lease_seconds...), default None: unset flags
    leave the PIDS_* environment and the settings' defaults in charge."""
    from .settings import WorkerSettings, setting_type

    for f in fields(WorkerSettings):
        if f.name == "redis_password":  # from the environment only (a Secret), never a flag
            continue
        flag = "--G" if f.name == "G" else "--" + f.name.replace("_", "-")
        kind = setting_type(f.name)
        parser.add_argument(
            flag,
            dest=f.name,
            default=None,
            help=SETTING_HELP.get(f.name),
            type=functools.partial(_bool_flag, f.name) if kind is bool else kind,
        )
    parser.add_argument("--log-level", default=os.environ.get("PIDS_LOG_LEVEL", "INFO"))


def _bool_flag(name: str, raw: str) -> bool:
    from .settings import parse_setting

    try:
        return bool(parse_setting(name, raw))
    except PidsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def worker_settings(args: argparse.Namespace) -> WorkerSettings:
    """Settings from PIDS_* variables, overridden by the flags given."""
    from .settings import WorkerSettings

    return WorkerSettings.from_env(**{f.name: getattr(args, f.name, None) for f in fields(WorkerSettings)})


def run_worker(args: argparse.Namespace, policy_for: Callable[[WorkerSettings], Placement] | None = None) -> int:
    """Run a worker until it leaves; `policy_for` builds its policy (default: the worker's own, gravity)."""
    from .worker import Worker

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = worker_settings(args)
    return Worker(settings, policy=None if policy_for is None else policy_for(settings)).run()


def run_bench(args: argparse.Namespace) -> int:
    """`pids bench NAME ...`: handed to the pids-bench package, which imports only the benchmark named."""
    if importlib.util.find_spec("pids_bench") is None:
        raise ConfigError(
            "pids bench needs the research package pids-bench, which is not installed: "
            "run `pip install -e ./bench` in the repository (make test-fast installs it)"
        )
    return int(importlib.import_module("pids_bench.cli").run(args.benchmark, args.options))


def _client(args: argparse.Namespace) -> Any:
    from .client import Client

    return Client(args.redis_url, args.cluster)  # the password from $PIDS_REDIS_PASSWORD


def json_arg(raw: str, field: str = "argument") -> Any:
    """A command-line value as JSON; a list or object must be valid JSON within the limits,
    other text that is not JSON stays a plain string."""
    if raw.lstrip().startswith(("[", "{")):
        return decode_json(raw, field)
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def run_submit(args: argparse.Namespace) -> int:
    positional = [json_arg(a, f"argument {i + 1}") for i, a in enumerate(args.args)]
    handle = _client(args).submit(
        args.fn,
        *positional,
        kwargs=decode_json(args.kwargs, "--kwargs"),
        task_id=args.task_id,
        weight=args.weight,
        position=args.position,
        priority=args.priority,
        max_attempts=args.max_attempts,
        timeout=args.timeout,
    )
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
    from .redis_info import inspect

    stats = client.cluster_stats()
    settings = client.worker_settings()
    report = inspect(client.redis)
    redis_view = {
        "persistence": report.persistence,
        "eviction_policy": report.maxmemory_policy,
        "maxmemory": report.maxmemory,
        "used_memory": report.used_memory,
        "role": report.role,
        "epoch": client.epoch(),
    }
    if args.json:
        print(
            json.dumps(
                {
                    **{k: v for k, v in stats.__dict__.items() if k != "workers"},
                    "balance_score": stats.balance_score,
                    "workers": [{**w.__dict__, "settings": settings.get(w.id)} for w in stats.workers],
                    "redis": redis_view,
                }
            )
        )
        return 0
    from .report import cluster_table, settings_table

    console = Console()
    console.print(cluster_table(stats))
    warning = (
        ""
        if report.persistent and not report.evicting
        else "  [red](tasks do not survive a restart)[/red]"
        if not report.persistent
        else "  [red](may evict tasks)[/red]"
    )
    console.print(f"{report.describe()}, epoch {redis_view['epoch'] or '-'}{warning}", highlight=False)
    if settings:
        console.print(settings_table(settings))
    return 0


def run_result(args: argparse.Namespace) -> int:
    print(json.dumps(_client(args).result(args.task_id, timeout=args.timeout)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
