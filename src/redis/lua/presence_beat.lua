-- One batch of a node's heartbeat: the node's count of each of its parties' connections (and
-- the tombstones of parties whose leave could not be written), their presence timers pushed
-- on, and, with the last batch, the node's own beat. A node counts as beating only once every
-- party it holds is written, so after an outage nobody is judged on half its re-assertion.
-- KEYS[1] P{r}:nodes
-- ARGV[1] rp  ARGV[2] node instance  ARGV[3] now  ARGV[4] outage gap ms  ARGV[5] settle ms
-- ARGV[6] TTL of here:X hashes, ms  ARGV[7] last batch (1|0)  ARGV[8] n parties
-- ARGV[9..] n × (party, count, generation), then (timer member, due) pairs
-- Returns {outage found 1|0, agents made routable again}.
local rp, node, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local ttl, n = tonumber(ARGV[6]), tonumber(ARGV[8])
local found = observe_pulse(rp, now, tonumber(ARGV[4]), tonumber(ARGV[5]), true)
local back = 0
for i = 0, n - 1 do
  local party, count = ARGV[9 + 3 * i], tonumber(ARGV[10 + 3 * i])
  if here_set(rp, party, node, count, tonumber(ARGV[11 + 3 * i]), ttl)
    and count > 0 and string.sub(party, 1, 2) == 'a:'
    and agent_back(rp, string.sub(party, 3)) then
    back = back + 1
  end
end
for i = 9 + 3 * n, #ARGV - 1, 2 do
  redis.call('ZADD', rp .. 'timers', tonumber(ARGV[i + 1]), ARGV[i])
end
if ARGV[7] == '1' then
  -- GT: a beat delayed in a client's queue through an outage never moves the node back.
  redis.call('ZADD', KEYS[1], 'GT', now, node)
  -- Instances gone for a day are forgotten (their fields were dropped by their parties' timers).
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 86400000)
end
return {found, back}
