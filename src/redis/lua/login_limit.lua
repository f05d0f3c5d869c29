-- Cluster-wide login throttling: failed logins per client IP and per username, with a
-- doubling wait once the free failures are used up. Every node runs this one script, so adding
-- nodes adds no guesses.
-- KEYS[1] P{login}:ip:IP        hash n (failures counted), t (ms of the last counted attempt)
-- KEYS[2] P{login}:user:HASH    same, for the username (hashed, lower-cased)
-- ARGV[1] mode: 'attempt' | 'success' | 'refund'
-- ARGV[2] free failures per IP  ARGV[3] free failures per username
-- ARGV[4] first wait ms         ARGV[5] longest wait ms
--
-- 'attempt': refused while either key is in its wait: returns {0, ms left, 'ip'|'user'}.
--   Otherwise counts the attempt as a failure on both keys up front (so attempts racing on
--   several nodes are all counted) and returns {1, 0, ''}.
-- 'success': the attempt counted by 'attempt' was a good password: the username's count is
--   cleared and the IP's count given back. Returns {1, 0, ''}.
-- 'refund': the password was not checked after all (store unavailable): both counts given back.
-- Time is Redis's own clock, so nodes with skewed clocks agree. A key expires
-- ARGV[5] ms after its wait ends without a further attempt.
local mode = ARGV[1]
local free = { tonumber(ARGV[2]), tonumber(ARGV[3]) }
local base, longest = tonumber(ARGV[4]), tonumber(ARGV[5])
local names = { 'ip', 'user' }
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)

-- The wait after n counted failures of a key allowed f free ones.
local function wait_after(n, f)
  if n < f then
    return 0
  end
  return math.min(base * 2 ^ math.min(n - f, 40), longest)
end

local function give_back(key)
  local n = tonumber(redis.call('HGET', key, 'n') or '0')
  if n > 0 then
    redis.call('HSET', key, 'n', n - 1)
  end
end

if mode == 'attempt' then
  local state = {}
  for i = 1, 2 do
    local v = redis.call('HMGET', KEYS[i], 'n', 't')
    local n, t = tonumber(v[1] or '0'), tonumber(v[2] or '0')
    local left = t + wait_after(n, free[i]) - now
    if left > 0 then
      return { 0, math.ceil(left), names[i] }
    end
    state[i] = n
  end
  for i = 1, 2 do
    local n = state[i] + 1
    redis.call('HSET', KEYS[i], 'n', n, 't', now)
    redis.call('PEXPIRE', KEYS[i], math.ceil(wait_after(n, free[i]) + longest))
  end
  return { 1, 0, '' }
elseif mode == 'success' then
  redis.call('DEL', KEYS[2])
  give_back(KEYS[1])
  return { 1, 0, '' }
elseif mode == 'refund' then
  give_back(KEYS[1])
  give_back(KEYS[2])
  return { 1, 0, '' }
end
return redis.error_reply('bad mode')
