-- A pending task's placement metadata (pending_meta) and its place in the weight index, written
-- the same way by every script that makes a task pending or schedules it again (enqueue, release,
-- fail, promote and retry include it; claim applies the weight rule inline).
local function pending_meta_text(order, weight, priority, position, seq, enqueued_ms)
  return order .. '\t' .. weight .. '\t' .. priority .. '\t' .. position .. '\t' .. seq .. '\t' .. enqueued_ms
end

-- Only tasks heavier than the default weight 1 are indexed by weight (a window's heavy part), so
-- a queue of default-weight tasks costs no write to a queue-sized set at each enqueue and claim.
local function indexed_by_weight(weight)
  return (tonumber(weight) or 1) > 1
end

local function index_by_weight(by_weight, id, weight)
  if indexed_by_weight(weight) then redis.call('ZADD', by_weight, weight, id) end
end
