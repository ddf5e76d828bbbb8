#!/bin/sh
# The sentinel container of a managed Redis pod: writes a fresh configuration that monitors
# the current primary (Sentinel rewrites it as it learns), then runs redis-sentinel.
# Environment, besides common.sh's: PIDS_SENTINEL_QUORUM, PIDS_SENTINEL_DOWN_AFTER_MS,
# PIDS_SENTINEL_FAILOVER_TIMEOUT_MS.
set -eu
. /scripts/common.sh
primary=$(current_primary)
# Sentinel exits on a primary it cannot resolve: wait for the pod's DNS record
tries=0
until getent hosts "$primary" >/dev/null; do
  tries=$((tries + 1))
  if [ "$tries" -gt 120 ]; then log "cannot resolve $primary"; exit 1; fi
  sleep 1
done
log "monitoring $primary"
mkdir -p "$SENTINEL_DIR"
umask 077
cat >"$SENTINEL_CONF.new" <<CONF
port 26379
dir $SENTINEL_DIR
requirepass $REDISCLI_AUTH
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip $SELF
sentinel monitor $PIDS_SENTINEL_PRIMARY $primary 6379 $PIDS_SENTINEL_QUORUM
sentinel auth-pass $PIDS_SENTINEL_PRIMARY $REDISCLI_AUTH
sentinel down-after-milliseconds $PIDS_SENTINEL_PRIMARY $PIDS_SENTINEL_DOWN_AFTER_MS
sentinel failover-timeout $PIDS_SENTINEL_PRIMARY $PIDS_SENTINEL_FAILOVER_TIMEOUT_MS
sentinel parallel-syncs $PIDS_SENTINEL_PRIMARY 1
CONF
mv "$SENTINEL_CONF.new" "$SENTINEL_CONF"
exec redis-sentinel "$SENTINEL_CONF"
