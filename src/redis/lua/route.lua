-- Offers waiting chats of one queue to available agents, oldest request first; an agent gets a
-- chat only while it has free capacity and never one it already denied or let time out.
-- KEYS[1] P{r}:q:QUEUE
-- ARGV[1] rp  ARGV[2] queue  ARGV[3] now  ARGV[4] offer timeout ms  ARGV[5] max chats looked at
-- Returns a flat list {chat, agent, chat, agent, ...} of the offers made.
local rp, queue, now, timeout = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local avail = rp .. 'avail:' .. queue
local offers = {}
local waiting = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[5]) - 1)
for _, cid in ipairs(waiting) do
  local cands = redis.call('ZRANGE', avail, 0, 63)
  if #cands == 0 then break end
  local denied = rp .. 'denied:' .. cid
  for _, aid in ipairs(cands) do
    if redis.call('SISMEMBER', denied, aid) == 0 then
      redis.call('ZREM', KEYS[1], cid)
      redis.call('HSET', rp .. 'chat:' .. cid, 'state', 'offered', 'offered_to', aid, 'offered_at', now)
      redis.call('SADD', rp .. 'agentchats:' .. aid, cid)
      add_load(rp, aid, 1, now)
      redis.call('ZADD', rp .. 'timers', now + timeout, 'offer:' .. cid)
      offers[#offers + 1] = cid
      offers[#offers + 1] = aid
      break
    end
  end
end
if #offers > 0 then notify_queue(rp, queue) end
return offers
