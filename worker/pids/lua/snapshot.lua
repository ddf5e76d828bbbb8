-- include: server_time
-- One round trip for a claim cycle: read the window (the H heaviest pending tasks, of those
-- heavier than the default weight 1, and the first pending tasks in queue order, K in all) and
-- the worker view: the V workers with the most free slots, and the caller. Its cost grows with K
-- and V, never with the number of workers.
-- KEYS[1] pending        ZSET id -> queue order
-- KEYS[2] pending_meta   HASH id -> "order\tweight\tpriority\tposition\tseq\tenqueued_ms"
-- KEYS[3] workers        HASH worker id -> JSON info (with its heartbeat deadline)
-- KEYS[4] loads          HASH worker id -> held weight
-- KEYS[5] pending_by_weight ZSET id -> weight, of the tasks heavier than the default 1
-- KEYS[6] free_slots     ZSET worker id -> free slots
-- KEYS[7] idle           ZSET worker id -> ms it found the queue empty (enqueue wakes these)
-- ARGV[1] window size K   ARGV[2] H, how many of the K may be the heaviest pending
-- ARGV[3] view size V   ARGV[4] the calling worker's id
-- ARGV[5] '1': the reply packed, one flat list: {now_ms, the window's ids joined by tabs, its metas
--         joined by newlines ('' for a task without one), their count, V, then V worker ids, V
--         infos, 2V loads}. Two values convert to a reply in a fraction of the time of two per
--         task (an id or meta holding a separator shows in the count), and Redis 6.2 writes each
--         nested list of a reply with a system call of its own.
-- Returns {now_ms, task ids, metas, worker ids, worker infos, loads and held counts (2 per worker)}.
local now = server_now_ms()
local heaviest = {}
if tonumber(ARGV[2]) > 0 then
  heaviest = redis.call('ZREVRANGE', KEYS[5], 0, tonumber(ARGV[2]) - 1)
end
-- the rest in queue order: the whole window when no pending task is heavier than the default
local rest = tonumber(ARGV[1]) - #heaviest
local ids = {}
if rest > 0 then ids = redis.call('ZRANGE', KEYS[1], 0, rest - 1) end
if #heaviest > 0 then
  local seen = {}
  for _, id in ipairs(ids) do seen[id] = true end
  for _, id in ipairs(heaviest) do
    if not seen[id] then ids[#ids + 1] = id end
  end
end
local metas = {}
if #ids > 0 then
  metas = redis.call('HMGET', KEYS[2], unpack(ids))
end
local view = redis.call('ZREVRANGE', KEYS[6], 0, tonumber(ARGV[3]) - 1)
local me_seen = false
for _, w in ipairs(view) do
  if w == ARGV[4] then me_seen = true end
end
if not me_seen and ARGV[4] ~= '' then view[#view + 1] = ARGV[4] end
local infos, loads = {}, {}
if #view > 0 then
  infos = redis.call('HMGET', KEYS[3], unpack(view))
  local fields = {}
  for _, w in ipairs(view) do
    fields[#fields + 1] = w
    fields[#fields + 1] = w .. ':n'
  end
  loads = redis.call('HMGET', KEYS[4], unpack(fields))
end
if #ids == 0 and ARGV[4] ~= '' then
  redis.call('ZADD', KEYS[7], now, ARGV[4])
end
if ARGV[5] == '1' then
  local ok, packed = pcall(table.concat, metas, '\n')
  if not ok then  -- a task without metadata (false in the HMGET reply)
    for i = 1, #ids do metas[i] = metas[i] or '' end
    packed = table.concat(metas, '\n')
  end
  local out, v = {now, table.concat(ids, '\t'), packed, #ids, #view}, #view
  for i = 1, v do out[5 + i], out[5 + v + i] = view[i], infos[i] end
  for i = 1, 2 * v do out[5 + 2 * v + i] = loads[i] end
  return out
end
return {now, ids, metas, view, infos, loads}
