-- The cluster's Redis epoch: an id for its data set, made (from the server clock, in µs) by the
-- first script that needs it in a Redis that has none, i.e. one that started empty. Claims
-- carry it in their token, so nothing claimed before the data was lost can complete after.
-- Included (`-- include:`) by every script that makes or reports claims.
local function current_epoch(key)
  local epoch = redis.call('GET', key)
  if not epoch then
    local t = redis.call('TIME')
    epoch = t[1] .. string.format('%06d', tonumber(t[2]))
    redis.call('SET', key, epoch)
  end
  return epoch
end
