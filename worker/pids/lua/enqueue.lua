-- include: server_time epoch pending_meta task_spec
-- Enqueue tasks idempotently: a task id that already exists is left untouched.
-- KEYS[1] pending        ZSET id -> queue order
-- KEYS[2] pending_meta   HASH id -> "order\tweight\tpriority\tposition\tseq\tenqueued_ms"
-- KEYS[3] stats          HASH counters
-- KEYS[4] batch          LIST of the batch's ids (written only when ARGV[3] is "1")
-- KEYS[5] pending_by_weight ZSET id -> weight, of the tasks heavier than the default 1
--                        (pending_meta.lua; the window also holds the heaviest)
-- KEYS[6] idle           ZSET worker id -> ms it found the queue empty
-- KEYS[7] epoch          STRING the data set's epoch (epoch.lua)
-- KEYS[8..]              task hashes, one per task
-- ARGV[1] new-work channel; an idle worker listens on "<channel>:<worker id>"
-- ARGV[2] number of fields per task (F)
-- ARGV[3] "1" to append created ids to KEYS[4]
-- ARGV[4..] per task, F values: id fn args kwargs weight priority position max_attempts timeout
--           batch retention_ms ('' keeps the task until deleted)
-- Returns {tasks created, epoch}.
local now = server_now_ms()
local epoch = current_epoch(KEYS[7])
local fields = tonumber(ARGV[2])
local use_batch = ARGV[3] == '1'
local created = 0
for i = 8, #KEYS do
  local base = 4 + (i - 8) * fields
  local id = ARGV[base]
  if redis.call('EXISTS', KEYS[i]) == 0 then
    local priority = tonumber(ARGV[base + 5])
    -- queue order: priority first, then enqueue sequence (FIFO, also within one batch)
    local seq = redis.call('HINCRBY', KEYS[3], 'seq', 1)
    local order = string.format('%.0f', seq - priority * 1099511627776)
    -- A small hash is one flat list that Redis scans from the front for every field read or
    -- written, and a field it lacks costs a scan to the end. So the fields that claim and
    -- complete read and write come first, what a claim hands the worker is one field (spec,
    -- task_spec.lua), and the fields set later exist from the start. fn and batch stand
    -- alone too, for listings that should not read the arguments.
    redis.call('HSET', KEYS[i],
      'state', 'pending', 'claim', '', 'weight', ARGV[base + 4],
      'spec', task_spec(ARGV[base + 1], ARGV[base + 8], ARGV[base + 9], ARGV[base + 3], ARGV[base + 2]),
      'epoch', epoch, 'cancel_requested', '0', 'retention', ARGV[base + 10],
      'finished_at', '', 'result_size', '', 'error', '', 'first_claimed_at', '',
      'fn', ARGV[base + 1], 'batch', ARGV[base + 9], 'id', id,
      'priority', ARGV[base + 5], 'position', ARGV[base + 6], 'max_attempts', ARGV[base + 7],
      'enqueued_at', now, 'order', order, 'seq', seq)
    redis.call('ZADD', KEYS[1], order, id)
    index_by_weight(KEYS[5], id, ARGV[base + 4])
    redis.call('HSET', KEYS[2], id, pending_meta_text(order, ARGV[base + 4], ARGV[base + 5], ARGV[base + 6], seq, now))
    if use_batch then
      redis.call('RPUSH', KEYS[4], id)
    end
    created = created + 1
  end
end
if created > 0 then
  redis.call('HINCRBY', KEYS[3], 'enqueued', created)
  -- wake as many idle workers as tasks arrived, each on its own channel: busy workers come
  -- back on their own, so the fan-out per task stays one message however many workers exist
  local woken = redis.call('ZPOPMIN', KEYS[6], created)
  for j = 1, #woken, 2 do
    redis.call('PUBLISH', ARGV[1] .. ':' .. woken[j], created)
  end
end
return {created, epoch}
