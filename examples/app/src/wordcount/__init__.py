"""Word counts over documents the package generates itself (no data to ship): a PIDS example of
users' own code, with size hints (weights) and data positions."""
