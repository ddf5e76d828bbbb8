"""Enqueue benchmark tasks through a peer's own client API, one call per task.

    python enqueue.py PEER KIND N RATE SLEEP

PEER names a module p_<PEER> beside this file; KIND is noop, lat (argument:
enqueue time), warm (a lat task marked as warm-up) or rec (arguments: task
index and sleep seconds). RATE is tasks/s, 0 = as fast as
possible. Prints one JSON line: {"n": N, "seconds": elapsed}.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import sys
import time

import benchrec


def _args(kind: str, i: int, sleep: float) -> tuple:
    if kind == "noop":
        return ()
    if kind == "lat":
        return (time.time(),)
    if kind == "warm":
        return (-1.0,)
    return (i, sleep)


def main() -> None:
    peer, kind, n, rate, sleep = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
    mod = importlib.import_module(f"p_{peer}")
    fn_kind = "lat" if kind == "warm" else kind
    if hasattr(mod, "async_submitters"):

        async def go() -> float:
            fn = (await mod.async_submitters())[fn_kind]
            t0 = time.perf_counter()
            for i in benchrec.paced(n, rate):
                await fn(*_args(kind, i, sleep))
            return time.perf_counter() - t0

        seconds = asyncio.run(go())
    else:
        subs = mod.submitters()
        fn = subs[fn_kind]
        t0 = time.perf_counter()
        for i in benchrec.paced(n, rate):
            res = fn(*_args(kind, i, sleep))
            if inspect.isawaitable(res):
                raise SystemExit("async submitter in a sync peer")
        if "flush" in subs:  # peers that buffer submissions into batches
            subs["flush"]()
        seconds = time.perf_counter() - t0
    print(json.dumps({"n": n, "seconds": seconds}), flush=True)


if __name__ == "__main__":
    main()
