-- Retention: once a task is final (succeeded, failed for good, cancelled) its record, its result
-- and its batch's list expire after the task's retention (ms, set at enqueue; '' keeps them), so
-- Redis memory stays flat under an endless stream of tasks. A task without a batch is given its
-- own key in the batch's place (same hash slot), which is then skipped.
-- A script that finishes many tasks passes a `batches` table: each batch list's expiry is noted
-- there (the last task's retention wins, as if set in turn) and expire_batches() sets it once.
-- A completion whose task has the completing worker's own retention lists the task instead of
-- setting expiries (complete.lua; deleted in order by sweep.lua): once keys with an
-- expiry are many, Redis looks every key it touches up in its table of expiries too.
local function expire_batch(retention, task_key, batch_key, batches)
  if batch_key and batch_key ~= task_key then
    if batches then
      if not batches[batch_key] then batches[#batches + 1] = batch_key end
      batches[batch_key] = retention
    else
      redis.call('PEXPIRE', batch_key, retention)
    end
  end
end

local function expire_final(retention, task_key, result_key, batch_key, batches)
  if retention == '' or not retention then return end  -- '' (or no field): kept until deleted
  redis.call('PEXPIRE', task_key, retention)
  if result_key then redis.call('PEXPIRE', result_key, retention) end
  expire_batch(retention, task_key, batch_key, batches)
end

local function expire_batches(batches)
  for _, batch_key in ipairs(batches) do redis.call('PEXPIRE', batch_key, batches[batch_key]) end
end
