-- Finishes one event taken from the webhook stream: schedules the retries of the deliveries
-- that failed, then acknowledges and removes the entry, in one step. A node that dies before
-- this leaves the entry pending; another node takes it over (XAUTOCLAIM) and skips the
-- endpoints the delivery log shows delivered.
-- KEYS[1] P{r}:hooks:events  KEYS[2] P{r}:hooks:retry
-- ARGV[1] consumer group  ARGV[2] stream entry id  ARGV[3..] retry member, due ms, ...
-- Returns the number of retries scheduled.
local n = 0
for i = 3, #ARGV, 2 do
  redis.call('ZADD', KEYS[2], ARGV[i + 1], ARGV[i])
  n = n + 1
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return n
