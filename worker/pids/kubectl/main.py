"""`kubectl pids`: a PidsTask's results, tracebacks and retries, a cluster's workers, new tasks,
all through the Kubernetes API server (kubectl finds this as the `kubectl-pids` executable)."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from typing import Any

from rich.console import Console

from pids_operator import meta

from .. import __version__
from ..cli import json_arg
from ..errors import PidsError, TaskArgumentsError, TaskTimeout
from ..functions import check_function
from ..task import TaskState
from . import top, views
from .access import TaskRef, cluster_client, pids_task, task_ids
from .kubectl import AccessDenied, Kubectl

TERMINAL_PHASES = ("Succeeded", "Failed")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        kubectl = Kubectl(namespace=args.namespace or "", context=args.context, kubeconfig=args.kubeconfig).resolved()
        return int(args.run(kubectl, args))
    except PidsError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}", highlight=False)
        return 2
    except KeyboardInterrupt:
        return 130


def connection_options(parser: argparse.ArgumentParser, default: Any = None) -> argparse.ArgumentParser:
    parser.add_argument("-n", "--namespace", default=default, help="namespace (default: the kubeconfig context's)")
    parser.add_argument("--context", default=default, help="kubeconfig context")
    parser.add_argument("--kubeconfig", default=default, help="kubeconfig file")
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = connection_options(
        argparse.ArgumentParser(
            prog="kubectl pids", description="PIDS tasks and clusters, through the Kubernetes API server"
        )
    )
    # also after the subcommand, without overwriting what was given before it
    sub_connection = connection_options(argparse.ArgumentParser(add_help=False), default=argparse.SUPPRESS)
    parser.add_argument("--version", action="version", version=f"kubectl-pids {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    r = sub.add_parser("results", parents=[sub_connection], help="every item's result or error, in item order")
    r.add_argument("task", help="PidsTask name")
    r.add_argument("-o", "--output", choices=views.OUTPUTS, default="table")
    r.set_defaults(run=run_results)

    t = sub.add_parser("top", parents=[sub_connection], help="a cluster's workers (load, slots, claims/s) and queue")
    t.add_argument("cluster", help="PidsCluster name")
    t.add_argument("-o", "--output", choices=("table", "json"), default="table")
    t.add_argument("--interval", type=float, default=1.0, help="seconds over which claims/s is measured")
    t.set_defaults(run=run_top)

    s = sub.add_parser("submit", parents=[sub_connection], help="create a PidsTask calling FUNCTION(ARGS...)")
    s.add_argument("cluster", help="PidsCluster name")
    s.add_argument("function", help="module:callable, in one of the cluster's allowedModules")
    s.add_argument("args", nargs="*", help="positional arguments, each parsed as JSON (plain words stay strings)")
    s.add_argument("--kwargs", help="keyword arguments, a JSON object")
    s.add_argument(
        "--items", help="a batch instead of one call: a JSON list of argument lists or {args, kwargs, weight, position}"
    )
    s.add_argument("--name", help="the PidsTask's name (default: generated from the function's)")
    s.add_argument("--weight", type=float, help="expected cost of each call")
    s.add_argument("--position", help='where the data is, "zone/node"')
    s.add_argument("--priority", type=int)
    s.add_argument("--max-attempts", type=int)
    s.add_argument("--timeout", type=float, help="seconds per attempt")
    s.add_argument("--wait", type=float, metavar="SECONDS", help="wait until it finished, then print its results")
    s.add_argument("-o", "--output", choices=views.OUTPUTS, default="table", help="how --wait prints the results")
    s.set_defaults(run=run_submit)

    y = sub.add_parser(
        "retry", parents=[sub_connection], help="send a PidsTask's dead-lettered items back to the queue"
    )
    y.add_argument("task", help="PidsTask name")
    y.add_argument("--attempts", type=int, help="more attempts each item gets (default: the PidsTask's maxAttempts)")
    y.set_defaults(run=run_retry)

    d = sub.add_parser("describe", parents=[sub_connection], help="which pod ran each item, attempts, tracebacks")
    d.add_argument("task", help="PidsTask name")
    d.add_argument("--max-tracebacks", type=int, default=10)
    d.set_defaults(run=run_describe)
    return parser


def task_items(kubectl: Kubectl, name: str, with_results: bool = True) -> tuple[TaskRef, list[views.Item]]:
    """The PidsTask and its items, read from its cluster's Redis."""
    task = pids_task(kubectl, name)
    with cluster_client(kubectl, task.cluster) as client:
        ids = task_ids(client, task)
        results = client.results(ids) if with_results else [None] * len(ids)
        return task, views.items(ids, client.task_infos(ids), results)


def print_results(name: str, rows: list[views.Item], output: str) -> None:
    if output == "json":
        print(views.results_json(rows))
    elif output == "csv":
        sys.stdout.write(views.results_csv(rows))
    else:
        Console().print(views.results_table(f"PidsTask {name}", rows))


def run_results(kubectl: Kubectl, args: argparse.Namespace) -> int:
    _, rows = task_items(kubectl, args.task)
    print_results(args.task, rows, args.output)
    return 0


def run_top(kubectl: Kubectl, args: argparse.Namespace) -> int:
    body = kubectl.get("pidscluster", args.cluster)
    with cluster_client(kubectl, args.cluster) as client:
        queue, rows = top.read(client, kubectl, body, max(0.1, args.interval))
    if args.output == "json":
        print(views.top_json(args.cluster, queue, rows))
    else:
        Console().print(views.top_table(args.cluster, queue, rows))
    return 0


def task_manifest(args: argparse.Namespace) -> dict[str, Any]:
    """The PidsTask `submit` creates; options left out take the CRD's defaults."""
    check_function(args.function)
    spec: dict[str, Any] = {"clusterRef": {"name": args.cluster}, "function": args.function}
    if args.items is not None:
        if args.args or args.kwargs:
            raise TaskArgumentsError("--items makes a batch: give the arguments in its items, not as ARGS or --kwargs")
        spec["items"] = _json_option("--items", args.items, list)
    else:
        spec["args"] = [json_arg(a, f"argument {i + 1}") for i, a in enumerate(args.args)]
        if args.kwargs:
            spec["kwargs"] = _json_option("--kwargs", args.kwargs, dict)
    for option, field in (
        ("weight", "weight"),
        ("position", "position"),
        ("priority", "priority"),
        ("max_attempts", "maxAttempts"),
        ("timeout", "timeoutSeconds"),
    ):
        if getattr(args, option) is not None:
            spec[field] = getattr(args, option)
    callable_name = args.function.rpartition(":")[2]
    generated = re.sub(r"[^a-z0-9]+", "-", callable_name.lower()).strip("-")[:40] or "task"
    metadata = {"name": args.name} if args.name else {"generateName": f"{generated}-"}
    return {"apiVersion": meta.API_VERSION, "kind": meta.TASK_KIND, "metadata": metadata, "spec": spec}


def _json_option(option: str, raw: str, kind: type) -> Any:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise TaskArgumentsError(f"{option} is not valid JSON: {exc}") from None
    if not isinstance(value, kind):
        raise TaskArgumentsError(f"{option} must be a JSON {'list' if kind is list else 'object'}, got {raw!r}")
    return value


def run_submit(kubectl: Kubectl, args: argparse.Namespace) -> int:
    created = kubectl.create(task_manifest(args))
    name = created["metadata"]["name"]
    print(f"pidstask.{meta.GROUP}/{name} created")
    if args.wait is None:
        return 0
    deadline = time.monotonic() + args.wait
    while (phase := (kubectl.get("pidstask", name).get("status") or {}).get("phase")) not in TERMINAL_PHASES:
        if time.monotonic() > deadline:
            raise TaskTimeout(f"PidsTask {name!r} not finished after {args.wait:g} s (phase {phase or 'none yet'})")
        time.sleep(1.0)
    _, rows = task_items(kubectl, name)
    print_results(name, rows, args.output)
    return 0 if phase == "Succeeded" else 1


def run_retry(kubectl: Kubectl, args: argparse.Namespace) -> int:
    task = pids_task(kubectl, args.task)
    attempts = args.attempts if args.attempts is not None else int(task.spec.get("maxAttempts", 3))
    with cluster_client(kubectl, task.cluster) as client:
        dead = [i for i in client.task_infos(task_ids(client, task)) if i is not None and i.state is TaskState.FAILED]
        if not dead:
            print(f"PidsTask {args.task} has no dead-lettered items")
            return 0
        outcomes = client.retry(dead, attempts)
    requeued = [task_id for task_id, outcome in outcomes.items() if outcome == "requeued"]
    for task_id, outcome in outcomes.items():
        if outcome != "requeued":
            print(f"{task_id}: left alone ({outcome})")
    if not requeued:
        return 1
    print(
        f"{len(requeued)} dead-lettered item(s) of PidsTask {args.task} back in the queue, "
        f"with {attempts} more attempt(s) each"
    )
    try:  # the operator follows a PidsTask again once its phase is not final
        kubectl.patch_status(
            "pidstask",
            args.task,
            {
                "phase": "Running",
                "reason": "Retried",
                "finishedAt": None,
                "message": f"{len(requeued)} item(s) sent back by kubectl pids retry",
            },
        )
    except AccessDenied as exc:
        Console(stderr=True).print(
            f"[yellow]warning:[/yellow] the items run again, but the PidsTask's status stays "
            f"{task.status.get('phase')}: {exc}",
            highlight=False,
        )
    return 0


def run_describe(kubectl: Kubectl, args: argparse.Namespace) -> int:
    task, rows = task_items(kubectl, args.task, with_results=False)
    Console().print(views.describe(task.name, task.body, rows, args.max_tracebacks))
    return 0
