-- One round trip for a claim cycle: promote retries whose backoff is over, then read
-- the window (the first K - H pending tasks in queue order plus the H heaviest) and
-- the worker table.
-- KEYS[1] pending        ZSET id -> queue order
-- KEYS[2] pending_meta   HASH id -> "order\tweight\tpriority\tposition\tseq"
-- KEYS[3] scheduled      ZSET id -> ms when it may run again
-- KEYS[4] workers        HASH worker id -> JSON info (with its heartbeat deadline)
-- KEYS[5] loads          HASH worker id -> held weight
-- KEYS[6] pending_by_weight ZSET id -> weight
-- ARGV[1] window size K   ARGV[2] H, how many of the K are the heaviest pending
-- Returns {now_ms, ids, metas, workers (flat), loads (flat)}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(due) do
  local meta = redis.call('HGET', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
  if meta then
    local order, weight = string.match(meta, '^([^\t]*)\t([^\t]*)')
    redis.call('ZADD', KEYS[1], tonumber(order), id)
    redis.call('ZADD', KEYS[6], tonumber(weight), id)
  end
end
local heavy = tonumber(ARGV[2])
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - heavy - 1)
if heavy > 0 then
  local seen = {}
  for _, id in ipairs(ids) do seen[id] = true end
  for _, id in ipairs(redis.call('ZREVRANGE', KEYS[6], 0, heavy - 1)) do
    if not seen[id] then ids[#ids + 1] = id end
  end
end
local metas = {}
if #ids > 0 then
  metas = redis.call('HMGET', KEYS[2], unpack(ids))
end
return {now, ids, metas, redis.call('HGETALL', KEYS[4]), redis.call('HGETALL', KEYS[5])}
