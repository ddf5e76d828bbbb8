-- include: server_time
-- Delete the final tasks complete.lua listed, once due, in list order: each entry is taken off
-- the head while it is due and still the head (a second sweeper may have gone first). Its record
-- and result are deleted only if the record is still the one listed: final, finished when the
-- entry says, with the entry's retention and no expiry of its own. Anything else (retried,
-- retained with another retention or none, finished again later) is left to what changed it.
-- KEYS[1] finals  LIST "<finished ms>|<retention ms>|<id>"
-- KEYS[2i], KEYS[2i+1] the i-th entry's task hash and result key
-- ARGV[i] the entries, as read from the head of KEYS[1] (malformed ones are taken off, nothing else)
-- Returns {entries taken off the list, tasks deleted}.
local now = server_now_ms()
local final = {succeeded = true, failed = true, cancelled = true}
local popped, deleted = 0, 0
for i, entry in ipairs(ARGV) do
  local finished, retention = string.match(entry, '^(%d+)|(%d+)|')
  if finished and tonumber(finished) + tonumber(retention) > now then break end
  if redis.call('LINDEX', KEYS[1], 0) ~= entry then break end
  redis.call('LPOP', KEYS[1])
  popped = popped + 1
  if finished then
    local task_key = KEYS[2 * i]
    local task = redis.call('HMGET', task_key, 'state', 'finished_at', 'retention')
    if final[task[1]] and task[2] == finished and task[3] == retention and redis.call('PTTL', task_key) == -1 then
      redis.call('UNLINK', task_key, KEYS[2 * i + 1])
      deleted = deleted + 1
    end
  end
end
return {popped, deleted}
