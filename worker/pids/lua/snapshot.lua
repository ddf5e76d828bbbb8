-- One round trip for a claim cycle: promote retries whose backoff is over,
-- then read the first K pending tasks and the worker table.
-- KEYS[1] pending        ZSET id -> queue order
-- KEYS[2] pending_meta   HASH id -> "order\tweight\tpriority\tposition"
-- KEYS[3] scheduled      ZSET id -> ms when it may run again
-- KEYS[4] workers        HASH worker id -> JSON info (with its heartbeat deadline)
-- KEYS[5] loads          HASH worker id -> held weight
-- ARGV[1] window size K
-- Returns {now_ms, ids, metas, workers (flat), loads (flat)}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(due) do
  local meta = redis.call('HGET', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
  if meta then
    local order = tonumber(string.match(meta, '^([^\t]*)'))
    redis.call('ZADD', KEYS[1], order, id)
  end
end
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
local metas = {}
if #ids > 0 then
  metas = redis.call('HMGET', KEYS[2], unpack(ids))
end
return {now, ids, metas, redis.call('HGETALL', KEYS[4]), redis.call('HGETALL', KEYS[5])}
