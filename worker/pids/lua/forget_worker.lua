-- Remove a worker from the live table once it holds nothing (clean exit, or after
-- its tasks were released). Its completed-work totals are kept for statistics.
-- KEYS[1] workers   KEYS[2] loads   KEYS[3] claims   KEYS[4] draining   KEYS[5] free_slots   KEYS[6] deadlines
-- KEYS[7] idle
-- ARGV[1] worker id
-- Returns 1 if forgotten, 0 if it still holds tasks.
if redis.call('SCARD', KEYS[3]) > 0 then
  return 0
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1], ARGV[1] .. ':n')
redis.call('SREM', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
redis.call('ZREM', KEYS[7], ARGV[1])
return 1
