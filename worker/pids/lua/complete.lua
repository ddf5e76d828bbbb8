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
local accepted, stale, already = {}, nil, nil  -- stale and already: made when needed
local event, events = nil, nil  -- "id:size" of the first accepted task; of all, from the second
local n_accepted = 0  -- kept rather than asked (#t searches)
local batches = nil  -- batch list -> retention, set once per list (retention.lua);
                     -- made at the first task with a batch
local list_retention, finals, n_finals = ARGV[6], nil, 0  -- finals: made at the first listed task
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
    if not batches and KEYS[k + 2] ~= KEYS[k] then batches = {} end
    if result ~= 'null' then  -- no key for a null result: the client reads none as null
      if is_listed or task[5] == '' or not task[5] then  -- kept, or listed: no expiry of its own
        redis.call('SET', KEYS[k + 1], result)
      else  -- set to expire with its task (one SET with PX, not a SET and a PEXPIRE)
        redis.call('SET', KEYS[k + 1], result, 'PX', task[5])
      end
    end
    if is_listed then
      n_finals = n_finals + 1
      finals = finals or {}
      finals[n_finals] = listing .. id
      expire_batch(task[5], KEYS[k], KEYS[k + 2], batches)
    else
      expire_final(task[5], KEYS[k], nil, KEYS[k + 2], batches)
    end
    released = released + (tonumber(task[3]) or 1)
    n_accepted = n_accepted + 1
    accepted[n_accepted] = id
    if not event then event = id .. ':' .. size
    elseif events then events[n_accepted] = id .. ':' .. size
    else events = {event, id .. ':' .. size} end
  elseif task[2] == token and (task[1] == 'succeeded' or (task[1] == 'cancelled'
      and (redis.call('HGET', KEYS[k], 'result_size') or '') ~= '')) then
    -- a cancelled task's completion was recorded if it has a result size (only a completion
    -- sets one): one cancelled by a release or a failure is no completion of its last token
    already = already or {}
    already[#already + 1] = id
  else
    stale = stale or {}
    stale[#stale + 1] = id
  end
end
if n_finals > 0 and call_in_slices('RPUSH', KEYS[7], finals) > tonumber(ARGV[7]) then
  redis.call('LTRIM', KEYS[7], 0, -n_finals - 1)  -- the list is full: these tasks expire instead
  local listed = {}
  for _, entry in ipairs(finals) do listed[entry] = true end
  for k = 8, #KEYS, 3 do
    if listed[listing .. ARGV[k]] then expire_final(list_retention, KEYS[k], KEYS[k + 1], KEYS[k + 2], batches) end
  end
end
if batches then expire_batches(batches) end
if n_accepted > 0 then
  call_in_slices('ZREM', KEYS[1], accepted)  -- running, and this worker's claims: once for all
  call_in_slices('SREM', KEYS[3], accepted)
  change_worker_load(KEYS[2], KEYS[6], KEYS[3], worker, -released, -n_accepted)
  if n_accepted > cancelled then redis.call('HINCRBY', KEYS[4], 'succeeded', n_accepted - cancelled) end
  if cancelled > 0 then redis.call('HINCRBY', KEYS[4], 'cancelled', cancelled) end
  redis.call('PUBLISH', ARGV[2], events and table.concat(events, ' ') or event)
end
if ARGV[3] ~= '0' then
  redis.call('HINCRBY', KEYS[5], worker .. ':tasks', ARGV[3])
  redis.call('HINCRBYFLOAT', KEYS[5], worker .. ':work', ARGV[4])
  redis.call('HINCRBYFLOAT', KEYS[5], worker .. ':busy', ARGV[5])
end
if stale then
  redis.call('HINCRBY', KEYS[4], 'stale', #stale)
end
accepted[n_accepted + 1] = '|'
if stale then for _, id in ipairs(stale) do accepted[#accepted + 1] = id end end
accepted[#accepted + 1] = '|'
if already then for _, id in ipairs(already) do accepted[#accepted + 1] = id end end
return accepted
