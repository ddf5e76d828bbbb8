#!/usr/bin/env bash
# make e2e: bring up the cluster, then run the e2e tests against it.
#   e2e/run.sh [pytest args...]       (default: e2e -m e2e)
#   PIDS_E2E_KEEP=0 deletes the cluster afterwards (default: keep it for reuse)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
kubeconfig="$("$E2E_DIR/cluster-up.sh" | tail -n 1)"
export KUBECONFIG="$kubeconfig" PIDS_E2E_KUBECONFIG="$kubeconfig" PIDS_E2E_REQUIRE=1
export PATH="$(tool_path)"
export PIDS_E2E_KUBECTL="$(command -v kubectl)" PIDS_E2E_HELM="$(command -v helm || true)"
export PIDS_E2E_IMAGE_TAG="$PIDS_VERSION"
cd "$REPO_ROOT"
rc=0
[[ $# -gt 0 ]] || set -- e2e -m e2e
read -r -a PYTEST <<<"${PIDS_E2E_PYTEST:-python3 -m pytest}"
"${PYTEST[@]}" "$@" || rc=$?
[[ "${PIDS_E2E_KEEP:-1}" == 1 ]] || "$E2E_DIR/cluster-down.sh"
exit $rc
