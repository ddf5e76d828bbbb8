-- include: server_time pending_meta
-- Queue the retries whose backoff is over: each goes from scheduled back to pending, with its
-- state, in its old place in the queue (its order kept in pending_meta). Run by the reaper's turn,
-- so the snapshot reads no task it has not been given.
-- KEYS[1] scheduled      ZSET id -> ms when it may run again
-- KEYS[2] pending        ZSET id -> queue order
-- KEYS[3] pending_meta   HASH id -> placement metadata
-- KEYS[4] pending_by_weight ZSET id -> weight, of the tasks heavier than the default 1
-- KEYS[5..]              task hashes, in the order of ARGV[1..]
-- ARGV[1..] ids of scheduled tasks (those not due yet are left alone)
-- Returns the number queued.
local now = server_now_ms()
local queued = 0
for i = 5, #KEYS do
  local id = ARGV[i - 4]
  local due = redis.call('ZSCORE', KEYS[1], id)
  if due and tonumber(due) <= now then
    redis.call('ZREM', KEYS[1], id)
    local state = redis.call('HGET', KEYS[i], 'state')
    local order, weight = string.match(redis.call('HGET', KEYS[3], id) or '', '^([^\t]*)\t([^\t]*)')
    if state == 'scheduled' and tonumber(order) then  -- (a record gone or broken is not queued)
      redis.call('ZADD', KEYS[2], tonumber(order), id)
      index_by_weight(KEYS[4], id, weight)
      redis.call('HSET', KEYS[i], 'state', 'pending')
      queued = queued + 1
    else
      redis.call('HDEL', KEYS[3], id)
    end
  end
end
return queued
