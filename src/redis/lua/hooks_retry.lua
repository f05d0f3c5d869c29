-- Moves a claimed retry to its next attempt: replaces the member (which names the attempt)
-- with the next one, only while the claim's lease still holds (a node whose lease ran out
-- and was overtaken changes nothing).
-- KEYS[1] P{r}:hooks:retry
-- ARGV[1] claimed member  ARGV[2] leased score  ARGV[3] next member  ARGV[4] next due ms
-- Returns 1 when moved, 0 when the claim was lost.
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not s or tonumber(s) ~= tonumber(ARGV[2]) then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
return 1
