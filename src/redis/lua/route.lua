-- Offers waiting chats of one queue to available agents (`route_queue` in common.lua).
-- KEYS[1] P{r}:q:QUEUE
-- ARGV[1] rp  ARGV[2] queue  ARGV[3] now  ARGV[4] offer timeout ms  ARGV[5] max chats looked at
-- Returns the offers made, flat: {chat, agent, name, email, question, created, ...}.
local rp, queue = ARGV[1], ARGV[2]
local offers = route_queue(rp, queue, tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]))
if #offers > 0 then notify_queue(rp, queue) end
return offers
