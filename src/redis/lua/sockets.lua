-- Open WebSockets of one subject (a visitor, a client IP) across the cluster. Each node keeps
-- its own count in the hash with a time it expires: a node refreshes its counts well within
-- that time, so the counts of a node that died expire and stop counting.
-- KEYS[1] P{s:KIND:SUBJECT}  hash: INSTANCE -> open sockets there, INSTANCE@ -> expiry (ms)
-- ARGV[1] mode: 'add' (change this node's count by a delta, refusing to go over a maximum)
--         or 'set' (this node's count is exactly this, from its own bookkeeping)
-- ARGV[2] node instance  ARGV[3] ttl ms  ARGV[4] delta ('add') or count ('set')
-- ARGV[5] maximum of the total ('add' with a positive delta)
-- Returns {1 done | 0 refused (over the maximum), the total now (before, when refused)}.
local key, inst, ttl, n = KEYS[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
local stamp = inst .. '@'

local function keep(count)
  if count <= 0 then
    redis.call('HDEL', key, inst, stamp)
    if redis.call('HLEN', key) == 0 then redis.call('DEL', key) end
  else
    redis.call('HSET', key, inst, count, stamp, now + ttl)
    redis.call('PEXPIRE', key, ttl)
  end
end

if ARGV[1] == 'set' then
  keep(n)
  return {1, n}
end

-- Forget the counts of nodes that stopped refreshing, then add up the others.
local flat = redis.call('HGETALL', key)
local counts, dead = {}, {}
for i = 1, #flat, 2 do
  local f, v = flat[i], flat[i + 1]
  if string.sub(f, -1) == '@' then
    if tonumber(v) < now then dead[string.sub(f, 1, -2)] = true end
  else
    counts[f] = tonumber(v) or 0
  end
end
local total = 0
for who, c in pairs(counts) do
  if dead[who] then
    redis.call('HDEL', key, who, who .. '@')
  else
    total = total + c
  end
end
if n > 0 and total + n > tonumber(ARGV[5]) then
  return {0, total}
end
local mine = counts[inst] or 0
if dead[inst] then mine = 0 end
keep(mine + n)
if total + n < 0 then return {1, 0} end
return {1, total + n}
