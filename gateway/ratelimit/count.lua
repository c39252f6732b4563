-- Fixed-window rate limit counters: every limited descriptor of one
-- ShouldRateLimit call in one round trip.
-- KEYS[i]: the counter of descriptor i in its current window
--   (<ns>:rl:<domain>:<descriptor path>:<window start>)
-- ARGV[1]: hits to add (hits_addend, at least 1)
-- ARGV[i + 1]: time to live of KEYS[i] in ms (the rest of its window and a
--   second), set only when this call created the counter
-- Returns the count of each key after adding the hits.
local hits = tonumber(ARGV[1])
local counts = {}
for i, key in ipairs(KEYS) do
  local count = redis.call('INCRBY', key, hits)
  if count == hits then
    redis.call('PEXPIRE', key, ARGV[i + 1])
  end
  counts[i] = count
end
return counts
