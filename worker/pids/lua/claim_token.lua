-- A running task's claim is one field of its hash, "<attempt>|<claimed ms>|<epoch>|<worker>":
-- the fencing token. Completions and failures send the whole token back and must match it
-- exactly, so neither another attempt, another worker nor a claim made before the data set was
-- lost (another epoch) can finish the task. The worker id comes last, so it may hold any
-- character. Included (`-- include:`) by every script that reads a claim.
local function parse_claim(claim)
  -- attempt, claimed ms, epoch, worker (strings); nils for a task never claimed ('')
  return string.match(claim, '^(%d+)|(%d+)|(%d+)|(.*)$')
end
