"""`python -m pids_bench NAME ...`: the same as `pids bench NAME ...`."""

import sys

from pids.cli import main

sys.exit(main(["bench", *sys.argv[1:]]))
