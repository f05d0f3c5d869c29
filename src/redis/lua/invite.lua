-- An agent invites a visitor on the site to a chat (proactive chat). At most one invitation
-- or live chat per visitor: of two agents inviting at once exactly one wins. The chat starts
-- in state `invited`, held by the inviting agent (counted in its load, listed in its chats)
-- until the visitor accepts (`invite_accept.lua`), declines or the `invite:ID` timer fires
-- (both through `end.lua`).
-- KEYS[1] P{r}:visitor:V  KEYS[2] P{r}:chat:ID
-- ARGV[1] rp  ARGV[2] chat id  ARGV[3] visitor id  ARGV[4] agent id  ARGV[5] default queue
-- ARGV[6] now  ARGV[7] invitation timeout ms  ARGV[8] invitation message
-- ARGV[9] the agent's max chats (used when the agent has no status record yet)
-- Returns {queue, expires at} or error "gone" (the visitor left the site), "taken" (already
-- invited or chatting), "unavailable" (the agent is at its chat limit).
local rp, cid, vid, aid, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[6])
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('gone') end
for _, other in ipairs(redis.call('SMEMBERS', rp .. 'visitorchats:' .. vid)) do
  local st = redis.call('HGET', rp .. 'chat:' .. other, 'state')
  if st == 'queued' or st == 'offered' or st == 'active' or st == 'invited' then
    return redis.error_reply('taken')
  end
end
local pending = redis.call('HGET', KEYS[1], 'invite')
if pending and redis.call('HGET', rp .. 'chat:' .. pending, 'state') == 'invited' then
  return redis.error_reply('taken')
end
local max, load, queues = unpack(redis.call('HMGET', rp .. 'agent:' .. aid, 'max', 'load', 'queues'))
max = tonumber(max) or tonumber(ARGV[9]) or 0
if (tonumber(load) or 0) >= max then return redis.error_reply('unavailable') end
local queue = string.match(queues or '', '[^,]+') or ARGV[5]
local name, email, verified = unpack(redis.call('HMGET', KEYS[1], 'name', 'email', 'email_verified'))
local expires = now + tonumber(ARGV[7])
redis.call('HSET', KEYS[2], 'state', 'invited', 'queue', queue, 'visitor', vid,
  'name', name or '', 'email', email or '', 'email_verified', verified or '0', 'created', now, 'agent', aid, 'invited_by', aid,
  'invitation', ARGV[8], 'expires', expires)
redis.call('SADD', rp .. 'visitorchats:' .. vid, cid)
redis.call('SADD', rp .. 'agentchats:' .. aid, cid)
add_load(rp, aid, 1, now)
redis.call('HSET', KEYS[1], 'invite', cid)
redis.call('ZADD', rp .. 'timers', expires, 'invite:' .. cid)
return {queue, expires}
