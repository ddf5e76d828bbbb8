"""Benchmarks run by `pids bench <name>`: each module has add_arguments() and run()."""
