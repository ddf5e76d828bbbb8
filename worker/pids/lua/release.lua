-- include: server_time worker_load claim_token pending_meta retention
-- Give a worker's tasks back: to pending (attempt is counted at the next claim),
-- or to the dead-letter set when no attempts are left. Used for expired leases
-- (only_expired = "1": each lease is re-checked here, atomically), for a worker
-- found dead or deleted, for what a draining worker could not finish, and for claims a
-- worker never got the reply of (it holds none of them).
-- KEYS[1] running        ZSET id -> lease deadline ms
-- KEYS[2] loads          HASH worker id -> held weight, "<worker>:n" -> held count
-- KEYS[3] claims         SET of ids held by the worker
-- KEYS[4] stats          HASH counters
-- KEYS[5] pending        ZSET id -> queue order
-- KEYS[6] pending_meta   HASH id -> placement metadata
-- KEYS[7] dead           ZSET id -> ms it was dead-lettered
-- KEYS[8] pending_by_weight ZSET id -> weight
-- KEYS[9] free_slots     ZSET worker id -> free slots
-- KEYS[10..]             pairs: task hash, its batch list (the task hash again if none), in the
--                        order of ARGV[6..]
-- ARGV[1] worker id   ARGV[2] "1" = only tasks whose lease has expired   ARGV[3] reason
-- ARGV[4] new-work channel   ARGV[5] done channel   ARGV[6..] task ids
-- Returns {requeued, dead_lettered}.
local now = server_now_ms()
local worker = ARGV[1]
local only_expired = ARGV[2] == '1'
local requeued, dead, released, count = 0, 0, 0, 0
for i = 10, #KEYS, 2 do
  local id = ARGV[6 + (i - 10) / 2]
  local task = redis.call('HMGET', KEYS[i], 'state', 'claim', 'weight', 'max_attempts',
    'order', 'priority', 'position', 'cancel_requested', 'seq', 'enqueued_at', 'retention')
  local attempt, _, _, claimed_by = parse_claim(task[2] or '')
  local lease = redis.call('ZSCORE', KEYS[1], id)
  local expired = lease and tonumber(lease) <= now
  if task[1] == 'running' and claimed_by == worker and (expired or not only_expired) then
    redis.call('ZREM', KEYS[1], id)
    redis.call('SREM', KEYS[3], id)
    released = released + (tonumber(task[3]) or 1)
    count = count + 1
    redis.call('HSET', KEYS[i], 'error', ARGV[3])
    if task[8] == '1' then
      redis.call('HSET', KEYS[i], 'state', 'cancelled', 'finished_at', now)
      redis.call('HINCRBY', KEYS[4], 'cancelled', 1)
      redis.call('PUBLISH', ARGV[5], id .. ':C')
      expire_final(task[11], KEYS[i], nil, KEYS[i + 1])
    elseif tonumber(attempt) >= (tonumber(task[4]) or 1) then
      redis.call('HSET', KEYS[i], 'state', 'failed', 'finished_at', now)
      redis.call('ZADD', KEYS[7], now, id)
      redis.call('HINCRBY', KEYS[4], 'failed', 1)
      redis.call('PUBLISH', ARGV[5], id .. ':F')
      expire_final(task[11], KEYS[i], nil, KEYS[i + 1])
      dead = dead + 1
    else
      redis.call('HSET', KEYS[i], 'state', 'pending')
      redis.call('ZADD', KEYS[5], tonumber(task[5]) or 0, id)
      index_by_weight(KEYS[8], id, task[3])
      redis.call('HSET', KEYS[6], id, pending_meta_text(task[5], task[3], task[6], task[7], task[9], task[10]))
      requeued = requeued + 1
    end
  elseif task[1] ~= 'running' or claimed_by ~= worker then
    redis.call('SREM', KEYS[3], id)  -- no longer this worker's: keep its claims set exact
  end
end
if count > 0 then
  change_worker_load(KEYS[2], KEYS[9], KEYS[3], worker, -released, -count)
  redis.call('HINCRBY', KEYS[4], 'released', count)
end
if requeued > 0 then
  redis.call('PUBLISH', ARGV[4], requeued)
end
return {requeued, dead}
