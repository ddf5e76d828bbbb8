-- include: server_time worker_load claim_token pending_meta retention
-- Record a failed attempt, fenced like complete.lua by the whole claim token. A retryable
-- failure with attempts left is scheduled again after a backoff; otherwise the task goes to
-- the dead-letter set with its last error (and expires after its retention, retention.lua).
-- KEYS[1] running        ZSET id -> lease deadline ms
-- KEYS[2] loads          HASH worker id -> held weight, "<worker>:n" -> held count
-- KEYS[3] claims         SET of ids held by this worker
-- KEYS[4] stats          HASH counters
-- KEYS[5] pending_meta   HASH id -> placement metadata
-- KEYS[6] scheduled      ZSET id -> ms when it may run again
-- KEYS[7] dead           ZSET id -> ms it was dead-lettered
-- KEYS[8] task           HASH
-- KEYS[9] worker_totals  HASH "<worker>:tasks|work|busy"
-- KEYS[10] free_slots    ZSET worker id -> free slots
-- KEYS[11] batch         LIST of the task's batch (the task hash again if none)
-- ARGV[1] worker id   ARGV[2] task id   ARGV[3] claim token   ARGV[4] error text
-- ARGV[5] "1" if retryable   ARGV[6] backoff ms   ARGV[7] done channel   ARGV[8] busy seconds
-- Returns "scheduled", "failed", "cancelled" or "stale".
local now = server_now_ms()
local worker, id = ARGV[1], ARGV[2]
local task = redis.call('HMGET', KEYS[8], 'state', 'claim', 'weight', 'max_attempts',
  'order', 'priority', 'position', 'cancel_requested', 'seq', 'enqueued_at', 'retention')
if task[1] ~= 'running' or task[2] ~= ARGV[3] then
  redis.call('HINCRBY', KEYS[4], 'stale', 1)
  return 'stale'
end
local attempt = parse_claim(task[2])
redis.call('ZREM', KEYS[1], id)
redis.call('SREM', KEYS[3], id)
change_worker_load(KEYS[2], KEYS[10], KEYS[3], worker, -(tonumber(task[3]) or 1), -1)
redis.call('HINCRBYFLOAT', KEYS[9], worker .. ':busy', tonumber(ARGV[8]))
redis.call('HSET', KEYS[8], 'error', ARGV[4])
if task[8] == '1' then
  redis.call('HSET', KEYS[8], 'state', 'cancelled', 'finished_at', now)
  redis.call('HINCRBY', KEYS[4], 'cancelled', 1)
  redis.call('PUBLISH', ARGV[7], id .. ':C')
  expire_final(task[11], KEYS[8], nil, KEYS[11])
  return 'cancelled'
end
if ARGV[5] == '1' and tonumber(attempt) < (tonumber(task[4]) or 1) then
  redis.call('HSET', KEYS[8], 'state', 'scheduled')
  redis.call('HSET', KEYS[5], id, pending_meta_text(task[5], task[3], task[6], task[7], task[9], task[10]))
  redis.call('ZADD', KEYS[6], now + tonumber(ARGV[6]), id)
  redis.call('HINCRBY', KEYS[4], 'retried', 1)
  return 'scheduled'
end
redis.call('HSET', KEYS[8], 'state', 'failed', 'finished_at', now)
redis.call('ZADD', KEYS[7], now, id)
redis.call('HINCRBY', KEYS[4], 'failed', 1)
redis.call('PUBLISH', ARGV[7], id .. ':F')
expire_final(task[11], KEYS[8], nil, KEYS[11])
return 'failed'
