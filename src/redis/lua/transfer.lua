-- Hands a running chat to another available agent with free capacity, or back to a queue
-- (where routing offers it to anyone but the agent who let it go). Schedules the `join:ID`
-- outbox timer for an agent-to-agent transfer.
-- KEYS[1] P{r}:chat:ID
-- ARGV[1] rp  ARGV[2] chat id  ARGV[3] from agent  ARGV[4] to agent or ""  ARGV[5] to queue or ""
-- ARGV[6] now  ARGV[7] timer lease ms  ARGV[8] internal note ("" = none)  ARGV[9] from agent's name
-- The note and who wrote it stay on the routing record (`note`, `note_by`) for the agent who
-- takes the chat next; a later transfer replaces them. They never enter the transcript.
-- Returns {"agent", queue} or {"queue", queue}, or error "forbidden" / "wrong_state" /
-- "unavailable" (target agent not available, without a console (`unroutable`) or full) /
-- "no_queue" (the target queue was renamed).
local rp, cid, from, to, toq, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local function keep_note() redis.call('HSET', KEYS[1], 'note', ARGV[8], 'note_by', ARGV[9]) end
local st, agent, queue, ticket = unpack(redis.call('HMGET', KEYS[1], 'state', 'agent', 'queue', 'ticket'))
if not st then return redis.error_reply('not_found') end
if agent ~= from then return redis.error_reply('forbidden') end
if st ~= 'active' then return redis.error_reply('wrong_state') end
if to ~= '' then
  if to == from then return redis.error_reply('wrong_state') end
  local tst, tload, tmax, tgone = unpack(redis.call('HMGET', rp .. 'agent:' .. to, 'status', 'load', 'max', 'unroutable'))
  if tst ~= 'available' or tgone == '1' or (tonumber(tload) or 0) >= (tonumber(tmax) or 0) then
    return redis.error_reply('unavailable')
  end
  redis.call('HSET', KEYS[1], 'agent', to, 'accepted', now)
  keep_note()
  move_chat(rp, cid, from, to, now, tonumber(ARGV[7]))
  return {'agent', queue}
end
local q = (toq ~= '') and toq or queue
if redis.call('EXISTS', rp .. 'gone:' .. q) == 1 then return redis.error_reply('no_queue') end
redis.call('SADD', rp .. 'denied:' .. cid, from)
redis.call('HSET', KEYS[1], 'state', 'queued', 'queue', q)
keep_note()
redis.call('HDEL', KEYS[1], 'agent')
redis.call('SREM', rp .. 'agentchats:' .. from, cid)
add_load(rp, from, -1, now)
redis.call('ZADD', rp .. 'q:' .. q, ticket, cid)
redis.call('SADD', rp .. 'queues', q)
notify_queue(rp, q)
return {'queue', q}
