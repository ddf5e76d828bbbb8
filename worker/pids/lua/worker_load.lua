-- A worker's load: its held weight (loads[worker]), held count (loads["<worker>:n"]) and free
-- slots (free_slots[worker]) move together. Included (`-- include:`) by every
-- script that claims, completes, fails or releases tasks, so the rule lives here once.
-- cycle.lua runs complete and then claim: it sets deferring_worker_load first, so their
-- changes are summed, and applies them once, netted, with apply_deferred_worker_load()
-- (completing one task and claiming one of the same weight changes nothing).
local deferring_worker_load, deferred_weight, deferred_count = false, 0, 0
local deferred_keys = nil  -- loads, free_slots, claims, worker: the first change's (one worker per call)

local function apply_worker_load(loads, free_slots, claims, worker, weight, count)
  if count < 0 and redis.call('SCARD', claims) == 0 then
    redis.call('HSET', loads, worker, 0, worker .. ':n', 0)  -- holds nothing: exact zeros, no float drift
  else
    if weight ~= 0 then redis.call('HINCRBYFLOAT', loads, worker, weight) end
    if count ~= 0 then redis.call('HINCRBY', loads, worker .. ':n', count) end
  end
  if count ~= 0 then redis.call('ZINCRBY', free_slots, -count, worker) end
end

-- weight and count are what the worker now holds more (negative: less). While deferring, the
-- changes add up.
local function change_worker_load(loads, free_slots, claims, worker, weight, count)
  if deferring_worker_load then
    deferred_weight, deferred_count = deferred_weight + weight, deferred_count + count
    if not deferred_keys then deferred_keys = {loads, free_slots, claims, worker} end
  else
    apply_worker_load(loads, free_slots, claims, worker, weight, count)
  end
end

local function apply_deferred_worker_load()
  deferring_worker_load = false
  local k = deferred_keys
  if k then apply_worker_load(k[1], k[2], k[3], k[4], deferred_weight, deferred_count) end
end
