-- include: server_time worker_load in_slices claim_token task_spec
-- Claim tasks for one worker, atomically: a task is won only if still pending.
-- The candidates are tried in order until ARGV[3] are won, so a worker can send a
-- few more than it wants and lose nothing to a task another worker just took.
-- Each claim writes the task's fencing token into its claim field (claim_token.lua: attempt,
-- server time, epoch, worker; the first claim's time moves to first_claimed_at at the second),
-- gives the task a lease (its score in running), and adds its weight to the worker's load
-- (worker_load.lua). The writes to the shared sets are made once per call, for
-- all the tasks won (in_slices.lua).
-- KEYS[1] pending        ZSET id -> queue order
-- KEYS[2] pending_meta   HASH id -> placement metadata
-- KEYS[3] running        ZSET id -> lease deadline ms
-- KEYS[4] loads          HASH worker id -> held weight, "<worker>:n" -> held count
-- KEYS[5] claims         SET of ids held by this worker
-- KEYS[6] pending_by_weight ZSET id -> weight, of the tasks heavier than the default 1
-- KEYS[7] free_slots     ZSET worker id -> free slots
-- KEYS[8] idle           ZSET worker id -> ms it found the queue empty
-- KEYS[9..]              task hashes, in the order of ARGV[5..]
-- ARGV[1] worker id
-- ARGV[2] lease in ms
-- ARGV[3] the most tasks to win
-- ARGV[4] '1' if the worker may be in the idle set (its last snapshot found no pending task)
-- ARGV[5..] candidate task ids
-- Returns {"|<ms>", "|<worker>", then 5 values per won task: id attempt spec weight epoch}: spec
-- is "fn<TAB>timeout<TAB>batch<TAB>kwargs<TAB>args" (task_spec.lua; a record written before it
-- existed has its fields packed here), a task's token "<attempt>|<ms>|<epoch>|<worker>", its epoch
-- being the one its data set had when it was enqueued (kept in its hash: no other key is read).
local now = server_now_ms()
local now_text = string.format('%d', now)
local worker = ARGV[1]
local deadline_text = string.format('%d', now + tonumber(ARGV[2]))  -- formatted once, not per task
local at, by = '|' .. now_text .. '|', '|' .. worker
local wanted = tonumber(ARGV[3])
local won, ids, leases, heavy = {'|' .. now_text, by}, {}, {}, nil  -- heavy: made when needed
local n_won, n_ids, n_leases = 2, 0, 0  -- the tables' lengths, kept rather than asked (#t searches)
local added = 0
for i = 9, #KEYS do
  if n_ids == wanted then break end
  local id = ARGV[i - 4]
  if redis.call('ZREM', KEYS[1], id) == 1 then
    local task = redis.call('HMGET', KEYS[i], 'spec', 'weight', 'epoch', 'claim')
    if not task[1] then  -- a record written before spec existed: its fields, packed as spec
      local f = redis.call('HMGET', KEYS[i], 'fn', 'timeout', 'batch', 'kwargs', 'args')
      if f[1] then task[1] = task_spec(f[1], f[2] or '', f[3] or '', f[4] or '{}', f[5] or '[]') end
    end
    if not task[1] then  -- queued without a record (a data set restored in part): drop the entry
      redis.call('HDEL', KEYS[2], id)
      redis.call('ZREM', KEYS[6], id)
    else
      local last_attempt, last_ms = parse_claim(task[4])
      local attempt = (tonumber(last_attempt) or 0) + 1
      local epoch = task[3] or '0'  -- a record written before epochs existed
      local token = attempt .. at .. epoch .. by
      if attempt == 2 then  -- the first claim's time, kept once the claim field moves on
        redis.call('HSET', KEYS[i], 'state', 'running', 'claim', token, 'first_claimed_at', last_ms)
      else
        redis.call('HSET', KEYS[i], 'state', 'running', 'claim', token)
      end
      local weight = tonumber(task[2]) or 1
      added = added + weight
      if weight > 1 then heavy = heavy or {}; heavy[#heavy + 1] = id end  -- indexed by weight (pending_meta.lua's rule, inline: per task)
      n_ids = n_ids + 1
      ids[n_ids] = id
      leases[n_leases + 1], leases[n_leases + 2] = deadline_text, id
      n_leases = n_leases + 2
      won[n_won + 1], won[n_won + 2], won[n_won + 3], won[n_won + 4] = id, attempt, task[1], task[2]
      won[n_won + 5] = epoch
      n_won = n_won + 5
    end
  end
end
if n_ids > 0 then
  call_in_slices('HDEL', KEYS[2], ids)
  if heavy then call_in_slices('ZREM', KEYS[6], heavy) end
  call_in_slices('ZADD', KEYS[3], leases)
  call_in_slices('SADD', KEYS[5], ids)
  change_worker_load(KEYS[4], KEYS[7], KEYS[5], worker, added, n_ids)
  if ARGV[4] == '1' then redis.call('ZREM', KEYS[8], worker) end
end
return won
