-- include: server_time
-- Delete the final tasks complete.lua listed, once due, in list order: each entry is taken off
-- the head while it is due and still the head (a second sweeper may have gone first). Its record
-- and result are deleted only if the record is still the one listed: final, without an expiry of
-- its own, and finished its retention before the entry's due. Anything else (retried, retained
-- with another retention or none, listed again after a later finish) is left to what changed it.
-- KEYS[1] finals  LIST "due ms|id"   KEYS[2i], KEYS[2i+1] the i-th entry's task hash, result key
-- ARGV[i] the entries, as read from the head of KEYS[1] (malformed ones are taken off, nothing else)
-- Returns {entries taken off the list, tasks deleted}.
local now = server_now_ms()
local final = {succeeded = true, failed = true, cancelled = true}
local popped, deleted = 0, 0
for i, entry in ipairs(ARGV) do
  local due = tonumber(string.match(entry, '^(%d+)|'))
  if due and due > now then break end
  if redis.call('LINDEX', KEYS[1], 0) ~= entry then break end
  redis.call('LPOP', KEYS[1])
  popped = popped + 1
  if due then
    local task_key, result_key = KEYS[2 * i], KEYS[2 * i + 1]
    local task = redis.call('HMGET', task_key, 'state', 'finished_at', 'retention')
    local finished, retention = tonumber(task[2]), tonumber(task[3])
    if final[task[1]] and finished and retention and finished + retention == due
        and redis.call('PTTL', task_key) == -1 then
      redis.call('UNLINK', task_key, result_key)
      deleted = deleted + 1
    end
  end
end
return {popped, deleted}
