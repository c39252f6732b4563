-- What Redis knows of a sale right now, read where its keys live: the rules'
-- fields and the stock, and whether the sale was loaded on the server running
-- the script (its epoch is this server's run id: see redis-epoch.ts).
-- KEYS: 1 rules, 2 stock
-- Returns {loaded here (1/0), starts, ends, closed, total, stock left, epoch};
-- the fields are false where the sale has none.
local server = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
local rules = redis.call('HMGET', KEYS[1], 'starts', 'ends', 'closed', 'total', 'epoch')
local here = (rules[4] and rules[5] == server) and 1 or 0
return {here, rules[1], rules[2], rules[3], rules[4], redis.call('GET', KEYS[2]), rules[5]}
