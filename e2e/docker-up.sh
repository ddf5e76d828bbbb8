#!/usr/bin/env bash
# Make a Docker engine available that can run privileged containers (kind
# nodes) on hosts whose capability bounding set lacks CAP_SYS_RESOURCE.
#
# Idempotent:
#  - installs Debian's docker.io if there is no dockerd;
#  - writes a runc wrapper that drops CAP_SYS_RESOURCE from the OCI spec it is
#    given (bundle config.json on create/run, --process file on exec) and then
#    execs the real runc with the same arguments;
#  - if `docker info` already works, leaves that engine alone unless it is one
#    this script started earlier without the wrapper as its default runtime;
#  - otherwise starts dockerd in the background with the wrapper as default
#    runtime (log: $PIDS_E2E_CACHE/logs/dockerd.log) and waits for it.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/versions.sh"

RUNTIME=pids-runc
WRAPPER=/usr/local/sbin/pids-runc-wrapper
LOGDIR="$PIDS_E2E_CACHE/logs"
PIDFILE=/var/run/pids-e2e-dockerd.pid
mkdir -p "$LOGDIR"
log() { echo "[docker-up] $*" >&2; }

if ! command -v dockerd >/dev/null 2>&1; then
  log "installing docker.io from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq docker.io >/dev/null
fi

REAL_RUNC="$(command -v runc || true)"
[[ -n "$REAL_RUNC" && "$REAL_RUNC" != "$WRAPPER" ]] || REAL_RUNC=/usr/sbin/runc

# --- the runc wrapper ---------------------------------------------------------
tmp="$(mktemp)"
cat >"$tmp" <<EOF
#!/bin/sh
# Written by PIDS e2e/docker-up.sh: drop CAP_SYS_RESOURCE from OCI specs, then
# exec the real runc. The host's capability bounding set lacks it, so
# "docker run --privileged" would otherwise fail to apply capabilities.
REAL_RUNC=$REAL_RUNC
EOF
cat >>"$tmp" <<'EOF'
cmd=""; bundle=""; process=""; want=""
for a in "$@"; do
  if [ -n "$want" ]; then
    case "$want" in bundle) bundle="$a" ;; process) process="$a" ;; esac
    want=""; continue
  fi
  if [ -z "$cmd" ]; then
    case "$a" in
      --root|--log|--log-format|--criu) want=skip ;;
      -*) ;;
      *) cmd="$a" ;;
    esac
    continue
  fi
  case "$cmd:$a" in
    create:--bundle|create:-b|run:--bundle|run:-b) want=bundle ;;
    create:--bundle=*|run:--bundle=*) bundle="${a#--bundle=}" ;;
    exec:--process|exec:-p) want=process ;;
    exec:--process=*) process="${a#--process=}" ;;
  esac
done
strip() {
  [ -f "$1" ] || return 0
  grep -q CAP_SYS_RESOURCE "$1" || return 0
  python3 - "$1" <<'PY'
import json, sys
p = sys.argv[1]
with open(p) as f:
    spec = json.load(f)
caps = (spec["process"] if "process" in spec else spec).get("capabilities")
if caps:
    for k, v in caps.items():
        if isinstance(v, list):
            caps[k] = [c for c in v if c != "CAP_SYS_RESOURCE"]
with open(p, "w") as f:
    json.dump(spec, f)
PY
}
case "$cmd" in
  create|run) strip "${bundle:-.}/config.json" ;;
  exec) [ -n "$process" ] && strip "$process" ;;
esac
exec "$REAL_RUNC" "$@"
EOF
if ! cmp -s "$tmp" "$WRAPPER" 2>/dev/null; then
  install -m 0755 "$tmp" "$WRAPPER"
fi
rm -f "$tmp"

need_wrapper() {
  # does the bounding set lack CAP_SYS_RESOURCE (bit 24)?
  local bnd; bnd="$(awk '/^CapBnd/ {print $2}' /proc/self/status)"
  (( (16#$bnd >> 24 & 1) == 0 ))
}

engine_ok() { timeout 10 docker info >/dev/null 2>&1; }
default_runtime() { docker info --format '{{.DefaultRuntime}}' 2>/dev/null || true; }

if engine_ok; then
  if [[ "$(default_runtime)" == "$RUNTIME" ]] || ! need_wrapper; then
    log "docker engine already running (default runtime $(default_runtime))"
    exit 0
  fi
  if [[ -f $PIDFILE ]] && kill -0 "$(cat $PIDFILE)" 2>/dev/null; then
    log "restarting the dockerd this script started, to add the runc wrapper"
    kill "$(cat $PIDFILE)"
    for _ in $(seq 60); do engine_ok || break; sleep 1; done
  else
    log "WARNING: a docker engine runs without the runc wrapper and this host lacks" \
        "CAP_SYS_RESOURCE: privileged containers (kind nodes) will fail. Restart it with" \
        "--add-runtime $RUNTIME=$WRAPPER --default-runtime $RUNTIME"
    exit 0
  fi
fi

log "starting dockerd (log $LOGDIR/dockerd.log)"
args=(--add-runtime "$RUNTIME=$WRAPPER" --default-runtime "$RUNTIME" --pidfile "$PIDFILE")
# stale pid file of a dead daemon
[[ -f $PIDFILE ]] && ! kill -0 "$(cat $PIDFILE)" 2>/dev/null && rm -f "$PIDFILE"
nohup setsid dockerd "${args[@]}" >>"$LOGDIR/dockerd.log" 2>&1 </dev/null &
for i in $(seq 120); do
  engine_ok && { log "dockerd ready after ${i}s"; exit 0; }
  sleep 1
done
log "dockerd did not come up; tail of $LOGDIR/dockerd.log:"
tail -n 30 "$LOGDIR/dockerd.log" >&2
exit 1
