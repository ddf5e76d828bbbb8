# Shared by redis-ha.sh and sentinel.sh (sourced), in the pods of a managed Redis with Sentinel.
# Environment (set by the operator): POD_NAME, PIDS_REDIS_SET (the StatefulSet), PIDS_REDIS_PODS
# (its headless Service's domain), PIDS_REDIS_REPLICAS, PIDS_SENTINEL_PRIMARY (the name the
# Sentinels monitor), REDISCLI_AUTH (the password, read by redis-cli).
SELF="$POD_NAME.$PIDS_REDIS_PODS"
SEED="$PIDS_REDIS_SET-0.$PIDS_REDIS_PODS"
SENTINEL_DIR=/data/sentinel
SENTINEL_CONF="$SENTINEL_DIR/sentinel.conf"

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

# The primary as the first Sentinel that answers names it (the Sentinels of every pod are asked).
ask_sentinels() {
  i=0
  while [ "$i" -lt "$PIDS_REDIS_REPLICAS" ]; do
    answer=$(timeout 2 redis-cli --no-auth-warning -h "$PIDS_REDIS_SET-$i.$PIDS_REDIS_PODS" -p 26379 \
      sentinel get-master-addr-by-name "$PIDS_SENTINEL_PRIMARY" 2>/dev/null | head -n 1) || answer=""
    case "$answer" in
      "" | *" "*) ;;  # no answer, or an error reply
      *) echo "$answer"; return 0 ;;
    esac
    i=$((i + 1))
  done
  return 1
}

# Who is primary: the running Sentinels' view; else what this pod's Sentinel last wrote (its
# configuration survives on the data volume); else, on a first start, pod 0.
current_primary() {
  if ask_sentinels; then return 0; fi
  if [ -s "$SENTINEL_CONF" ]; then
    known=$(sed -n "s/^sentinel monitor $PIDS_SENTINEL_PRIMARY \([^ ]*\) .*/\1/p" "$SENTINEL_CONF")
    if [ -n "$known" ]; then echo "$known"; return 0; fi
  fi
  echo "$SEED"
}
