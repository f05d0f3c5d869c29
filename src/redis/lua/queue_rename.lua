-- Renames a queue in the routing state, or refuses while it has live chats: requests waiting
-- in it, or chats on offer, running or invited under its name. On success the old name is
-- marked gone (`gone:OLD`, for longer than any node caches queue names): `request.lua` and
-- `transfer.lua` refuse it meanwhile, on every node, whatever a node's cache still says; after
-- that the store alone answers. The new name's mark, if any, is removed.
-- Agents move between the queues' availability sets when their routing records are refreshed
-- (agent_status.lua), after the store has the new name.
-- KEYS[1] P{r}:q:OLD
-- ARGV[1] rp  ARGV[2] old name  ARGV[3] new name  ARGV[4] mark lifetime ms  ARGV[5..] every agent id
-- Returns the number of live chats of the old queue: 0 = renamed, more = refused.
local rp, old, new = ARGV[1], ARGV[2], ARGV[3]
local live = redis.call('ZCARD', KEYS[1])
local states = { queued = true, offered = true, active = true, invited = true }
for i = 5, #ARGV do
  for _, cid in ipairs(redis.call('SMEMBERS', rp .. 'agentchats:' .. ARGV[i])) do
    local st, q = unpack(redis.call('HMGET', rp .. 'chat:' .. cid, 'state', 'queue'))
    if q == old and states[st] then live = live + 1 end
  end
end
if live > 0 then return live end
redis.call('SET', rp .. 'gone:' .. old, new, 'PX', ARGV[4])
redis.call('DEL', rp .. 'gone:' .. new)
redis.call('SREM', rp .. 'queues', old)
redis.call('HDEL', rp .. 'staffed', old)
redis.call('DEL', rp .. 'waits:' .. old)
return 0
