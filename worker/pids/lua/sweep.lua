-- include: server_time
-- Delete the final tasks complete.lua listed, once due, in list order: the entries given are
-- taken off the head as far as they are due and still the head's (a second sweeper may have gone
-- first), in one LTRIM. An entry's record and result are deleted only if the record is still the
-- one listed: final, finished when the entry says, with the entry's retention and no expiry of
-- its own. Anything else (retried, retained with another retention or none, finished again
-- later) is left to what changed it.
-- KEYS[1] finals  LIST "<finished ms>|<retention ms>|<id>"
-- KEYS[2i], KEYS[2i+1] the i-th entry's task hash and result key
-- ARGV[i] the entries, as read from the head of KEYS[1] (malformed ones are taken off, nothing else)
-- Returns {entries taken off the list, tasks deleted}.
local now = server_now_ms()
local final = {succeeded = true, failed = true, cancelled = true}
local head = redis.call('LRANGE', KEYS[1], 0, #ARGV - 1)
local popped, deleted = 0, 0
for i, entry in ipairs(ARGV) do
  if head[i] ~= entry then break end
  local finished, retention = string.match(entry, '^(%d+)|(%d+)|')
  if finished and tonumber(finished) + tonumber(retention) > now then break end
  popped = i
  if finished then
    local task_key = KEYS[2 * i]
    local task = redis.call('HMGET', task_key, 'state', 'finished_at', 'retention')
    if final[task[1]] and task[2] == finished and task[3] == retention and redis.call('PTTL', task_key) == -1 then
      redis.call('UNLINK', task_key, KEYS[2 * i + 1])
      deleted = deleted + 1
    end
  end
end
if popped > 0 then redis.call('LTRIM', KEYS[1], popped, -1) end
return {popped, deleted}
