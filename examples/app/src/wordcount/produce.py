"""The producer: submit documents to a PIDS cluster with Client.map, one batch per size and
shard (so each batch has one weight and one position), and check every result against the
counts the documents were built with. Exits 1 on any wrong or missing result.

In Kubernetes it runs as a Job (examples/app/producer-job.yaml) that takes PIDS_REDIS_URL and
PIDS_CLUSTER from the cluster's connection Secret `<cluster>-app`:
    python -m wordcount.produce --tasks 1000
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections import Counter, defaultdict

from pids.client import Client, TaskHandle
from pids.errors import PidsError

from .corpus import Document, design, documents, shard_of, summary

FUNCTION = "wordcount.tasks:count_words"


def submit(client: Client, docs: list[Document], run: str) -> list[tuple[Document, TaskHandle]]:
    groups: dict[tuple[int, str], list[Document]] = defaultdict(list)
    for doc in docs:
        groups[(doc.words, shard_of(doc))].append(doc)
    submitted = []
    for (words, shard), group in sorted(groups.items()):
        handles = client.map(
            FUNCTION,
            [d.as_arg() for d in group],
            batch_id=f"{run}-{words}-{shard}",
            weight=group[0].weight,
            position=shard,
        )
        submitted += list(zip(group, handles))
    return submitted


def check(client: Client, submitted: list[tuple[Document, TaskHandle]]) -> list[str]:
    """One line per document whose result is wrong or missing."""
    ids = [handle.id for _, handle in submitted]
    wrong = []
    for (doc, handle), info, result in zip(submitted, client.task_infos(ids), client.results(ids)):
        expected = {"doc": doc.id, **summary(design(doc))}
        if info is None or info.state.value != "succeeded":
            state = (
                "missing" if info is None else f"{info.state.value}: {info.error.splitlines()[0] if info.error else ''}"
            )
            wrong.append(f"{handle.id} ({doc.id}) {state}")
        elif result != expected:
            wrong.append(f"{handle.id} ({doc.id}) returned {result!r}, expected {expected!r}")
    return wrong


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wordcount.produce", description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for every result")
    parser.add_argument("--redis-url", default=os.environ.get("PIDS_REDIS_URL"), help="env PIDS_REDIS_URL")
    parser.add_argument("--cluster", default=os.environ.get("PIDS_CLUSTER"), help="env PIDS_CLUSTER")
    args = parser.parse_args(argv)
    if not args.redis_url or not args.cluster:
        parser.error("set PIDS_REDIS_URL and PIDS_CLUSTER (the url and cluster keys of the <cluster>-app Secret)")
    client = Client(args.redis_url, cluster=args.cluster)
    started = time.monotonic()
    try:
        submitted = submit(client, documents(args.tasks, args.seed), f"wordcount-{uuid.uuid4().hex[:8]}")
        print(f"submitted {len(submitted)} documents in {time.monotonic() - started:.1f} s", flush=True)
        client.wait([handle for _, handle in submitted], timeout=args.timeout)
        wrong = check(client, submitted)
    except PidsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    pods = Counter(info.worker for info in client.task_infos([h.id for _, h in submitted]) if info is not None)
    print(
        f"{len(submitted) - len(wrong)}/{len(submitted)} results correct in {time.monotonic() - started:.1f} s; "
        f"by pod: {', '.join(f'{pod}={n}' for pod, n in sorted(pods.items()))}"
    )
    for line in wrong[:20]:
        print(f"WRONG {line}", file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
