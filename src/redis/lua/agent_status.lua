-- Sets an agent's availability, capacity and queues.
-- KEYS[1] P{r}:agent:A
-- ARGV[1] rp "P{r}:"   ARGV[2] agent id   ARGV[3] status (available|away|offline)
-- ARGV[4] max chats    ARGV[5] queues, comma separated   ARGV[6] display name   ARGV[7] now (ms)
-- Returns the agent's queues (comma separated) so the caller can route them.
local rp, aid = ARGV[1], ARGV[2]
local key = KEYS[1]
local old = redis.call('HGET', key, 'queues') or ''
for q in string.gmatch(old, '[^,]+') do
  redis.call('ZREM', rp .. 'avail:' .. q, aid)
  staffed_check(rp, q)
end
if redis.call('EXISTS', key) == 0 then
  redis.call('HSET', key, 'load', 0, 'idle_since', ARGV[7])
end
local prev = redis.call('HGET', key, 'status')
redis.call('HSET', key, 'status', ARGV[3], 'max', ARGV[4], 'queues', ARGV[5], 'name', ARGV[6])
if prev ~= 'available' and ARGV[3] == 'available' then
  redis.call('HSET', key, 'idle_since', ARGV[7])
end
for q in string.gmatch(ARGV[5], '[^,]+') do
  redis.call('SADD', rp .. 'queues', q)
end
refresh_agent(rp, aid)
return ARGV[5]
