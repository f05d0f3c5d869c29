-- Removes a fired timer unless it was rescheduled meanwhile (its score is no longer the lease).
-- KEYS[1] P{r}:timers
-- ARGV[1] member  ARGV[2] leased score
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and tonumber(s) == tonumber(ARGV[2]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
