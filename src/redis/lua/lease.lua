-- A lease that one holder at a time keeps for a cluster-wide job (the retention purge).
-- take: set when free or already ours; renew: extend only while still ours; release: delete
-- only if ours. A holder that stalls past the lease loses it: its renew fails and it stops.
-- KEYS[1] P{l}:NAME
-- ARGV[1] holder  ARGV[2] lease ms  ARGV[3] take | renew | release
-- Returns 1 when the caller holds (or released) the lease, 0 otherwise.
local cur = redis.call('GET', KEYS[1])
if ARGV[3] == 'release' then
  if cur == ARGV[1] then
    redis.call('DEL', KEYS[1])
    return 1
  end
  return 0
end
if cur and cur ~= ARGV[1] then return 0 end
if not cur and ARGV[3] == 'renew' then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
