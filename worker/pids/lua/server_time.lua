-- The server's clock in ms, read once per script call: included (`-- include:`) by
-- every script that needs the time, so cycle.lua's parts share one TIME instead of one each.
local server_now = nil

local function server_now_ms()
  if not server_now then
    local t = redis.call('TIME')
    server_now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return server_now
end
