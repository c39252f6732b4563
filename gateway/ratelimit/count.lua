-- Fixed-window rate limit counters, and the kill switch of closed sales: every
-- descriptor of one ShouldRateLimit call in one round trip.
-- KEYS[1..n]: the counter of each limited descriptor in its current window
--   (<ns>:rl:<domain>:<descriptor path>:<window start>)
-- KEYS[n+1..]: the rules hash of each sale a descriptor names (sale_id entry)
-- ARGV[1]: hits to add (hits_addend, at least 1); ARGV[2]: n; ARGV[3]: now (ms)
-- ARGV[3 + i]: time to live of KEYS[i] in ms (the rest of its window and a
--   second), set only when this call created the counter
-- Returns the count of each counter after adding the hits, then for each sale
-- 1 when it no longer takes purchases (closed by an operator, or ended), else 0.
local hits = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local out = {}
for i = 1, n do
  local count = redis.call('INCRBY', KEYS[i], hits)
  if count == hits then
    redis.call('PEXPIRE', KEYS[i], ARGV[3 + i])
  end
  out[i] = count
end
for i = n + 1, #KEYS do
  local rules = redis.call('HMGET', KEYS[i], 'closed', 'ends')
  local closed = tonumber(rules[1] or '0') > 0 or (rules[2] and now >= tonumber(rules[2]))
  out[i] = closed and 1 or 0
end
return out
