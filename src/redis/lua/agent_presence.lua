-- A timer that would act on an agent's absence fired: `unroutable:A` (no console for
-- `chat.agent_unroutable_ms`: out of avail:Q, its pending offers go back to their queues) or
-- `agentgone:A` (no console for `chat.agent_grace_ms`: status offline). Decided and applied in
-- this one script, so an agent whose console comes back meanwhile is never taken out.
-- KEYS[1] P{r}:agent:A
-- ARGV[1] rp  ARGV[2] agent id  ARGV[3] mode (unroutable | offline)  ARGV[4] timer member
-- ARGV[5] now  ARGV[6] node TTL ms  ARGV[7] outage gap ms  ARGV[8] settle ms
-- ARGV[9] re-arm ms while present
-- Returns {outcome (gone | present | settling), changed 1|0, {chat, queue, ...} offers revoked}.
local rp, aid, mode, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[5])
local outcome = presence_decide(rp, 'a:' .. aid, ARGV[4], now, tonumber(ARGV[6]),
  tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9]))
if outcome ~= 'gone' or redis.call('EXISTS', KEYS[1]) == 0 then return {outcome, 0, {}} end
if mode == 'offline' then
  if redis.call('HGET', KEYS[1], 'status') == 'offline' then return {outcome, 0, {}} end
  redis.call('HSET', KEYS[1], 'status', 'offline')
  refresh_agent(rp, aid)
  return {outcome, 1, {}}
end
local changed = redis.call('HSET', KEYS[1], 'unroutable', 1)
refresh_agent(rp, aid)
-- Offers waiting for this agent go back to their place in the queue (not into `denied`: the
-- agent did not refuse them, and may take them once a console is back).
local revoked = {}
for _, cid in ipairs(redis.call('SMEMBERS', rp .. 'agentchats:' .. aid)) do
  local ckey = rp .. 'chat:' .. cid
  local st, to, queue, ticket = unpack(redis.call('HMGET', ckey, 'state', 'offered_to', 'queue', 'ticket'))
  if st == 'offered' and to == aid then
    offer_back(rp, ckey, cid, aid, queue, ticket, now)
    revoked[#revoked + 1] = cid
    revoked[#revoked + 1] = queue
  end
end
return {outcome, changed, revoked}
