-- include: server_time retention
-- Cancel a task. A pending or scheduled task is removed from the queue at once;
-- a running one is marked, and ends cancelled when its attempt finishes.
-- KEYS[1] pending   KEYS[2] pending_meta   KEYS[3] scheduled   KEYS[4] stats   KEYS[5] task
-- KEYS[6] pending_by_weight   KEYS[7] the task's batch list (the task hash again if none)
-- ARGV[1] task id   ARGV[2] done channel
-- Returns the state after the call: "cancelled", "cancelling", the final state, or "missing".
local now = server_now_ms()
local task = redis.call('HMGET', KEYS[5], 'state', 'retention')
local state = task[1]
if not state then
  return 'missing'
end
if state == 'pending' or state == 'scheduled' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('ZREM', KEYS[6], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('HSET', KEYS[5], 'state', 'cancelled', 'finished_at', now)
  redis.call('HINCRBY', KEYS[4], 'cancelled', 1)
  redis.call('PUBLISH', ARGV[2], ARGV[1] .. ':C')
  expire_final(task[2], KEYS[5], nil, KEYS[7])
  return 'cancelled'
end
if state == 'running' then
  redis.call('HSET', KEYS[5], 'cancel_requested', 1)
  return 'cancelling'
end
return state
