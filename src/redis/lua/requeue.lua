-- An offer is refused (deny) or not answered in time (timeout): the agent joins the chat's
-- denied set, its load is released and the chat goes back to its place in the queue. The denied
-- set is dropped `deny_reset_ms` after the last denial (`denyreset`, see `clear_due_denials`).
-- An agent who let the offer time out is set away when ARGV[6] is "1" (it is not at the console).
-- KEYS[1] P{r}:chat:ID
-- ARGV[1] rp  ARGV[2] chat id  ARGV[3] agent id, or "" for the offer timer
-- ARGV[4] now  ARGV[5] offer timeout ms (timer only: the current offer must be that old)
-- ARGV[6] "1" to set a missing agent away  ARGV[7] deny reset ms (0 = never)
-- Returns {queue, agent, set away (1|0)} or an error reply "wrong_state" / "not_due".
local rp, cid, aid, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local st, to, at, queue, ticket = unpack(redis.call('HMGET', KEYS[1], 'state', 'offered_to', 'offered_at', 'queue', 'ticket'))
if st ~= 'offered' then return redis.error_reply('wrong_state') end
if aid ~= '' and to ~= aid then return redis.error_reply('wrong_state') end
if aid == '' and (tonumber(at) or 0) + tonumber(ARGV[5]) > now then return redis.error_reply('not_due') end
redis.call('SADD', rp .. 'denied:' .. cid, to)
local reset = tonumber(ARGV[7]) or 0
if reset > 0 then
  redis.call('ZADD', rp .. 'denyreset', now + reset, cid)
end
if aid == '' then record_recent(rp, 'missed', queue, now, cid .. ':' .. now) end
-- Away first, so that releasing the load (which refreshes the agent's availability) sees it.
local away = 0
if aid == '' and ARGV[6] == '1' and redis.call('HGET', rp .. 'agent:' .. to, 'status') == 'available' then
  redis.call('HSET', rp .. 'agent:' .. to, 'status', 'away')
  away = 1
end
offer_back(rp, KEYS[1], cid, to, queue, ticket, now)
return {queue, to, away}
