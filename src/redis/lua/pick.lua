-- An agent takes a waiting request from the queue's Waiting list. One script, so when agents on
-- several nodes pick the same request at once exactly one gets it. The agent needs free capacity
-- and the request's queue among its own; its status does not matter (picking is deliberate).
-- Schedules the `join:ID` outbox timer and appends `chat.accepted` (webhooks) like an accept.
-- KEYS[1] P{r}:chat:ID
-- ARGV[1] rp  ARGV[2] chat id  ARGV[3] agent id  ARGV[4] now  ARGV[5] timer lease ms
-- Returns {visitor, queue, name, email, question, 1, created} (as accept) or error
-- "not_found" / "wrong_state" (no longer waiting) / "forbidden" (not the agent's queue) / "full".
local rp, cid, aid, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local st, queue, created = unpack(redis.call('HMGET', KEYS[1], 'state', 'queue', 'created'))
if not st then return redis.error_reply('not_found') end
if st ~= 'queued' then return redis.error_reply('wrong_state') end
local akey = rp .. 'agent:' .. aid
local queues, load, max = unpack(redis.call('HMGET', akey, 'queues', 'load', 'max'))
local mine = false
for q in string.gmatch(queues or '', '[^,]+') do
  if q == queue then mine = true end
end
if not mine then return redis.error_reply('forbidden') end
if (tonumber(load) or 0) >= (tonumber(max) or 0) then return redis.error_reply('full') end
redis.call('ZREM', rp .. 'q:' .. queue, cid)
redis.call('HSET', KEYS[1], 'state', 'active', 'agent', aid, 'accepted', now)
redis.call('SADD', rp .. 'agentchats:' .. aid, cid)
redis.call('ZADD', rp .. 'timers', now + tonumber(ARGV[5]), 'join:' .. cid)
add_load(rp, aid, 1, now)
record_wait(rp, queue, cid, now, now - (tonumber(created) or now))
notify_queue(rp, queue)
hook_accepted(rp, KEYS[1], cid, aid, now, false)
local v, n, e, qu = unpack(redis.call('HMGET', KEYS[1], 'visitor', 'name', 'email', 'question'))
return {v, queue, n or '', e or '', qu or '', 1, tonumber(created) or 0}
