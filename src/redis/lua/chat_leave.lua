-- An agent hands a running chat on (a transfer): the transcript says so ("Ann Lee left the
-- chat", event `left`), so the visitor sees who left before whoever joins next. Writes only
-- while the agent is the chat's agent on the transcript side, so a repeat writes nothing.
-- KEYS[1] P{c:ID}:log  KEYS[2] P{c:ID}:meta  KEYS[3] P{c:ID} (channel)
-- ARGV[1] chat id  ARGV[2] agent id  ARGV[3] agent display name  ARGV[4] text  ARGV[5] now
-- Returns 1 when written now, 0 otherwise.
local log, meta, ch = KEYS[1], KEYS[2], KEYS[3]
local agent, st = unpack(redis.call('HMGET', meta, 'agent', 'state'))
if agent ~= ARGV[2] or st ~= 'open' then return 0 end
append(log, ch, ARGV[1], 'system', 'system', ARGV[3], ARGV[4], ARGV[5], '', 'left', '', ARGV[2])
return 1
