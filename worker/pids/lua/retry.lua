-- include: claim_token pending_meta
-- Send dead-lettered tasks back to the queue, fenced: a task goes back only if it is still
-- failed at the attempt the caller saw (a retry that raced another, or a task retried and
-- failed again since, is left alone). It gets ARGV[2] more attempts, counted on from its last
-- one, so its attempt numbers never repeat. It keeps its place in the queue order and its last
-- error until an attempt succeeds; its record and batch list stop expiring (retention.lua)
-- until it is final again.
-- KEYS[1] pending        ZSET id -> queue order
-- KEYS[2] pending_meta   HASH id -> placement metadata
-- KEYS[3] dead           ZSET id -> ms it was dead-lettered
-- KEYS[4] stats          HASH counters
-- KEYS[5] pending_by_weight ZSET id -> weight
-- KEYS[6..]              pairs: task hash, its batch list (the task hash again if none), in the
--                        order of the ids in ARGV
-- ARGV[1] new-work channel   ARGV[2] attempts to add (>= 1)
-- ARGV[3..] pairs: task id, the attempt the caller saw it fail at
-- Returns one word per task: "requeued", "stale" (failed at another attempt), "missing", or
-- the state it is in (left alone).
local more = tonumber(ARGV[2])
local outcomes = {}
local requeued = 0
for i = 6, #KEYS, 2 do
  local base = 3 + (i - 6)
  local id, seen = ARGV[base], ARGV[base + 1]
  local task = redis.call('HMGET', KEYS[i], 'state', 'claim', 'weight', 'order', 'priority', 'position',
    'seq', 'enqueued_at')
  local attempt = parse_claim(task[2] or '') or '0'
  if not task[1] then
    outcomes[#outcomes + 1] = 'missing'
  elseif task[1] ~= 'failed' then
    outcomes[#outcomes + 1] = task[1]
  elseif attempt ~= seen then
    outcomes[#outcomes + 1] = 'stale'
  else
    redis.call('HSET', KEYS[i], 'state', 'pending', 'finished_at', '', 'max_attempts', tonumber(attempt) + more)
    redis.call('PERSIST', KEYS[i])
    if KEYS[i + 1] ~= KEYS[i] then redis.call('PERSIST', KEYS[i + 1]) end
    redis.call('ZREM', KEYS[3], id)
    redis.call('ZADD', KEYS[1], tonumber(task[4]) or 0, id)
    index_by_weight(KEYS[5], id, task[3])
    redis.call('HSET', KEYS[2], id, pending_meta_text(task[4], task[3], task[5], task[6], task[7], task[8]))
    outcomes[#outcomes + 1] = 'requeued'
    requeued = requeued + 1
  end
end
if requeued > 0 then
  redis.call('HINCRBY', KEYS[4], 'dead_retried', requeued)
  redis.call('PUBLISH', ARGV[1], requeued)
end
return outcomes
