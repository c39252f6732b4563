-- Returns a reservation's units to stock, once. The buyer's count goes down
-- too unless the sale's release policy is KEEP (the units stay counted against
-- the buyer's limit); a sale loaded without a policy is RESTORE.
-- KEYS: 1 rules, 2 stock, 3 buyers, 4 reservations, 5 released (set)
-- ARGV: 1 reservation id
-- Returns {outcome, stock left}: 1 released now, 0 released before,
-- -1 unknown reservation, -2 sale not loaded (Postgres already holds the truth).
if redis.call('EXISTS', KEYS[1]) == 0 then return {-2, 0} end
local record = redis.call('HGET', KEYS[4], ARGV[1])
if not record then return {-1, tonumber(redis.call('GET', KEYS[2]) or '0')} end
if redis.call('SADD', KEYS[5], ARGV[1]) == 0 then
  return {0, tonumber(redis.call('GET', KEYS[2]) or '0')}
end
local qty, _, user = string.match(record, '^(%d+)|(%d+)|([^|]+)|')
if redis.call('HGET', KEYS[1], 'release') ~= 'KEEP' then
  redis.call('HINCRBY', KEYS[3], user, -tonumber(qty))
end
return {1, redis.call('INCRBY', KEYS[2], qty)}
