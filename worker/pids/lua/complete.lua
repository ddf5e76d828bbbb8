-- include: server_time worker_load in_slices retention
-- Record successful completions of one worker, fenced: a completion counts only if the task is
-- still running under exactly the claim token it was claimed with, so a late duplicate of an
-- older attempt, or of a claim made before the data set was lost, never overwrites anything.
-- The same token sent again after a lost reply is reported as already done, and changes nothing.
-- A task cancelled while it ran and then completed ends cancelled, and is counted so.
-- KEYS[1] running        ZSET id -> lease deadline ms
-- KEYS[2] loads          HASH worker id -> held weight, "<worker>:n" -> held count
-- KEYS[3] claims         SET of ids held by this worker
-- KEYS[4] stats          HASH counters
-- KEYS[5] worker_totals  HASH "<worker>:tasks|work|busy" -> completed count, weight and busy seconds
-- KEYS[6] free_slots     ZSET worker id -> free slots
-- KEYS[7] finals         LIST "<finished ms>|<retention ms>|<id>" for sweep.lua, in order
-- KEYS[8..]              triples: task hash, result key, batch list (the task hash again if none)
-- ARGV[1] worker id
-- ARGV[2] done channel
-- ARGV[3..5] tasks, work, busy seconds to add to the worker's totals ('0' tasks: none); the
--           worker sums its accepted completions and sends them every few cycles
-- ARGV[6] the worker's retention ms ('' none): a task with this retention is listed in KEYS[7]
--         rather than given expiries (retention.lua)
-- ARGV[7] the most entries KEYS[7] may hold: a call that would go beyond gives its tasks
--         expiries instead (a sweep left behind)
-- ARGV[8..] per task, 3 values: id token result_json
-- Returns {accepted ids..., "|", stale ids..., "|", ids already completed with this token...}.
local now = server_now_ms()
local worker = ARGV[1]
local now_text = string.format('%d', now)
local accepted, stale, already, events = {}, {}, {}, {}
local n_accepted = 0  -- kept rather than asked (#t searches)
local batches = {}  -- batch list -> retention, set once per list (retention.lua)
local list_retention, finals, listed_at, n_finals = ARGV[6], {}, {}, 0
local listing = now_text .. '|' .. list_retention .. '|'
local released, cancelled = 0, 0
for k = 8, #KEYS, 3 do  -- a task's keys and arguments start at the same index
  local id, token, result = ARGV[k], ARGV[k + 1], ARGV[k + 2]
  local task = redis.call('HMGET', KEYS[k], 'state', 'claim', 'weight', 'cancel_requested', 'retention')
  if task[1] == 'running' and task[2] == token then
    local state = 'succeeded'
    if task[4] == '1' then  -- cancelled while it ran: it ends cancelled, counted as such
      state = 'cancelled'
      cancelled = cancelled + 1
    end
    local size = tostring(#result)
    if string.byte(token, 1) == 49 and string.byte(token, 2) == 124 then  -- "1|": a first attempt has no error
      redis.call('HSET', KEYS[k], 'state', state, 'finished_at', now_text, 'result_size', size)
    else  -- a release's or failure's reason from an earlier attempt is no error of this one
      redis.call('HSET', KEYS[k], 'state', state, 'finished_at', now_text, 'result_size', size, 'error', '')
    end
    local is_listed = list_retention ~= '' and task[5] == list_retention
    if result ~= 'null' then  -- no key for a null result: the client reads none as null
      set_final(KEYS[k + 1], result, is_listed and '' or task[5])
    end
    if is_listed then
      n_finals = n_finals + 1
      finals[n_finals], listed_at[n_finals] = listing .. id, k
      expire_batch(task[5], KEYS[k], KEYS[k + 2], batches)
    else
      expire_final(task[5], KEYS[k], nil, KEYS[k + 2], batches)
    end
    released = released + (tonumber(task[3]) or 1)
    n_accepted = n_accepted + 1
    accepted[n_accepted] = id
    events[n_accepted] = id .. ':' .. size
  elseif task[2] == token and (task[1] == 'succeeded' or (task[1] == 'cancelled'
      and (redis.call('HGET', KEYS[k], 'result_size') or '') ~= '')) then
    -- a cancelled task's completion was recorded if it has a result size (only a completion
    -- sets one): one cancelled by a release or a failure is no completion of its last token
    already[#already + 1] = id
  else
    stale[#stale + 1] = id
  end
end
if n_finals > 0 and call_in_slices('RPUSH', KEYS[7], finals) > tonumber(ARGV[7]) then
  redis.call('LTRIM', KEYS[7], 0, -n_finals - 1)  -- the list is full: these tasks expire instead
  for _, j in ipairs(listed_at) do expire_final(list_retention, KEYS[j], KEYS[j + 1], KEYS[j + 2], batches) end
end
expire_batches(batches)
if n_accepted > 0 then
  call_in_slices('ZREM', KEYS[1], accepted)  -- running, and this worker's claims: once for all
  call_in_slices('SREM', KEYS[3], accepted)
  change_worker_load(KEYS[2], KEYS[6], KEYS[3], worker, -released, -n_accepted)
  if n_accepted > cancelled then redis.call('HINCRBY', KEYS[4], 'succeeded', n_accepted - cancelled) end
  if cancelled > 0 then redis.call('HINCRBY', KEYS[4], 'cancelled', cancelled) end
  redis.call('PUBLISH', ARGV[2], table.concat(events, ' '))
end
if ARGV[3] ~= '0' then
  redis.call('HINCRBY', KEYS[5], worker .. ':tasks', ARGV[3])
  redis.call('HINCRBYFLOAT', KEYS[5], worker .. ':work', ARGV[4])
  redis.call('HINCRBYFLOAT', KEYS[5], worker .. ':busy', ARGV[5])
end
if #stale > 0 then
  redis.call('HINCRBY', KEYS[4], 'stale', #stale)
end
accepted[n_accepted + 1] = '|'
for _, id in ipairs(stale) do accepted[#accepted + 1] = id end
accepted[#accepted + 1] = '|'
for _, id in ipairs(already) do accepted[#accepted + 1] = id end
return accepted
