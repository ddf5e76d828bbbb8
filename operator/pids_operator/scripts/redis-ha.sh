#!/bin/sh
# The redis container of a managed Redis with Sentinel: redis-server with the operator's
# arguments ("$@"), as the primary or as a replica of the primary the Sentinels name.
# Replicas announce their pod's DNS name, so the Sentinels follow pods across restarts.
set -eu
. /scripts/common.sh
primary=$(current_primary)
if [ "$primary" = "$SELF" ]; then
  log "starting as the primary"
  exec redis-server "$@" --replica-announce-ip "$SELF"
fi
log "starting as a replica of $primary"
exec redis-server "$@" --replica-announce-ip "$SELF" --replicaof "$primary" 6379
