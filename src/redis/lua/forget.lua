-- Removes the routing state of a flushed chat.
-- KEYS[1] P{r}:chat:ID
-- ARGV[1] rp  ARGV[2] chat id
local rp, cid = ARGV[1], ARGV[2]
local agent, vid = unpack(redis.call('HMGET', KEYS[1], 'agent', 'visitor'))
if agent then redis.call('SREM', rp .. 'agentchats:' .. agent, cid) end
if vid then redis.call('SREM', rp .. 'visitorchats:' .. vid, cid) end
redis.call('DEL', KEYS[1], rp .. 'denied:' .. cid)
redis.call('ZREM', rp .. 'denyreset', cid)
for _, kind in ipairs({'offer:', 'end:', 'wrapup:', 'join:', 'flush:'}) do
  redis.call('ZREM', rp .. 'timers', kind .. cid)
end
return 1
