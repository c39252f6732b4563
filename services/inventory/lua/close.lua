-- Closes a sale in Redis, where purchases are decided, and returns the close
-- time to record: no reservation runs after this script, and none was
-- reserved later than the time it returns. A reservation's time is taken by
-- its inventory process before its script runs, so one reserved just before
-- the close can carry a later time than the closer's clock: the close time is
-- the later of now and the latest reservation (last_reserved, kept by
-- reserve.lua). An already closed sale keeps its close time.
-- KEYS: 1 rules. ARGV: 1 now_ms.
-- Returns the close time in ms, or 0 when the sale is not loaded on this
-- Redis server (load it first: see load.lua and redis-epoch.ts).
local server = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
local rules = redis.call('HMGET', KEYS[1], 'closed', 'last_reserved', 'epoch')
if rules[3] ~= server then return 0 end
local closed = tonumber(rules[1] or '0')
if closed > 0 then return closed end
closed = math.max(tonumber(ARGV[1]), tonumber(rules[2] or '0'))
redis.call('HSET', KEYS[1], 'closed', closed)
return closed
