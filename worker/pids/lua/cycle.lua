-- parts: complete claim snapshot
-- One claim cycle in one call: complete, then claim, then snapshot. The loader puts the
-- parts' includes, then complete.lua, claim.lua and snapshot.lua in front of this file,
-- each of the three wrapped as a local function of its own KEYS and ARGV, so they stay
-- one script per operation. Each part gets its own slice of KEYS and ARGV; a part given
-- no keys is skipped. The worker's load changes of complete and claim are netted and
-- applied once, before the snapshot reads the loads (worker_load.lua).
-- ARGV[1..3] how many keys each part takes   ARGV[4..6] how many arguments
-- ARGV[7..]  the parts' arguments, in order   KEYS: the parts' keys, in order
-- Returns {complete reply or false, claim reply or false, snapshot reply or false}.
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
return replies
