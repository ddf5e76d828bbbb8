# Shared helpers for the e2e scripts (sourced, not run).
# shellcheck shell=bash
E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$E2E_DIR/.." && pwd)"
# shellcheck source=e2e/versions.sh
. "$E2E_DIR/versions.sh"
mkdir -p "$PIDS_E2E_CACHE/logs"

log() { echo "[$(basename "$0" .sh) $(date +%H:%M:%S)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# Directories of the built tools (see toolchain.sh)
K8S_BIN="$PIDS_E2E_CACHE/kubernetes-$K8S_VERSION/bin"
ETCD_BIN="$PIDS_E2E_CACHE/etcd-$ETCD_VERSION/bin"
COREDNS_BIN="$PIDS_E2E_CACHE/coredns-$COREDNS_VERSION/bin"
CRICTL_BIN="$PIDS_E2E_CACHE/crictl-$CRICTL_VERSION/bin"
KIND_BIN="$PIDS_E2E_CACHE/kind-$KIND_VERSION/bin"
HELM_BIN="$PIDS_E2E_CACHE/helm-$HELM_VERSION/bin"
LOCAL_PATH_BIN="$PIDS_E2E_CACHE/local-path-provisioner-$LOCAL_PATH_VERSION/bin"

# Name of the kind cluster and where its kubeconfig is written
CLUSTER_NAME="${PIDS_E2E_CLUSTER:-pids-e2e}"
KUBECONFIG_PATH="${PIDS_E2E_KUBECONFIG:-$PIDS_E2E_CACHE/kubeconfig-$CLUSTER_NAME}"

# Local images (never pushed anywhere)
BASE_IMAGE="pids-e2e/base:$DEBIAN_SUITE"
PYTHON_IMAGE="pids-e2e/python:$DEBIAN_SUITE"
REDIS_BASE_IMAGE="pids-e2e/redis-base:$DEBIAN_SUITE"
NODE_BASE_IMAGE="pids-e2e/node-base:$DEBIAN_SUITE"
NODE_IMAGE="pids-e2e/kind-node:$K8S_VERSION"
APP_IMAGE="pids-example-wordcount:$PIDS_VERSION"   # examples/app: users' own code FROM pids-worker
PIDS_IMAGES=("pids-worker:$PIDS_VERSION" "pids-operator:$PIDS_VERSION" "pids-redis:$PIDS_VERSION" "$APP_IMAGE")

# Serialise concurrent runs (several people share this machine and its docker):
# re-exec the calling script under flock; -o keeps the lock fd away from the
# children (dockerd started by docker-up must not hold it).
with_lock() { # name "$@"
  local name=$1 var="PIDS_E2E_LOCK_${1//-/_}"; shift
  [[ -z ${!var:-} ]] || return 0
  export "$var=1"
  local lock="$PIDS_E2E_CACHE/$name.lock"
  if ! flock -n "$lock" true; then log "waiting for another run to release $lock"; fi
  exec flock -o "$lock" "$0" "$@"
}

# kind/kubectl/helm from the toolchain (or from PATH with PIDS_E2E_STOCK_KIND=1)
tool_path() {
  if [[ "${PIDS_E2E_STOCK_KIND:-0}" == 1 ]]; then
    echo "$PATH"
  else
    echo "$K8S_BIN:$KIND_BIN:$HELM_BIN:$CRICTL_BIN:$PATH"
  fi
}
