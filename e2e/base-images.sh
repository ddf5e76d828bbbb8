#!/usr/bin/env bash
# Debian bookworm base images without a registry: debootstrap --variant=minbase
# into a directory, tar it (cached), `docker import` it.
#
#   pids-e2e/base:bookworm        static control-plane binaries, kube-proxy
#   pids-e2e/python:bookworm      Debian python3 3.11 + venv (PIDS images)
#   pids-e2e/redis-base:bookworm  Debian redis-server and redis-sentinel
#   pids-e2e/node-base:bookworm   systemd + containerd + runc + CNI plugins (kind node)
#
# Tarballs: $PIDS_E2E_CACHE/rootfs-<suite>/<name>-<hash of package list>.tar
# Packages: $PIDS_E2E_CACHE/rootfs-<suite>/debs (debootstrap --cache-dir)
# Usage: e2e/base-images.sh [name ...]   (default: all four)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

declare -A PKGS=(
  [base]="ca-certificates,iptables,nftables,conntrack,ipset,kmod"
  [python]="ca-certificates,python3,python3-venv"
  [redis]="redis-server,redis-sentinel"
  [node]="systemd,systemd-sysv,dbus,containerd,runc,containernetworking-plugins,iproute2,iptables,nftables,conntrack,ipset,ethtool,socat,kmod,util-linux,mount,procps,ca-certificates,libseccomp2,pigz,bash,findutils,jq"
)
declare -A IMAGE=(
  [base]="$BASE_IMAGE" [python]="$PYTHON_IMAGE" [redis]="$REDIS_BASE_IMAGE" [node]="$NODE_BASE_IMAGE"
)

ROOT="$PIDS_E2E_CACHE/rootfs-$DEBIAN_SUITE"
mkdir -p "$ROOT/debs"

command -v debootstrap >/dev/null || {
  log "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
}

build_rootfs() { # name -> path of the tarball
  local name=$1 pkgs=${PKGS[$1]} hash tar dir
  hash="$(echo "$DEBIAN_SUITE $pkgs v1" | sha256sum | cut -c1-12)"
  tar="$ROOT/$name-$hash.tar"
  if [[ ! -s $tar ]]; then
    dir="$(mktemp -d "$ROOT/tmp-$name.XXXX")"
    log "debootstrap $name ($pkgs)"
    local t0=$SECONDS
    local try
    for try in 1 2; do
      nice -n 10 debootstrap --variant=minbase --cache-dir="$ROOT/debs" \
        --include="$pkgs" "$DEBIAN_SUITE" "$dir" http://deb.debian.org/debian \
        >"$PIDS_E2E_CACHE/logs/debootstrap-$name.log" 2>&1 && break
      tail -20 "$PIDS_E2E_CACHE/logs/debootstrap-$name.log" >&2
      rm -rf "$dir"; mkdir -p "$dir"
      [[ $try == 1 ]] || exit 1
      log "debootstrap $name failed; retrying"
    done
    # security updates stay out: a fixed snapshot of the suite is what we test on
    rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb \
      "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/info/* "$dir"/var/log/*.log \
      "$dir"/usr/share/locale/*
    echo "deb http://deb.debian.org/debian $DEBIAN_SUITE main" >"$dir/etc/apt/sources.list"
    tar --numeric-owner -C "$dir" -cf "$tar.tmp" .
    mv "$tar.tmp" "$tar"
    rm -rf "$dir"
    # tarballs of older package lists of this image
    find "$ROOT" -maxdepth 1 -name "$name-*.tar" ! -name "$name-$hash.tar" -delete
    log "rootfs $name: $(du -h "$tar" | cut -f1) in $((SECONDS - t0)) s"
  fi
  echo "$tar"
}

names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=(base python redis node)
for n in "${names[@]}"; do
  img=${IMAGE[$n]}
  tar="$(build_rootfs "$n")"
  id="$(basename "$tar" .tar)"
  if [[ "$(docker image inspect -f '{{index .Config.Labels "pids.rootfs"}}' "$img" 2>/dev/null)" != "$id" ]]; then
    log "docker import $img"
    docker import \
      --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
      --change "LABEL pids.rootfs=$id" \
      --change 'CMD ["/bin/bash"]' \
      "$tar" "$img" >/dev/null
  fi
done
