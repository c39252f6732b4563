-- Deletes a sale's Redis state so that it is loaded again from Postgres.
-- KEYS: 1 rules, then every other key of the sale
-- ARGV: 1 "force" or "stale"
-- "stale" deletes only a sale loaded on another Redis server (its rules carry
-- another epoch): restored from a snapshot or a replica, it may lack the last
-- writes. A sale that is not loaded, or loaded on this server, is left alone,
-- so concurrent callers never delete a rebuild that has just finished.
-- Returns 1 when the keys were deleted, 0 otherwise.
if ARGV[1] ~= 'force' then
  local loadedOn = redis.call('HGET', KEYS[1], 'epoch')
  local server = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
  if redis.call('EXISTS', KEYS[1]) == 0 or loadedOn == server then return 0 end
end
redis.call('DEL', unpack(KEYS))
return 1
