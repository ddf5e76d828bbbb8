"""`python -m pids_bench.worker --policy NAME [pids worker options]`: a real PIDS worker that
places by a baseline rule instead of gravity, for `pids bench placement --real` and tests.

The policy object is built here and handed to `pids.worker.Worker`; `pids worker` itself
runs gravity only.
"""

from __future__ import annotations

import argparse
import sys

from pids.cli import add_worker_arguments, run_command, run_worker

from .policies import ONLINE, online_policy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pids_bench.worker", description=f"A PIDS worker under any online policy: {', '.join(ONLINE)}."
    )
    add_worker_arguments(parser)
    parser.set_defaults(run=lambda args: run_worker(args, policy_for=online_policy))
    return run_command(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
