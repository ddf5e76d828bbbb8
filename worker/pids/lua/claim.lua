-- Claim tasks for one worker, atomically: a task is won only if still pending.
-- The candidates are tried in order until ARGV[3] are won, so a worker can send a
-- few more than it wants and lose nothing to a task another worker just took.
-- Each claim records the worker, server time, attempt number (the fencing token)
-- and lease deadline, and adds the task's weight to the worker's load (worker_load.lua).
-- KEYS[1] pending        ZSET id -> queue order
-- KEYS[2] pending_meta   HASH id -> placement metadata
-- KEYS[3] running        ZSET id -> lease deadline ms
-- KEYS[4] loads          HASH worker id -> held weight, "<worker>:n" -> held count
-- KEYS[5] claims         SET of ids held by this worker
-- KEYS[6] stats          HASH counters
-- KEYS[7] pending_by_weight ZSET id -> weight
-- KEYS[8] free_slots     ZSET worker id -> free slots
-- KEYS[9] idle           ZSET worker id -> ms it found the queue empty
-- KEYS[10..]             task hashes, in the order of ARGV[4..]
-- ARGV[1] worker id
-- ARGV[2] lease in ms
-- ARGV[3] the most tasks to win
-- ARGV[4..] candidate task ids
-- Returns a flat list, 7 values per won task: id attempt fn args kwargs timeout weight.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local worker = ARGV[1]
local deadline = now + tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local won = {}
local added = 0
local count = 0
for i = 10, #KEYS do
  if count == wanted then break end
  local id = ARGV[i - 6]
  if redis.call('ZREM', KEYS[1], id) == 1 then
    redis.call('HDEL', KEYS[2], id)
    redis.call('ZREM', KEYS[7], id)
    local spec = redis.call('HMGET', KEYS[i], 'fn', 'args', 'kwargs', 'timeout', 'weight', 'attempt', 'first_claimed_at')
    local attempt = (tonumber(spec[6]) or 0) + 1
    if spec[7] then
      redis.call('HSET', KEYS[i], 'state', 'running', 'worker', worker, 'claimed_at', now, 'lease_until', deadline,
        'attempt', attempt)
    else
      redis.call('HSET', KEYS[i], 'state', 'running', 'worker', worker, 'claimed_at', now, 'lease_until', deadline,
        'attempt', attempt, 'first_claimed_at', now)
    end
    redis.call('ZADD', KEYS[3], deadline, id)
    redis.call('SADD', KEYS[5], id)
    added = added + tonumber(spec[5])
    count = count + 1
    won[#won + 1] = id
    won[#won + 1] = attempt
    for j = 1, 5 do
      won[#won + 1] = spec[j]
    end
  end
end
if count > 0 then
  change_worker_load(KEYS[4], KEYS[8], KEYS[5], worker, added, count)
  redis.call('ZREM', KEYS[9], worker)
  redis.call('HINCRBY', KEYS[6], 'claimed', count)
end
return won
