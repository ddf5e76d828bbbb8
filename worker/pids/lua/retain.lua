-- include: retention
-- Set how long tasks stay once final (the operator keeps a PidsTask's tasks while the object
-- exists, and hands them to this when it is deleted): each task's retention field becomes
-- ARGV[1]; a task already final expires that long from now ('' keeps it until deleted).
-- KEYS[3i-2] task   KEYS[3i-1] its result   KEYS[3i] its batch list (the task hash again if none)
-- ARGV[1] retention ms, or ''
-- Returns how many of the tasks exist.
local found = 0
local batches = {}
for i = 1, #KEYS, 3 do
  local state = redis.call('HGET', KEYS[i], 'state')
  if state then
    found = found + 1
    redis.call('HSET', KEYS[i], 'retention', ARGV[1])
    if state == 'succeeded' or state == 'failed' or state == 'cancelled' then
      if ARGV[1] == '' then
        redis.call('PERSIST', KEYS[i])
        redis.call('PERSIST', KEYS[i + 1])
      else
        expire_final(ARGV[1], KEYS[i], KEYS[i + 1], KEYS[i + 2], batches)
      end
    end
  end
end
expire_batches(batches)
return found
