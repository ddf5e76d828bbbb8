-- parts: complete claim snapshot
-- One claim cycle in one call: complete, then claim, then snapshot. The loader puts the
-- parts' includes, then complete.lua, claim.lua and snapshot.lua in front of this file,
-- each of the three wrapped as a local function of its own KEYS and ARGV, so they stay
-- one script per operation. Each part gets its own slice of KEYS and ARGV; a part given
-- no keys is skipped. The worker's load changes of complete and claim are netted and
-- applied once, before the snapshot reads the loads (worker_load.lua).
-- ARGV[1..3] how many keys each part takes   ARGV[4..6] how many arguments
-- ARGV[7..]  the parts' arguments, in order   KEYS: the parts' keys, in order
-- Returns one flat list: the claim reply's m values, the complete reply's n values, the
-- snapshot reply's s values, then m, n, s (0: the part was skipped). Redis 6.2 writes each
-- nested list of a reply with a system call of its own; the claim reply, the longest but a
-- snapshot, is the base.
local replies = {false, false, false}
local k, a = 1, 7
deferring_worker_load = true
for i = 1, 3 do
  if i == 3 then apply_deferred_worker_load() end
  local nk, na = tonumber(ARGV[i]), tonumber(ARGV[i + 3])
  if nk > 0 then
    local part = i == 1 and complete or i == 2 and claim or snapshot
    replies[i] = part({unpack(KEYS, k, k + nk - 1)}, {unpack(ARGV, a, a + na - 1)})
  end
  k, a = k + nk, a + na
end
local done, won, seen = replies[1], replies[2], replies[3]
local m, n, s = won and #won or 0, done and #done or 0, seen and #seen or 0
local out = won or {}
for j = 1, n do out[m + j] = done[j] end
for j = 1, s do out[m + n + j] = seen[j] end
out[m + n + s + 1], out[m + n + s + 2], out[m + n + s + 3] = m, n, s
return out
