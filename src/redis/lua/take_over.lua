-- A supervisor takes a running chat over: it moves to them from whichever agent holds it, like
-- an agent-to-agent transfer but without the availability check (a supervisor may take a chat
-- while away or at capacity; the chat still counts in their load). Schedules the `join:ID`
-- outbox timer; the caller writes the transcript side and tells the previous agent.
-- KEYS[1] P{r}:chat:ID
-- ARGV[1] rp  ARGV[2] chat id  ARGV[3] supervisor id  ARGV[4] now  ARGV[5] timer lease ms
-- Returns {previous agent, queue} or error "not_found" / "wrong_state" (not running, or
-- already theirs).
local rp, cid, to, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local st, from, queue = unpack(redis.call('HMGET', KEYS[1], 'state', 'agent', 'queue'))
if not st then return redis.error_reply('not_found') end
if st ~= 'active' or not from or from == to then return redis.error_reply('wrong_state') end
redis.call('HSET', KEYS[1], 'agent', to, 'taken_over', now)
move_chat(rp, cid, from, to, now, tonumber(ARGV[5]))
return {from, queue}
