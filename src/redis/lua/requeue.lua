-- An offer is refused (deny) or not answered in time (timeout): the agent joins the chat's
-- denied set, its load is released and the chat goes back to its place in the queue.
-- KEYS[1] P{r}:chat:ID
-- ARGV[1] rp  ARGV[2] chat id  ARGV[3] agent id, or "" for the offer timer
-- ARGV[4] now  ARGV[5] offer timeout ms (timer only: the current offer must be that old)
-- Returns {queue, agent} or an error reply "wrong_state" / "not_due".
local rp, cid, aid, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local st, to, at, queue, ticket = unpack(redis.call('HMGET', KEYS[1], 'state', 'offered_to', 'offered_at', 'queue', 'ticket'))
if st ~= 'offered' then return redis.error_reply('wrong_state') end
if aid ~= '' and to ~= aid then return redis.error_reply('wrong_state') end
if aid == '' and (tonumber(at) or 0) + tonumber(ARGV[5]) > now then return redis.error_reply('not_due') end
redis.call('SADD', rp .. 'denied:' .. cid, to)
redis.call('HSET', KEYS[1], 'state', 'queued')
redis.call('HDEL', KEYS[1], 'offered_to', 'offered_at')
redis.call('ZADD', rp .. 'q:' .. queue, ticket, cid)
redis.call('SREM', rp .. 'agentchats:' .. to, cid)
redis.call('ZREM', rp .. 'timers', 'offer:' .. cid)
add_load(rp, to, -1, now)
notify_queue(rp, queue)
return {queue, to}
