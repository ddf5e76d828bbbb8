-- Record successful completions of one worker, fenced: a completion counts only
-- if the task is still running under this worker and attempt, so a late duplicate
-- of an older attempt can never overwrite the newer one.
-- KEYS[1] running        ZSET id -> lease deadline ms
-- KEYS[2] loads          HASH worker id -> held weight, "<worker>:n" -> held count
-- KEYS[3] claims         SET of ids held by this worker
-- KEYS[4] stats          HASH counters
-- KEYS[5] worker_totals  HASH "<worker>:tasks|work|busy"
-- KEYS[6] free_slots     ZSET worker id -> free slots
-- KEYS[7..]              pairs: task hash, result key (in the order of the tasks in ARGV)
-- ARGV[1] worker id
-- ARGV[2] done channel
-- ARGV[3..] per task, 4 values: id attempt result_json busy_seconds
-- Returns {accepted ids..., "|", stale ids...}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local worker = ARGV[1]
local now_text = string.format('%d', now)
local accepted, stale, events = {}, {}, {}
local released, work, busy = 0, 0, 0
for k = 7, #KEYS, 2 do
  local base = 3 + (k - 7) * 2
  local id, attempt, result, seconds = ARGV[base], ARGV[base + 1], ARGV[base + 2], ARGV[base + 3]
  local task = redis.call('HMGET', KEYS[k], 'state', 'worker', 'attempt', 'weight', 'cancel_requested')
  if task[1] == 'running' and task[2] == worker and task[3] == attempt then
    local state = 'succeeded'
    if task[5] == '1' then state = 'cancelled' end
    redis.call('HSET', KEYS[k], 'state', state, 'finished_at', now_text, 'result_size', #result)
    if result ~= 'null' then
      redis.call('SET', KEYS[k + 1], result)  -- no key for a null result: the client reads none as null
    end
    released = released + tonumber(task[4])
    work = work + tonumber(task[4])
    busy = busy + tonumber(seconds)
    accepted[#accepted + 1] = id
    events[#events + 1] = id .. ':' .. #result
  else
    stale[#stale + 1] = id
  end
end
if #accepted > 0 then
  call_in_slices('ZREM', KEYS[1], accepted)  -- running, and this worker's claims: once for all
  call_in_slices('SREM', KEYS[3], accepted)
  change_worker_load(KEYS[2], KEYS[6], KEYS[3], worker, -released, -#accepted)
  redis.call('HINCRBY', KEYS[4], 'succeeded', #accepted)
  redis.call('HINCRBY', KEYS[5], worker .. ':tasks', #accepted)
  redis.call('HINCRBYFLOAT', KEYS[5], worker .. ':work', work)
  redis.call('HINCRBYFLOAT', KEYS[5], worker .. ':busy', busy)
  redis.call('PUBLISH', ARGV[2], table.concat(events, ' '))
end
if #stale > 0 then
  redis.call('HINCRBY', KEYS[4], 'stale', #stale)
end
accepted[#accepted + 1] = '|'
for _, id in ipairs(stale) do accepted[#accepted + 1] = id end
return accepted
