-- Presence helpers ({r} slot), prepended after common.lua to the presence scripts. A party is
-- `v:ID` (a visitor) or `a:ID` (an agent). Keys (docs/design-redis.md, "Presence"):
--   P{r}:here:X    hash  node instance -> "count|gen": X's connections on that node (0 = left)
--   P{r}:nodes     zset  node instance -> the end of its last complete beat (ms)
--   P{r}:presence  hash  pulse (last beat of any node), outage_from, outage_to, settle_until
-- A timer that would declare a party gone (grace, agentgone, unroutable) asks `presence_decide`
-- first: the party is present while a live node (one that beat within the node TTL) holds one
-- of its connections, and nobody is judged while the cluster settles after a Redis outage.

-- Writes one node's count of a party's connections unless that node already wrote a newer one
-- (a beat's snapshot and a later leave can cross on the way). True when written.
local function here_set(rp, party, node, count, gen, ttl)
  local key = rp .. 'here:' .. party
  local cur = redis.call('HGET', key, node)
  if cur and (tonumber(string.match(cur, '|(%d+)$')) or 0) > gen then return false end
  redis.call('HSET', key, node, count .. '|' .. gen)
  redis.call('PEXPIRE', key, ttl)
  return true
end

-- An agent with a console again takes offers again (with the status it kept). True if it was
-- unroutable.
local function agent_back(rp, aid)
  if redis.call('HDEL', rp .. 'agent:' .. aid, 'unroutable') == 1 then
    refresh_agent(rp, aid)
    return true
  end
  return false
end

-- Notes that a node reached Redis at `now`. When no node has beaten for longer than `gap` ms,
-- every node's beats (and the presence they carry) may have failed together: an outage from
-- the last pulse to now, after which presence timers wait (`settling`). `beat`: the caller is a
-- node's beat, which moves the pulse on; a timer's check only records an outage it finds.
-- An outage found while the cluster still settles from an earlier one extends that one: a beat
-- sent during the outage and run after it (late, with its own earlier time) must not make the
-- nodes that were beating before the first one count as never having beaten.
-- Returns 1 when it found one.
local function observe_pulse(rp, now, gap, settle, beat)
  local pk = rp .. 'presence'
  local pulse, from, till = unpack(redis.call('HMGET', pk, 'pulse', 'outage_from', 'settle_until'))
  pulse = tonumber(pulse)
  local found = 0
  if pulse and now - pulse > gap then
    if not (tonumber(till) and now < tonumber(till)) then from = pulse end
    redis.call('HSET', pk, 'outage_from', from, 'outage_to', now, 'settle_until', now + settle)
    found = 1
  end
  if (beat or found == 1) and (not pulse or now > pulse) then
    redis.call('HSET', pk, 'pulse', now)
  end
  return found
end

-- True while the cluster settles after an outage: until every node that was beating when it
-- began has completed a beat since it ended (re-asserting its parties) and is alive, or
-- `settle` ms passed. Alive too: a node's first beat after an outage may have been sent during
-- it and carry that earlier time, so the node looks dead until its next beat; its parties wait
-- for that beat rather than being judged gone.
local function settling(rp, now, ttl)
  local from, to, till = unpack(redis.call('HMGET', rp .. 'presence',
    'outage_from', 'outage_to', 'settle_until'))
  till = tonumber(till)
  if not till or now >= till then return false end
  return redis.call('ZCOUNT', rp .. 'nodes', tonumber(from) - ttl,
    '(' .. math.max(tonumber(to), now - ttl)) > 0
end

-- True when a live node holds a connection of the party. Fields that do not make it present
-- (a dead node's, a left node's tombstone) are dropped on the way.
local function present_anywhere(rp, party, now, ttl)
  local key = rp .. 'here:' .. party
  local flat = redis.call('HGETALL', key)
  local present = false
  for i = 1, #flat, 2 do
    local count = tonumber(string.match(flat[i + 1], '^(%d+)')) or 0
    local beat = tonumber(redis.call('ZSCORE', rp .. 'nodes', flat[i]))
    if count > 0 and beat and beat + ttl >= now then
      present = true
    else
      redis.call('HDEL', key, flat[i])
    end
  end
  return present
end

-- What a timer that would declare `party` gone does now: 'settling' (set again `gap` ms on),
-- 'present' (set again `rearm` ms on: the holding node's beat keeps pushing it while it lives)
-- or 'gone' (the caller ends what the party's absence ends).
local function presence_decide(rp, party, member, now, ttl, gap, settle, rearm)
  observe_pulse(rp, now, gap, settle, false)
  if settling(rp, now, ttl) then
    redis.call('ZADD', rp .. 'timers', now + gap, member)
    return 'settling'
  end
  if present_anywhere(rp, party, now, ttl) then
    redis.call('ZADD', rp .. 'timers', now + rearm, member)
    return 'present'
  end
  return 'gone'
end
