-- The visitor accepts an invitation: the chat becomes active with the inviting agent.
-- Idempotent for the same visitor (a retried accept). Schedules the `join:ID` outbox timer
-- like accept.lua: the transcript side is written next by the caller, or by whichever node
-- fires the timer if the caller dies first.
-- KEYS[1] P{r}:chat:ID  KEYS[2] P{r}:visitor:V
-- ARGV[1] rp  ARGV[2] chat id  ARGV[3] visitor id  ARGV[4] now  ARGV[5] timer lease ms
-- Returns {agent id, agent name, queue, fresh(1)|again(0)} or error "not_found" /
-- "forbidden" (someone else's invitation) / "wrong_state" (declined, expired, ended).
local rp, cid, vid, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local st, v, agent, queue, by = unpack(redis.call('HMGET', KEYS[1], 'state', 'visitor', 'agent',
  'queue', 'invited_by'))
if not st then return redis.error_reply('not_found') end
if v ~= vid then return redis.error_reply('forbidden') end
local fresh = 1
if st == 'active' and by then
  fresh = 0
elseif st ~= 'invited' then
  return redis.error_reply('wrong_state')
else
  redis.call('HSET', KEYS[1], 'state', 'active', 'accepted', now)
  redis.call('ZREM', rp .. 'timers', 'invite:' .. cid)
  redis.call('ZADD', rp .. 'timers', now + tonumber(ARGV[5]), 'join:' .. cid)
  if redis.call('HGET', KEYS[2], 'invite') == cid then
    redis.call('HDEL', KEYS[2], 'invite')
  end
end
local name = redis.call('HGET', rp .. 'agent:' .. agent, 'name')
if fresh == 1 then hook_accepted(rp, KEYS[1], cid, agent, now, true) end
return {agent, name or '', queue, fresh}
