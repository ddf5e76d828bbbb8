# Pinned versions of everything the e2e cluster is built from (sourced by the
# other e2e scripts). Bumping one rebuilds only that component's cache dir.
: "${PIDS_E2E_CACHE:=/var/cache/pids-e2e}"
K8S_VERSION="${PIDS_K8S_VERSION:-v1.34.4}"   # newest 1.34 the Go proxy serves
ETCD_VERSION=v3.6.16
COREDNS_VERSION=v1.14.7                       # the proxy serves no v1.12.x
CRICTL_VERSION=v1.34.0
KIND_VERSION=v0.32.0
HELM_VERSION=v3.19.5
LOCAL_PATH_VERSION=v0.0.30                    # rancher local-path-provisioner (PVCs)
DEBIAN_SUITE=bookworm
PIDS_VERSION=0.1.0
export PIDS_E2E_CACHE
