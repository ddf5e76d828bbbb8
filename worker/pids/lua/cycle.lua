-- parts: complete claim snapshot
-- One claim cycle in one call: complete, then claim, then snapshot. The loader puts the
-- parts' includes, then complete.lua, claim.lua and snapshot.lua in front of this file,
-- each of the three wrapped as a local function of its own KEYS and ARGV, so they stay
-- one script per operation. Each part gets its own slice of KEYS and ARGV; a part given
-- no keys is skipped. The worker's load changes of complete and claim are netted and
-- applied once, before the snapshot reads the loads.
-- ARGV[1..3] how many keys each part takes   ARGV[4..6] how many arguments
-- ARGV[7..]  the parts' arguments, in order   KEYS: the parts' keys, in order
-- Returns {complete reply or false, claim reply or false, snapshot reply or false}.
local parts = {complete, claim, snapshot}
local replies = {}
local k, a = 1, 7
defer_worker_load()
for i = 1, 3 do
  if i == 3 then apply_deferred_worker_load() end
  local nk, na = tonumber(ARGV[i]), tonumber(ARGV[i + 3])
  if nk > 0 then
    replies[i] = parts[i]({unpack(KEYS, k, k + nk - 1)}, {unpack(ARGV, a, a + na - 1)})
  else
    replies[i] = false
  end
  k, a = k + nk, a + na
end
return replies
