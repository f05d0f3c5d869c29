-- Counts one offline message against its visitor's and its IP's hourly allowance (fixed windows
-- that start with the first message), refusing it without counting when either is used up.
-- KEYS[1] P{ol}:v:VISITOR  KEYS[2] P{ol}:ip:IP
-- ARGV[1] per-visitor allowance  ARGV[2] per-IP allowance  ARGV[3] window ms
-- Returns 1 (counted) or error "limited".
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
local ip = tonumber(redis.call('GET', KEYS[2]) or '0')
if v >= tonumber(ARGV[1]) or ip >= tonumber(ARGV[2]) then
  return redis.error_reply('limited')
end
for _, k in ipairs(KEYS) do
  if redis.call('INCR', k) == 1 then
    redis.call('PEXPIRE', k, ARGV[3])
  end
end
return 1
