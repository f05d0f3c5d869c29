-- A visitor asks for a chat: the request joins the queue. One live chat per visitor: asking
-- again returns the live one.
-- KEYS[1] P{r}:chat:ID
-- ARGV[1] rp  ARGV[2] chat id  ARGV[3] visitor id  ARGV[4] queue  ARGV[5] name  ARGV[6] email
-- ARGV[7] question  ARGV[8] now
-- Returns {chat id, state, queue, position (0 when not queued), created(1)|existing(0)}.
local rp, cid, vid, queue = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local live = redis.call('SMEMBERS', rp .. 'visitorchats:' .. vid)
for _, other in ipairs(live) do
  local st, q = unpack(redis.call('HMGET', rp .. 'chat:' .. other, 'state', 'queue'))
  if st == 'queued' or st == 'offered' or st == 'active' or st == 'invited' then
    local pos = redis.call('ZRANK', rp .. 'q:' .. q, other)
    return {other, st, q, pos and (pos + 1) or 0, 0}
  end
end
local ticket = redis.call('INCR', rp .. 'ticket')
redis.call('HSET', KEYS[1], 'state', 'queued', 'queue', queue, 'visitor', vid, 'name', ARGV[5],
  'email', ARGV[6], 'question', ARGV[7], 'created', ARGV[8], 'ticket', ticket)
redis.call('ZADD', rp .. 'q:' .. queue, ticket, cid)
redis.call('SADD', rp .. 'visitorchats:' .. vid, cid)
redis.call('SADD', rp .. 'queues', queue)
notify_queue(rp, queue)
return {cid, 'queued', queue, redis.call('ZRANK', rp .. 'q:' .. queue, cid) + 1, 1}
