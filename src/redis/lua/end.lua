-- Ends a chat in any live state. Waiting or offered: the request ends and is kept as is
-- (decision "keep"). Active: wrap-up starts; the agent decides within the decision timeout.
-- Releases the agent's capacity at once. Schedules the `end:ID` outbox timer (the transcript
-- side) and, for a request that never had an agent, the `flush:ID` one. An invitation
-- (state `invited`, proactive chat) was never accepted either: the inviting agent's capacity
-- comes back and the visitor's pending-invitation marker goes.
-- KEYS[1] P{r}:chat:ID
-- ARGV[1] rp  ARGV[2] chat id  ARGV[3] by (visitor|agent|system)  ARGV[4] actor id ("" for system)
-- ARGV[5] reason when active  ARGV[6] reason when not yet accepted  ARGV[7] now
-- ARGV[8] timer lease ms  ARGV[9] decision timeout ms
-- ARGV[10] only in this state ("" or absent = any live state; else "wrong_state")
-- Returns {previous state, reason, agent or offered-to or inviting agent, queue, visitor} or
-- error "not_found" / "forbidden" / "already" / "wrong_state".
local rp, cid, by, actor, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[7])
local lease = tonumber(ARGV[8])
local st, vid, agent, to, queue = unpack(redis.call('HMGET', KEYS[1], 'state', 'visitor', 'agent', 'offered_to', 'queue'))
if not st then return redis.error_reply('not_found') end
if by == 'visitor' and vid ~= actor then return redis.error_reply('forbidden') end
if by == 'agent' and agent ~= actor and to ~= actor then return redis.error_reply('forbidden') end
if st == 'ended' or st == 'decided' then return redis.error_reply('already') end
if ARGV[10] and ARGV[10] ~= '' and st ~= ARGV[10] then return redis.error_reply('wrong_state') end
local reason, who
if st == 'active' then
  reason, who = ARGV[5], agent
  add_load(rp, agent, -1, now)
  redis.call('HSET', KEYS[1], 'state', 'ended')
  redis.call('ZADD', rp .. 'timers', now + tonumber(ARGV[9]), 'wrapup:' .. cid)
else
  reason, who = ARGV[6], to or ''
  if st == 'queued' then
    redis.call('ZREM', rp .. 'q:' .. queue, cid)
    notify_queue(rp, queue)
  elseif st == 'offered' then
    redis.call('SREM', rp .. 'agentchats:' .. to, cid)
    redis.call('ZREM', rp .. 'timers', 'offer:' .. cid)
    add_load(rp, to, -1, now)
  elseif st == 'invited' then
    who = agent
    redis.call('SREM', rp .. 'agentchats:' .. agent, cid)
    redis.call('ZREM', rp .. 'timers', 'invite:' .. cid)
    if redis.call('HGET', rp .. 'visitor:' .. vid, 'invite') == cid then
      redis.call('HDEL', rp .. 'visitor:' .. vid, 'invite')
    end
    add_load(rp, agent, -1, now)
  end
  redis.call('HSET', KEYS[1], 'state', 'decided', 'decision', 'keep', 'decided_at', now)
  redis.call('ZADD', rp .. 'timers', now + lease, 'flush:' .. cid)
end
redis.call('HSET', KEYS[1], 'ended', now, 'end_reason', reason, 'ended_by', by)
redis.call('SREM', rp .. 'visitorchats:' .. vid, cid)
redis.call('ZADD', rp .. 'timers', now + lease, 'end:' .. cid)
return {st, reason, who, queue, vid}
