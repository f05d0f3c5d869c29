-- The agent takes the chat on offer. Idempotent for the same agent (a retried accept).
-- Schedules the `join:ID` outbox timer: the transcript side ({c:ID}) is written next by the
-- caller, or by whichever node fires the timer if the caller dies first. A first accept adds
-- the request's wait to the queue's recent waits (the visitors' estimate).
-- KEYS[1] P{r}:chat:ID
-- ARGV[1] rp  ARGV[2] chat id  ARGV[3] agent id  ARGV[4] now  ARGV[5] timer lease ms
-- Returns {visitor, queue, name, email, question, fresh(1)|again(0), created} or error "wrong_state".
local rp, cid, aid, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local st, to, agent = unpack(redis.call('HMGET', KEYS[1], 'state', 'offered_to', 'agent'))
local fresh = 1
if st == 'active' and agent == aid then
  fresh = 0
elseif st ~= 'offered' or to ~= aid then
  return redis.error_reply('wrong_state')
else
  redis.call('HSET', KEYS[1], 'state', 'active', 'agent', aid, 'accepted', now)
  redis.call('HDEL', KEYS[1], 'offered_to', 'offered_at')
  redis.call('ZREM', rp .. 'timers', 'offer:' .. cid)
  redis.call('ZADD', rp .. 'timers', now + tonumber(ARGV[5]), 'join:' .. cid)
  local q, c = unpack(redis.call('HMGET', KEYS[1], 'queue', 'created'))
  record_wait(rp, q, cid, now, now - (tonumber(c) or now))
end
local v, q, n, e, qu, c = unpack(redis.call('HMGET', KEYS[1], 'visitor', 'queue', 'name', 'email', 'question', 'created'))
if fresh == 1 then hook_accepted(rp, KEYS[1], cid, aid, now, false) end
return {v, q, n or '', e or '', qu or '', fresh, tonumber(c) or 0}
