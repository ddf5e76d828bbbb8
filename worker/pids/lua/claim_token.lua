-- A running task's claim is one field of its hash, "<attempt>|<claimed ms>|<worker>": a claim
-- writes one field, not three or four (about half a µs of Redis CPU each). The worker id
-- comes last, so it may hold any character. The loader puts this file in front of every script
-- that reads or writes a claim.
local function parse_claim(claim)
  -- attempt, claimed ms, worker (strings); nils for a task never claimed ('')
  return string.match(claim, '^(%d+)|(%d+)|(.*)$')
end
