-- Retention: once a task is final (succeeded, failed for good, cancelled) its record, its result
-- and its batch's list expire after the task's retention (ms, set at enqueue; '' keeps them), so
-- Redis memory stays flat under an endless stream of tasks. A task without a batch is given its
-- own key in the batch's place (same hash slot), which is then skipped.
local function expire_final(retention, task_key, result_key, batch_key)
  if retention == '' or retention == false or retention == nil then return end
  redis.call('PEXPIRE', task_key, retention)
  if result_key then redis.call('PEXPIRE', result_key, retention) end
  if batch_key and batch_key ~= task_key then redis.call('PEXPIRE', batch_key, retention) end
end
