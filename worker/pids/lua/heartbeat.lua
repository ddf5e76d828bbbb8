-- include: server_time epoch
-- A worker's heartbeat: publish its info with a deadline (its TTL, in server time),
-- renew the leases of the tasks it says it holds, and tell it whether it was asked to
-- drain. A claim whose reply the worker never got (connection lost) is not renewed; the worker
-- gives such claims back itself once it is connected again. The reply carries the data set's
-- epoch, so a worker notices when Redis lost its data.
-- KEYS[1] workers        HASH worker id -> JSON info
-- KEYS[2] running        ZSET id -> lease deadline ms
-- KEYS[3] claims         SET of ids held by this worker
-- KEYS[4] loads          HASH worker id -> held weight
-- KEYS[5] draining       SET of worker ids asked to drain
-- KEYS[6] free_slots     ZSET worker id -> free slots (the claim view reads its top)
-- KEYS[7] deadlines      ZSET worker id -> heartbeat deadline ms (finds dead workers)
-- KEYS[8] epoch          STRING the data set's epoch (epoch.lua)
-- ARGV[1] worker id   ARGV[2] info JSON (object)   ARGV[3] TTL ms   ARGV[4] lease ms
-- ARGV[5..] ids of the tasks the worker holds
-- Returns {now_ms, drain_requested (0/1), leases renewed, epoch}.
local now = server_now_ms()
local worker = ARGV[1]
local info = cjson.decode(ARGV[2])
info['deadline'] = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], worker, cjson.encode(info))
redis.call('HSETNX', KEYS[4], worker, 0)
redis.call('HSETNX', KEYS[4], worker .. ':n', 0)
redis.call('ZADD', KEYS[7], info['deadline'], worker)
local lease = now + tonumber(ARGV[4])
local renewed = 0
for i = 5, #ARGV do
  if redis.call('SISMEMBER', KEYS[3], ARGV[i]) == 1 then
    redis.call('ZADD', KEYS[2], 'XX', lease, ARGV[i])
    renewed = renewed + 1
  end
end
local drain = redis.call('SISMEMBER', KEYS[5], worker)
if drain == 1 or info['draining'] then
  redis.call('ZREM', KEYS[6], worker)
else
  -- the exact count, correcting any drift of the increments made by claim/complete/release
  local held = tonumber(redis.call('HGET', KEYS[4], worker .. ':n'))
  redis.call('ZADD', KEYS[6], (info['slots'] or 1) + (info['prefetch'] or 0) - held, worker)
end
return {now, drain, renewed, current_epoch(KEYS[8])}
