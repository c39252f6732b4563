-- Updates a warm sale's rules (OpenSale's start; a close is close.lua's); does nothing when the sale is not
-- loaded, since loading reads the rules from Postgres anyway.
-- KEYS: 1 rules. ARGV: field, value pairs. Returns 1 when updated.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
