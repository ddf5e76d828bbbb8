#!/usr/bin/env bash
# Delete the e2e kind cluster (caches and images stay).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
with_lock cluster "$@"
export PATH="$(tool_path)"
if command -v kind >/dev/null && timeout 10 docker info >/dev/null 2>&1; then
  kind delete cluster --name "$CLUSTER_NAME" --kubeconfig "$KUBECONFIG_PATH" >&2
fi
rm -f "$KUBECONFIG_PATH"
