-- A cluster-wide rate: GCRA (a token bucket kept as one number, the theoretical arrival time
-- of the next token) for one limit and one subject (an IP, a visitor, an agent). Takes up to
-- the tokens asked for, so a node can lease a few at once and spend them without asking again.
-- KEYS[1] P{l:NAME:SUBJECT}   string: theoretical arrival time in ms (absent = a full bucket)
-- ARGV[1] ms per token (may be fractional)  ARGV[2] burst (tokens the bucket holds)
-- ARGV[3] tokens wanted (at least 1)
-- Returns {tokens granted (0..wanted), ms until one token is available when none was granted}.
-- Time is Redis's own clock, so nodes with skewed clocks agree.
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
local interval, burst, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
-- Tokens in the bucket now: burst minus what the arrival time is ahead of now.
local avail = math.floor((now - tat) / interval + burst + 1e-9)
if avail > want then avail = want end
if avail < 1 then
  return {0, math.max(1, math.ceil(tat - (burst - 1) * interval - now))}
end
tat = tat + avail * interval
redis.call('SET', KEYS[1], string.format('%.3f', tat), 'PX', math.max(1, math.ceil(tat - now)))
return {avail, 0}
