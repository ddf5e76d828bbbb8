-- A worker's load: its held weight (loads[worker]), held count (loads["<worker>:n"]) and free
-- slots (free_slots[worker]) move together. Included (`-- include:`) by every
-- script that claims, completes, fails or releases tasks, so the rule lives here once.
-- cycle.lua runs complete and then claim: it calls defer_worker_load() first, so their
-- changes are summed and applied once, netted (completing one task and claiming one of the
-- same weight changes nothing).
local deferred = nil

local function apply_worker_load(loads, free_slots, claims, worker, weight, count)
  if count < 0 and redis.call('SCARD', claims) == 0 then
    redis.call('HSET', loads, worker, 0, worker .. ':n', 0)  -- holds nothing: exact zeros, no float drift
  else
    if weight ~= 0 then redis.call('HINCRBYFLOAT', loads, worker, weight) end
    if count ~= 0 then redis.call('HINCRBY', loads, worker .. ':n', count) end
  end
  if count ~= 0 then redis.call('ZINCRBY', free_slots, -count, worker) end
end

-- weight and count are what the worker now holds more (negative: less).
local function change_worker_load(loads, free_slots, claims, worker, weight, count)
  if deferred then
    deferred.weight = deferred.weight + weight
    deferred.count = deferred.count + count
    deferred.keys = {loads, free_slots, claims, worker}
  else
    apply_worker_load(loads, free_slots, claims, worker, weight, count)
  end
end

local function defer_worker_load()
  deferred = {weight = 0, count = 0}
end

local function apply_deferred_worker_load()
  local d = deferred
  deferred = nil
  if d and d.keys then
    apply_worker_load(d.keys[1], d.keys[2], d.keys[3], d.keys[4], d.weight, d.count)
  end
end
