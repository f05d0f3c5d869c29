-- Claims due timers: each one's score moves to now + lease in the same step, so exactly one node
-- runs it now and, if that node dies, another runs it when the lease runs out.
-- KEYS[1] P{r}:timers
-- ARGV[1] now  ARGV[2] lease ms  ARGV[3] max count
-- Returns {member, leased score, member, leased score, ...}.
local now, lease = tonumber(ARGV[1]), tonumber(ARGV[2])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, m in ipairs(due) do
  redis.call('ZADD', KEYS[1], now + lease, m)
  out[#out + 1] = m
  out[#out + 1] = tostring(now + lease)
end
return out
