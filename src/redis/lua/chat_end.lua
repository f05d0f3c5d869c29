-- Closes the transcript with the end system message. Idempotent. A request that never had an
-- agent still gets a transcript: its question, then the end message.
-- KEYS[1] P{c:ID}:log  KEYS[2] P{c:ID}:meta  KEYS[3] P{c:ID} (channel)
-- ARGV[1] chat id  ARGV[2] by (visitor|agent|system)  ARGV[3] reason  ARGV[4] now
-- ARGV[5] visitor id  ARGV[6] question  ARGV[7] visitor name  ARGV[8] when the question was asked
-- Returns 1 when ended now, 0 when it already was.
local log, meta, ch = KEYS[1], KEYS[2], KEYS[3]
if redis.call('HGET', meta, 'state') == 'ended' then return 0 end
if ARGV[6] ~= '' and redis.call('XLEN', log) == 0 then
  append(log, ch, ARGV[1], 'message', 'visitor', ARGV[7], ARGV[6], ARGV[8], '', '')
end
redis.call('HSET', meta, 'state', 'ended', 'visitor', ARGV[5])
append(log, ch, ARGV[1], 'system', ARGV[2], '', ARGV[3], ARGV[4], '', 'ended')
return 1
