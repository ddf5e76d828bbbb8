#!/usr/bin/env bash
# Bring up (or reuse) the single-node kind cluster for the e2e tests and load
# the PIDS images into it. Prints the kubeconfig path on stdout (last line);
# everything else goes to stderr.
#
#   PIDS_E2E_STOCK_KIND=1   machine with internet: use kind/kubectl/helm from
#                           PATH and kind's default node image (no toolchain,
#                           no node image build, kindnetd as CNI)
#   PIDS_E2E_SKIP_IMAGES=1  do not (re)build the PIDS images
#   PIDS_E2E_RECREATE=1     delete an existing cluster first
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
with_lock cluster "$@"
T0=$SECONDS
STOCK="${PIDS_E2E_STOCK_KIND:-0}"

"$E2E_DIR/docker-up.sh"
# debootstrap (network and disk bound) overlaps the Go builds (CPU bound)
bases=(base python redis node); [[ $STOCK != 1 ]] || bases=(python redis)
"$E2E_DIR/base-images.sh" "${bases[@]}" >"$PIDS_E2E_CACHE/logs/base-images.log" 2>&1 &
BASE_PID=$!
if [[ $STOCK != 1 ]]; then
  "$E2E_DIR/toolchain.sh"
fi
wait $BASE_PID || { cat "$PIDS_E2E_CACHE/logs/base-images.log" >&2; die "base images failed"; }
if [[ $STOCK != 1 ]]; then
  "$E2E_DIR/node-image.sh"
fi
[[ "${PIDS_E2E_SKIP_IMAGES:-0}" == 1 ]] || "$E2E_DIR/images.sh"
export PATH="$(tool_path)"
for t in kind kubectl; do command -v $t >/dev/null || die "$t not found in PATH"; done
T1=$SECONDS

export KUBECONFIG="$KUBECONFIG_PATH"
exists() { kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; }
if exists && [[ "${PIDS_E2E_RECREATE:-0}" == 1 ]]; then
  kind delete cluster --name "$CLUSTER_NAME" >&2
fi
if exists && [[ $STOCK != 1 ]] &&
  [[ "$(docker inspect -f '{{.Image}}' "$CLUSTER_NAME-control-plane" 2>/dev/null)" != "$(docker image inspect -f '{{.Id}}' "$NODE_IMAGE")" ]]; then
  log "cluster $CLUSTER_NAME runs an older node image; recreating"
  kind delete cluster --name "$CLUSTER_NAME" >&2
fi
if exists && ! kubectl get --raw /readyz >/dev/null 2>&1; then
  # e.g. docker was restarted: the node container is gone or stopped
  log "cluster $CLUSTER_NAME exists but does not answer; recreating"
  kind delete cluster --name "$CLUSTER_NAME" >&2
fi
if ! exists; then
  cfg="$PIDS_E2E_CACHE/kind-config-$CLUSTER_NAME.yaml"
  {
    echo "kind: Cluster"
    echo "apiVersion: kind.x-k8s.io/v1alpha4"
    if [[ $STOCK != 1 ]]; then
      echo "networking:"
      echo "  disableDefaultCNI: true   # no kindnetd offline; the node image has a ptp CNI config"
      echo "  podSubnet: 10.244.0.0/16"
    fi
    echo "nodes:"
    echo "- role: control-plane"
  } >"$cfg"
  args=(--name "$CLUSTER_NAME" --config "$cfg" --kubeconfig "$KUBECONFIG_PATH" --retain)
  [[ $STOCK == 1 ]] || args+=(--image "$NODE_IMAGE")
  log "kind create cluster ${args[*]}"
  kind create cluster "${args[@]}" >&2 || {
    log "kind create cluster failed; node logs in $PIDS_E2E_CACHE/logs/kind-$CLUSTER_NAME"
    kind export logs --name "$CLUSTER_NAME" "$PIDS_E2E_CACHE/logs/kind-$CLUSTER_NAME" >/dev/null 2>&1 || true
    kind delete cluster --name "$CLUSTER_NAME" >/dev/null 2>&1 || true
    exit 1
  }
else
  kind export kubeconfig --name "$CLUSTER_NAME" --kubeconfig "$KUBECONFIG_PATH" >/dev/null 2>&1
  log "reusing cluster $CLUSTER_NAME"
fi
T2=$SECONDS

log "waiting for the node and CoreDNS"
kubectl wait --for=condition=Ready node --all --timeout=180s >&2
kubectl -n kube-system rollout status deployment/coredns --timeout=180s >&2

if [[ "${PIDS_E2E_SKIP_IMAGES:-0}" != 1 ]]; then
  log "kind load docker-image ${PIDS_IMAGES[*]}"
  kind load docker-image --name "$CLUSTER_NAME" "${PIDS_IMAGES[@]}" >&2
fi
T3=$SECONDS
log "ready: build $((T1 - T0)) s, create $((T2 - T1)) s, wait+load $((T3 - T2)) s, total $((T3 - T0)) s"
echo "$(date -u +%FT%TZ) cluster-up total=$((T3 - T0))s build=$((T1 - T0))s create=$((T2 - T1))s wait_load=$((T3 - T2))s" \
  >>"$PIDS_E2E_CACHE/logs/timings.log"
echo "$KUBECONFIG_PATH"
