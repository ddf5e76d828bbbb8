#!/usr/bin/env bash
# Build, offline from a container registry, every binary the e2e cluster needs:
# Kubernetes (control plane, kubelet, kubeadm, kubectl), etcd, coredns, pause,
# crictl, kind, local-path-provisioner and helm. Only the Go module proxy and Debian apt are used.
#
# Every component is cached in its own versioned directory
#   ${PIDS_E2E_CACHE:-/var/cache/pids-e2e}/<component>-<version>/
#     gomod/   GOMODCACHE      gocache/  GOCACHE
#     src/     local go.mod    bin/      finished binaries (+ .done stamp)
# so a rerun with the same versions does nothing, and a version bump builds
# only what changed.
#
# Usage: e2e/toolchain.sh [component ...]   (default: all)
#        components: kubernetes etcd coredns pause crictl kind local_path helm
# Prints nothing on stdout except, with --print-env, shell assignments.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=e2e/versions.sh
. "$HERE/versions.sh"
. "$HERE/lib.sh"
with_lock toolchain "$@"

export GOSUMDB="${GOSUMDB:-off}"      # sum.golang.org is not reachable here
export GOPROXY="${GOPROXY:-https://proxy.golang.org}"
export GOTOOLCHAIN=local
export CGO_ENABLED=0
export GOFLAGS="-mod=mod -buildvcs=false"
JOBS="${PIDS_E2E_JOBS:-2}"
NICE=(nice -n "${PIDS_E2E_NICE:-10}")

log() { echo "[toolchain $(date +%H:%M:%S)] $*" >&2; }

command -v go >/dev/null || { log "Go >= 1.24 is required (not in Debian bookworm's apt)"; exit 1; }
if ! command -v gcc >/dev/null || [[ ! -e /usr/lib/x86_64-linux-gnu/libc.a && ! -e /usr/lib/libc.a ]]; then
  log "installing gcc and libc6-dev (for the static pause binary)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev; } >/dev/null
fi

# comp_env NAME VERSION: set DIR/GOMODCACHE/GOCACHE for one component.
comp_env() {
  DIR="$PIDS_E2E_CACHE/$1-$2"
  mkdir -p "$DIR/gomod" "$DIR/gocache" "$DIR/src" "$DIR/bin"
  export GOMODCACHE="$DIR/gomod" GOCACHE="$DIR/gocache"
}
done_p() { [[ -f "$DIR/bin/.done" ]]; }
mark_done() { date -u +%FT%TZ >"$DIR/bin/.done"; }
# retry once: a flaky module download should not cost a CI run (a second
# attempt after a real compile error is fast, everything else is cached)
retry() { "$@" || { log "retrying: $*"; sleep 5; "$@"; }; }
gobuild() { retry "${NICE[@]}" go build -p "$JOBS" -trimpath "$@"; }

build_kubernetes() {
  comp_env kubernetes "$K8S_VERSION"
  done_p && return 0
  local t0=$SECONDS minor=${K8S_VERSION#v1.} src="$DIR/src"
  minor=${minor%%.*}
  local staging="v0.${K8S_VERSION#v1.}"
  log "kubernetes $K8S_VERSION: resolving module (staging $staging)"
  cd "$src"
  [[ -f main.go ]] || printf 'package main\n\nfunc main() {}\n' >main.go
  {
    echo "module pids.local/k8sbuild"
    echo
    echo "go 1.24"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
  } >go.mod
  local kgomod
  kgomod="$(retry go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
  # every staging module k8s.io/kubernetes replaces with ./staging/... gets the
  # published v0.X.Y instead
  grep -oE '^[[:space:]]*k8s\.io/[A-Za-z0-9._/-]+ => \./staging/' "$kgomod" |
    awk '{print $1}' | sort -u | while read -r m; do
      echo "replace $m => $m $staging"
    done >>go.mod
  local pkg="k8s.io/kubernetes/cmd" cmds=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubeadm kubectl)
  local date; date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  local ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ld+=" -X $p.gitCommit=0000000000000000000000000000000000000000 -X $p.gitTreeState=clean -X $p.buildDate=$date"
  done
  local args=()
  for c in "${cmds[@]}"; do args+=("$pkg/$c"); done
  log "kubernetes $K8S_VERSION: go build ${cmds[*]} (-p $JOBS)"
  gobuild -ldflags "$ld" -o "$DIR/bin/" "${args[@]}"
  # pause: a static C binary from the Kubernetes source tree
  local kdir; kdir="$(go list -m -f '{{.Dir}}' k8s.io/kubernetes)"
  gcc -Os -static -DVERSION="\"3.10-pids\"" -o "$DIR/bin/pause" "$kdir/build/pause/linux/pause.c"
  strip "$DIR/bin/pause" || true
  "$DIR/bin/kubeadm" version -o short >&2
  mark_done
  log "kubernetes $K8S_VERSION: built in $((SECONDS - t0)) s"
}

build_etcd() {
  comp_env etcd "$ETCD_VERSION"
  done_p && return 0
  local t0=$SECONDS
  cd "$DIR/src"
  cat >main.go <<'EOF'
// etcd server built from go.etcd.io/etcd/server/v3 (upstream's main is the
// same one-liner; the etcd module itself cannot be `go install`ed).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
  printf 'module pids.local/etcd\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >go.mod
  log "etcd $ETCD_VERSION: go build"
  gobuild -ldflags "-s -w" -o "$DIR/bin/etcd" .
  mark_done
  log "etcd: built in $((SECONDS - t0)) s"
}

# go_install COMPONENT VERSION MODULE/PATH@VERSION BIN [ldflags]
go_install() {
  comp_env "$1" "$2"
  done_p && return 0
  local t0=$SECONDS
  log "$1 $2: go install $3"
  GOFLAGS="-buildvcs=false" GOBIN="$DIR/bin" retry "${NICE[@]}" go install -p "$JOBS" -trimpath -ldflags "-s -w ${5:-}" "$3"
  [[ -x "$DIR/bin/$4" ]]
  mark_done
  log "$1: built in $((SECONDS - t0)) s"
}

build_coredns() { go_install coredns "$COREDNS_VERSION" "github.com/coredns/coredns@$COREDNS_VERSION" coredns; }
# crictl: `go install ...@v1.34.0` fails here because the proxy refuses the
# module's version list (403), which go install reads for deprecation notices;
# the version itself is served, so build it from a local module instead.
build_crictl() {
  comp_env crictl "$CRICTL_VERSION"
  done_p && return 0
  local t0=$SECONDS
  cd "$DIR/src"
  printf 'package main\n\nfunc main() {}\n' >main.go
  printf 'module pids.local/crictl\n\ngo 1.24\n\nrequire sigs.k8s.io/cri-tools %s\n' "$CRICTL_VERSION" >go.mod
  log "crictl $CRICTL_VERSION: go build"
  gobuild -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" \
    -o "$DIR/bin/crictl" sigs.k8s.io/cri-tools/cmd/crictl
  mark_done
  log "crictl: built in $((SECONDS - t0)) s"
}
build_kind() { go_install kind "$KIND_VERSION" "sigs.k8s.io/kind@$KIND_VERSION" kind; }
build_helm() {
  go_install helm "$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" helm \
    "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
}
build_local_path() {
  go_install local-path-provisioner "$LOCAL_PATH_VERSION" \
    "github.com/rancher/local-path-provisioner@$LOCAL_PATH_VERSION" local-path-provisioner
}
build_pause() { build_kubernetes; }   # pause is built with Kubernetes

all=(kubernetes etcd coredns crictl kind local_path helm)
[[ $# -gt 0 ]] && all=("$@")
for c in "${all[@]}"; do
  ( "build_$c" )
done
