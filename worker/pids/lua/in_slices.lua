-- A variadic command (HDEL, ZREM, ZADD, SADD...) over a list of any length, in slices of
-- 1000 values (an even number, so ZADD's score/member pairs stay together): Lua's unpack
-- passes at most a few thousand values in one call. Returns the last slice's reply.
local function call_in_slices(command, key, values)
  local reply
  for first = 1, #values, 1000 do
    reply = redis.call(command, key, unpack(values, first, math.min(first + 999, #values)))
  end
  return reply
end
