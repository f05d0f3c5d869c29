-- A visitor asks for a chat: the request joins the queue, and a new one runs the queue's routing
-- pass at once (one script, one round trip, instead of a request and then a route). One live
-- chat per visitor: asking again returns the live one. The chat carries the e-mail the site
-- vouched for (signed identify, kept on the visitor's record) when there is one, else the typed
-- one; `email_verified` says which (only a verified e-mail links the chat to a contact).
-- A new request is a `chat.requested` webhook event (events.lua).
-- KEYS[1] P{r}:chat:ID
-- ARGV[1] rp  ARGV[2] chat id  ARGV[3] visitor id  ARGV[4] queue  ARGV[5] name  ARGV[6] email
-- ARGV[7] question  ARGV[8] now  ARGV[9] offer timeout ms  ARGV[10] max chats a pass looks at
-- Returns {chat id, state, queue, position (0 when not queued), created(1)|existing(0), offers}:
-- the position is the new chat's before the pass; offers as `route_queue` returns them.
-- Refused: `no_queue` (the queue was renamed).
local rp, cid, vid, queue = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local live = redis.call('SMEMBERS', rp .. 'visitorchats:' .. vid)
for _, other in ipairs(live) do
  local st, q = unpack(redis.call('HMGET', rp .. 'chat:' .. other, 'state', 'queue'))
  if st == 'queued' or st == 'offered' or st == 'active' or st == 'invited' then
    local pos = redis.call('ZRANK', rp .. 'q:' .. q, other)
    return {other, st, q, pos and (pos + 1) or 0, 0, {}}
  end
end
-- A renamed queue's old name (see queue_rename.lua).
if redis.call('EXISTS', rp .. 'gone:' .. queue) == 1 then return redis.error_reply('no_queue') end
local email, verified = ARGV[6], '0'
local vemail, vverified = unpack(redis.call('HMGET', rp .. 'visitor:' .. vid, 'email', 'email_verified'))
if vverified == '1' and vemail then
  email, verified = vemail, '1'
end
local ticket = redis.call('INCR', rp .. 'ticket')
redis.call('HSET', KEYS[1], 'state', 'queued', 'queue', queue, 'visitor', vid, 'name', ARGV[5],
  'email', email, 'email_verified', verified, 'question', ARGV[7], 'created', ARGV[8],
  'ticket', ticket)
redis.call('ZADD', rp .. 'q:' .. queue, ticket, cid)
redis.call('SADD', rp .. 'visitorchats:' .. vid, cid)
redis.call('SADD', rp .. 'queues', queue)
local pos = redis.call('ZRANK', rp .. 'q:' .. queue, cid) + 1
local offers = route_queue(rp, queue, tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10]))
notify_queue(rp, queue)
hook_event(rp, 'chat.requested', 'evt_' .. cid .. '_requested', tonumber(ARGV[8]), {
  chat_id = cid, queue = queue, visitor_id = vid, name = hook_str(ARGV[5]),
  email = hook_str(ARGV[6]), question = hook_str(ARGV[7]), requested_at = tonumber(ARGV[8])})
return {cid, 'queued', queue, pos, 1, offers}
