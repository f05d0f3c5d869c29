-- A connection of a party opened or closed on a node: that node's count of the party's
-- connections, and the party's presence timers (an arrival pushes them on; the last local
-- leave sets the grace timers, counted from the leave).
-- KEYS[1] P{r}:here:X
-- ARGV[1] rp  ARGV[2] party (v:ID | a:ID)  ARGV[3] node instance  ARGV[4] count on that node
-- ARGV[5] generation of this count (per node, increasing)  ARGV[6] TTL of the here:X hash, ms
-- ARGV[7..] timer member, due (ms), ... to set
-- Returns {written 1|0, back 1|0}: not written when the node already wrote a newer count; back
-- when an agent without a console became routable again (the caller routes its queues).
local rp, party, node = ARGV[1], ARGV[2], ARGV[3]
local count = tonumber(ARGV[4])
if not here_set(rp, party, node, count, tonumber(ARGV[5]), tonumber(ARGV[6])) then
  return {0, 0}
end
for i = 7, #ARGV - 1, 2 do
  redis.call('ZADD', rp .. 'timers', tonumber(ARGV[i + 1]), ARGV[i])
end
local back = 0
if count > 0 and string.sub(party, 1, 2) == 'a:' and agent_back(rp, string.sub(party, 3)) then
  back = 1
end
return {1, back}
