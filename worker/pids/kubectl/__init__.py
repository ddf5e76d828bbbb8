"""The kubectl plugin `kubectl pids` (installed as the `kubectl-pids` executable): results,
top, submit, retry and describe, through the Kubernetes API server."""
