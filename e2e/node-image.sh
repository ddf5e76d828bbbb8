#!/usr/bin/env bash
# Build the kind node image offline — what `kind build node-image` does, minus
# its registry fetches:
#  1. control-plane component images from our own binaries, tagged exactly as
#     `kubeadm config images list` names them (registry.k8s.io/...);
#  2. those images imported (--no-unpack, pinned) into a containerd content
#     store by a throwaway containerd on the host, in the k8s.io namespace;
#  3. the node image: pids-e2e/node-base (debootstrapped bookworm with systemd,
#     Debian containerd/runc/CNI plugins) + kind's images/base/files copied at
#     build time from the kind module in the Go module cache + kubeadm,
#     kubelet, kubectl, crictl + /kind/version + that content store + a
#     ptp/host-local/portmap CNI config + kind's local-path storage manifest (the cluster runs with
#     disableDefaultCNI: true, as kindnetd is not available offline).
# Result: $NODE_IMAGE (pids-e2e/kind-node:<k8s version>); also saved to
# $PIDS_E2E_CACHE/node-<k8s version>/node-image.tar and reloaded from there if
# docker lost it. Usage: e2e/node-image.sh [--force]
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
with_lock node-image "$@"

FORCE=0; [[ "${1:-}" == --force ]] && FORCE=1
WORK="$PIDS_E2E_CACHE/node-$K8S_VERSION"
# bump when this script changes what goes into the image
NODE_REV=2
STAMP="$WORK/node-image.rev"
mkdir -p "$WORK"

"$E2E_DIR/docker-up.sh"
# rebuilt when this script, the versions, how the tools are built or the base
# images' package lists change
want_rev="$NODE_REV $(cat "$0" "$E2E_DIR"/{versions,lib,toolchain,base-images}.sh | sha256sum | cut -c1-12)"
if [[ $FORCE == 0 && -f $STAMP && "$(cat "$STAMP")" == "$want_rev" ]]; then
  if have_image "$NODE_IMAGE"; then log "node image $NODE_IMAGE up to date"; exit 0; fi
  if [[ -s $WORK/node-image.tar ]]; then
    log "docker load $NODE_IMAGE from cache"; docker load -i "$WORK/node-image.tar" >/dev/null; exit 0
  fi
fi

t0=$SECONDS
"$E2E_DIR/toolchain.sh" kubernetes etcd coredns crictl kind local_path
"$E2E_DIR/base-images.sh" base node

KUBEADM="$K8S_BIN/kubeadm"
mapfile -t IMAGES < <("$KUBEADM" config images list --kubernetes-version "$K8S_VERSION" 2>/dev/null)
[[ ${#IMAGES[@]} -ge 7 ]] || die "kubeadm config images list gave: ${IMAGES[*]}"
log "component images: ${IMAGES[*]}"

# --- 1. component images -----------------------------------------------------
component_image() { # ref
  local ref=$1 name ctx from bin dest entry
  name="${ref##*/}"; name="${name%%:*}"
  ctx="$WORK/ctx-$name"; rm -rf "$ctx"; mkdir -p "$ctx"
  from="$BASE_IMAGE"; dest=/usr/local/bin; entry=""
  case "$name" in
    kube-apiserver|kube-controller-manager|kube-scheduler|kube-proxy) bin="$K8S_BIN/$name" ;;
    etcd) bin="$ETCD_BIN/etcd" ;;
    coredns) bin="$COREDNS_BIN/coredns"; dest=""; entry='["/coredns"]' ;;
    pause) bin="$K8S_BIN/pause"; from=scratch; dest=""; entry='["/pause"]' ;;
    *) die "unknown component image $ref" ;;
  esac
  cp "$bin" "$ctx/"
  {
    echo "FROM $from"
    echo "COPY $(cd "$ctx" && ls | tr '\n' ' ') ${dest:-/}/"
    [[ -n $entry ]] && echo "ENTRYPOINT $entry"
    [[ $name == pause ]] && echo "USER 65535:65535"
    echo "LABEL pids.e2e.built-from=$(basename "$bin")"
  } >"$ctx/Dockerfile"
  DOCKER_BUILDKIT=0 docker build --quiet -t "$ref" "$ctx" >/dev/null
  rm -rf "$ctx"
}
for ref in "${IMAGES[@]}"; do component_image "$ref"; done

# Dynamic PVCs: kind's default-storage manifest (local-path-provisioner), read
# at build time from the kind module, with images we build: the provisioner
# from github.com/rancher/local-path-provisioner, the helper = our base image.
KIND_DIR="$(GOMODCACHE="$PIDS_E2E_CACHE/kind-$KIND_VERSION/gomod" GOFLAGS=-mod=mod GOSUMDB=off \
  go mod download -json "sigs.k8s.io/kind@$KIND_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[[ -d $KIND_DIR/images/base/files ]] || die "kind module files not found ($KIND_DIR)"
storage_go="$KIND_DIR/pkg/build/nodeimage/const_storage.go"
PROVISIONER_REF="$(sed -n 's/^const storageProvisionerImage = "\(.*\)"$/\1/p' "$storage_go")"
HELPER_REF="$(sed -n 's/^const storageHelperImage = "\(.*\)"$/\1/p' "$storage_go")"
[[ -n $PROVISIONER_REF && -n $HELPER_REF ]] || die "cannot read the storage images from $storage_go"
sed -n '/^const defaultStorageManifest = `$/,/^`$/p' "$storage_go" | sed '1d;$d' |
  sed -e "s#\` + storageProvisionerImage + \`#$PROVISIONER_REF#" -e "s#\` + storageHelperImage + \`#$HELPER_REF#" \
  >"$WORK/default-storage.yaml"
grep -q 'provisioner: rancher.io/local-path' "$WORK/default-storage.yaml" && ! grep -q '`' "$WORK/default-storage.yaml" ||
  die "could not extract kind's default storage manifest"
ctx="$WORK/ctx-local-path"; rm -rf "$ctx"; mkdir -p "$ctx"
cp "$LOCAL_PATH_BIN/local-path-provisioner" "$ctx/"
printf 'FROM %s\nCOPY local-path-provisioner /usr/local/bin/\nENTRYPOINT ["local-path-provisioner"]\n' "$BASE_IMAGE" >"$ctx/Dockerfile"
DOCKER_BUILDKIT=0 docker build --quiet -t "$PROVISIONER_REF" "$ctx" >/dev/null
rm -rf "$ctx"
docker tag "$BASE_IMAGE" "$HELPER_REF"
IMAGES+=("$PROVISIONER_REF" "$HELPER_REF")
log "component images built"

# --- 2. containerd content store with the images ------------------------------
CTX="$WORK/ctx-node"
rm -rf "$CTX"; mkdir -p "$CTX/root" "$CTX/bin"
docker save "${IMAGES[@]}" -o "$WORK/component-images.tar"
CD="$(mktemp -d /tmp/pids-e2e-containerd.XXXX)"
cat >"$CD/config.toml" <<EOF
version = 2
root = "$CTX/root/var/lib/containerd"
state = "$CD/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CD/containerd.sock"
[ttrpc]
  address = "$CD/containerd.sock.ttrpc"
EOF
containerd --config "$CD/config.toml" >"$PIDS_E2E_CACHE/logs/node-image-containerd.log" 2>&1 &
CPID=$!
trap 'kill $CPID 2>/dev/null || true; rm -rf "$CD"' EXIT
for _ in $(seq 50); do [[ -S $CD/containerd.sock ]] && break; sleep 0.2; done
ctr_() { ctr --address "$CD/containerd.sock" --namespace k8s.io "$@"; }
ctr_ images import --label=io.cri-containerd.pinned=pinned --all-platforms --no-unpack --digests \
  "$WORK/component-images.tar" >&2 ||
  ctr_ images import --all-platforms --no-unpack --digests "$WORK/component-images.tar" >&2
ctr_ images ls -q | grep -v '^import-' >&2
kill $CPID; wait $CPID 2>/dev/null || true
trap 'rm -rf "$CD"' EXIT
rm -f "$WORK/component-images.tar"

# --- 3. the node image ----------------------------------------------------------
cp -r "$KIND_DIR/images/base/files" "$CTX/files"
chmod -R u+w "$CTX/files"
for b in kubeadm kubelet kubectl; do cp "$K8S_BIN/$b" "$CTX/bin/"; done
cp "$CRICTL_BIN/crictl" "$CTX/bin/"
mv "$WORK/default-storage.yaml" "$CTX/default-storage.yaml"
echo "$K8S_VERSION" >"$CTX/version"

PAUSE_REF="$(printf '%s\n' "${IMAGES[@]}" | grep '/pause:')"
# kind's containerd config, with our pause image
sed -i "s#sandbox_image = .*#sandbox_image = \"$PAUSE_REF\"#" "$CTX/files/etc/containerd/config.toml"
# The node lacks CAP_SYS_RESOURCE (the host's bounding set has none), so it
# cannot lower oom_score_adj: runc then fails with "can't get final child's
# PID from pipe". Clamp it as kind does for rootless nodes.
sed -i 's/restrict_oom_score_adj = false/restrict_oom_score_adj = true/' "$CTX/files/etc/containerd/config.toml"
# cri-base.json as kind's Dockerfile makes it: `ctr oci spec` + the
# mount-product-files hook, minus rlimits (host ctr is Debian's, same as the node's)
ctr oci spec | python3 -c '
import json, sys
s = json.load(sys.stdin)
s.setdefault("hooks", {}).setdefault("createContainer", []).append({"path": "/kind/bin/mount-product-files.sh"})
s.get("process", {}).pop("rlimits", None)
json.dump(s, sys.stdout, indent=2)' >"$CTX/cri-base.json"

cat >"$CTX/10-pids-ptp.conflist" <<'EOF'
{
  "cniVersion": "0.4.0",
  "name": "pids-ptp",
  "plugins": [
    {
      "type": "ptp",
      "ipMasq": true,
      "mtu": 1500,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "10.244.0.0/24" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOF

cat >"$CTX/Dockerfile" <<EOF
FROM $NODE_BASE_IMAGE
COPY files/ /
RUN chmod 0755 /usr/local/bin/* /kind /kind/bin /kind/bin/* \\
 && chmod -R go-w /etc/systemd /etc/containerd /etc/default /etc/sysctl.d \\
 && find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete \\
 && rm -f /lib/systemd/system/multi-user.target.wants/* \\
 && rm -f /etc/systemd/system/*.wants/* \\
 && rm -f /lib/systemd/system/local-fs.target.wants/* \\
 && rm -f /lib/systemd/system/sockets.target.wants/*udev* \\
 && rm -f /lib/systemd/system/sockets.target.wants/*initctl* \\
 && rm -f /lib/systemd/system/basic.target.wants/* \\
 && echo "ReadKMsg=no" >> /etc/systemd/journald.conf \\
 && ln -sf /usr/lib/systemd/systemd /sbin/init \\
 && ln -sf /usr/bin/containerd /usr/local/bin/containerd \\
 && ln -sf /usr/bin/ctr /usr/local/bin/ctr \\
 && mkdir -p /opt/cni/bin /etc/cni/net.d /etc/kubernetes/manifests \\
 && for p in /usr/lib/cni/*; do ln -sf "\$p" /opt/cni/bin/; done \\
 && systemctl enable kubelet.service containerd.service undo-mount-hacks.service \\
 && systemctl mask systemd-binfmt.service
COPY bin/ /usr/bin/
COPY version /kind/version
COPY cri-base.json /etc/containerd/cri-base.json
COPY 10-pids-ptp.conflist /etc/cni/net.d/10-pids-ptp.conflist
COPY default-storage.yaml /kind/manifests/default-storage.yaml
COPY root/ /
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]
LABEL pids.e2e.kubernetes-version=$K8S_VERSION
EOF
log "docker build $NODE_IMAGE"
DOCKER_BUILDKIT=0 docker build --quiet -t "$NODE_IMAGE" "$CTX" >/dev/null
rm -rf "$CTX"
log "saving $NODE_IMAGE to $WORK/node-image.tar"
docker save "$NODE_IMAGE" -o "$WORK/node-image.tar.tmp" && mv "$WORK/node-image.tar.tmp" "$WORK/node-image.tar"
echo "$want_rev" >"$STAMP"
log "node image built in $((SECONDS - t0)) s"
