-- Reserves stock for a batch of purchase attempts on one sale, atomically.
-- KEYS: 1 rules (hash; its last_reserved field is the latest reserved_ms, for
--         close.lua), 2 stock (int), 3 buyers (hash user -> units),
--       4 requests (hash "user|request" -> reservation id),
--       5 reservations (hash reservation id -> "qty|reserved_ms|user|request"),
--       6 unconfirmed (sorted set reservation id by reserved_ms: the sweeper
--         removes it once the order is in Postgres, republishes it otherwise)
-- ARGV: 1 now_ms, then 4 per item: user, request_id, quantity, new reservation id
-- Returns 5 values per item: outcome, reservation id, stock left, reserved_ms, quantity.
-- Outcomes: OK, REPLAY (request seen: first answer again),
-- QUANTITY_OVER_LIMIT (more units than the per-user limit: the request can
-- never succeed; its quantity value is the limit), SOLD_OUT,
-- SALE_NOT_STARTED, SALE_ENDED, ALREADY_PURCHASED, COLD (sale not loaded, or
-- loaded on another Redis incarnation: restored from a snapshot, or a replica
-- promoted to master of the sale's slot, that may lack the last writes, so
-- never sold from). The incarnation is the run id of the server running the
-- script, so no client's view of the cluster can be out of date for it.
local out = {}
local function push(outcome, rid, left, at, qty)
  out[#out + 1] = outcome
  out[#out + 1] = rid
  out[#out + 1] = left
  out[#out + 1] = at
  out[#out + 1] = qty
end

local server = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
local rules = redis.call('HMGET', KEYS[1], 'starts', 'ends', 'limit', 'closed', 'epoch', 'last_reserved')
if not rules[1] or rules[5] ~= server then
  for _ = 2, #ARGV, 4 do push('COLD', '', 0, 0, 0) end
  return out
end

local now = tonumber(ARGV[1])
local starts, ends, limit = tonumber(rules[1]), tonumber(rules[2]), tonumber(rules[3])
local ended = tonumber(rules[4]) > 0 or now >= ends
local stock = tonumber(redis.call('GET', KEYS[2]) or '0')
local initial = stock

for i = 2, #ARGV, 4 do
  local user, request, qty, rid = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3]
  local requestKey = user .. '|' .. request
  local previous = redis.call('HGET', KEYS[4], requestKey)
  if previous then
    local record = redis.call('HGET', KEYS[5], previous) or ''
    local q, at = string.match(record, '^(%d+)|(%d+)|')
    push('REPLAY', previous, stock, tonumber(at or '0'), tonumber(q or '0'))
  elseif qty > limit then
    push('QUANTITY_OVER_LIMIT', '', stock, 0, limit)
  elseif ended then
    push('SALE_ENDED', '', stock, 0, 0)
  elseif now < starts then
    push('SALE_NOT_STARTED', '', stock, 0, 0)
  elseif tonumber(redis.call('HGET', KEYS[3], user) or '0') + qty > limit then
    push('ALREADY_PURCHASED', '', stock, 0, 0)
  elseif stock < qty then
    push('SOLD_OUT', '', stock, 0, 0)
  else
    stock = stock - qty
    redis.call('HINCRBY', KEYS[3], user, qty)
    redis.call('HSET', KEYS[4], requestKey, rid)
    redis.call('HSET', KEYS[5], rid, qty .. '|' .. ARGV[1] .. '|' .. user .. '|' .. request)
    redis.call('ZADD', KEYS[6], now, rid)
    push('OK', rid, stock, now, qty)
  end
end

if stock ~= initial then
  redis.call('SET', KEYS[2], stock)
  -- Batches from several inventory processes take their time before they run.
  if now > tonumber(rules[6] or '0') then redis.call('HSET', KEYS[1], 'last_reserved', now) end
end
return out
