-- include: server_time
-- Remove a worker from the live table once it holds nothing (clean exit, or after its tasks
-- were released). Its completed-work totals are kept for statistics, but not forever: of the
-- workers that left, the ARGV[2] most recent keep totals of their own and the older ones are
-- added to one entry, ARGV[3], so worker_totals stays bounded under pod churn.
-- KEYS[1] workers   KEYS[2] loads   KEYS[3] claims   KEYS[4] draining   KEYS[5] free_slots   KEYS[6] deadlines
-- KEYS[7] idle   KEYS[8] worker_totals   KEYS[9] departed (ZSET worker id -> ms it left)
-- ARGV[1] worker id   ARGV[2] how many departed workers keep their own totals   ARGV[3] the entry of the rest
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
redis.call('ZADD', KEYS[9], server_now_ms(), ARGV[1])
local over = redis.call('ZCARD', KEYS[9]) - tonumber(ARGV[2])
if over > 0 then
  local oldest = redis.call('ZPOPMIN', KEYS[9], over)  -- {id, ms, id, ms, ...}
  for i = 1, #oldest, 2 do
    local w = oldest[i]
    if redis.call('HEXISTS', KEYS[1], w) == 0 then  -- a worker id back in the table keeps its own
      local t = redis.call('HMGET', KEYS[8], w .. ':tasks', w .. ':work', w .. ':busy')
      if t[1] then redis.call('HINCRBY', KEYS[8], ARGV[3] .. ':tasks', t[1]) end
      if t[2] then redis.call('HINCRBYFLOAT', KEYS[8], ARGV[3] .. ':work', t[2]) end
      if t[3] then redis.call('HINCRBYFLOAT', KEYS[8], ARGV[3] .. ':busy', t[3]) end
      redis.call('HDEL', KEYS[8], w .. ':tasks', w .. ':work', w .. ':busy')
    end
  end
end
return 1
