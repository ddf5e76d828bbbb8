#!/bin/sh
# preStop of the redis container (Sentinel mode). A primary whose pod is being deleted hands
# its role over before it stops, instead of leaving the Sentinels to notice it gone: writes
# are paused until a replica holds them all, a Sentinel promotes that replica, and this Redis
# turns itself into a replica of the new primary. Paused clients then fail over at once
# (READONLY) and nothing written here is lost. Without a reachable Sentinel it just stops.
set -u
. /scripts/common.sh
local_cli() { redis-cli --no-auth-warning -p 6379 "$@" 2>/dev/null; }
[ "$(local_cli role | head -n 1)" = master ] || exit 0
local_cli client pause 10000 write >/dev/null
caught_up() {
  info=$(local_cli info replication | tr -d '\r')
  offset=$(echo "$info" | sed -n 's/^master_repl_offset://p')
  echo "$info" | grep -q "^slave[0-9]*:.*,offset=$offset,"
}
tries=0
until caught_up || [ "$tries" -ge 50 ]; do tries=$((tries + 1)); sleep 0.1; done
asked=""
i=0
while [ "$i" -lt "$PIDS_REDIS_REPLICAS" ] && [ -z "$asked" ]; do
  peer="$PIDS_REDIS_SET-$i.$PIDS_REDIS_PODS"
  if [ "$peer" != "$SELF" ] && [ "$(timeout 2 redis-cli --no-auth-warning -h "$peer" -p 26379 \
      sentinel failover "$PIDS_SENTINEL_PRIMARY" 2>/dev/null)" = OK ]; then
    asked=$peer
  fi
  i=$((i + 1))
done
if [ -n "$asked" ]; then
  tries=0
  while [ "$tries" -lt 100 ]; do
    primary=$(timeout 2 redis-cli --no-auth-warning -h "$asked" -p 26379 \
      sentinel get-master-addr-by-name "$PIDS_SENTINEL_PRIMARY" 2>/dev/null | head -n 1)
    if [ -n "$primary" ] && [ "$primary" != "$SELF" ]; then
      local_cli replicaof "$primary" 6379 >/dev/null
      break
    fi
    tries=$((tries + 1))
    sleep 0.1
  done
fi
local_cli client unpause >/dev/null
exit 0
