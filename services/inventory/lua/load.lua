-- Loads a sale into Redis unless it is already there (never overwrites).
-- KEYS: 1 rules, 2 stock, 3 buyers
-- ARGV: starts_ms, ends_ms, per_user_limit, closed_ms (0: not closed), total, stock_left,
--       release policy (RESTORE or KEEP: see release.lua),
--       then pairs of user, units counted against their limit
-- Returns {loaded (1/0), stock left}.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {0, tonumber(redis.call('GET', KEYS[2]) or '0')}
end
redis.call('SET', KEYS[2], ARGV[6])
for i = 8, #ARGV, 2 do
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
end
-- The rules hash is written last: its presence is what marks the sale warm.
-- Its epoch is the run id of the server it is loaded on (see redis-epoch.ts).
local server = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
redis.call('HSET', KEYS[1], 'starts', ARGV[1], 'ends', ARGV[2], 'limit', ARGV[3], 'closed', ARGV[4], 'total', ARGV[5], 'release', ARGV[7], 'epoch', server)
return {1, tonumber(ARGV[6])}
