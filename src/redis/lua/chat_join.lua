-- The agent joins the transcript side of an accepted chat. Idempotent: a second run for the
-- same agent appends nothing. The visitor's first question (if any) opens the transcript.
-- `agents` in the meta hash lists every agent who joined (comma separated, in order): they may
-- download the chat's files after the flush.
-- KEYS[1] P{c:ID}:log  KEYS[2] P{c:ID}:meta  KEYS[3] P{c:ID} (channel)
-- ARGV[1] chat id  ARGV[2] visitor id  ARGV[3] agent id  ARGV[4] agent name
-- ARGV[5] question  ARGV[6] visitor name  ARGV[7] now  ARGV[8] joined text
-- ARGV[9] when the question was asked
-- Returns 1 when joined now, 0 when it already was.
local log, meta, ch = KEYS[1], KEYS[2], KEYS[3]
local cid = ARGV[1]
if redis.call('HGET', meta, 'agent') == ARGV[3] then return 0 end
if redis.call('HGET', meta, 'state') == 'ended' then return 0 end
if ARGV[5] ~= '' and redis.call('XLEN', log) == 0 then
  append(log, ch, cid, 'message', 'visitor', ARGV[6], ARGV[5], ARGV[9], '', '')
end
local agents = redis.call('HGET', meta, 'agents')
if not agents or agents == '' then
  agents = ARGV[3]
elseif not string.find(',' .. agents .. ',', ',' .. ARGV[3] .. ',', 1, true) then
  agents = agents .. ',' .. ARGV[3]
end
redis.call('HSET', meta, 'visitor', ARGV[2], 'agent', ARGV[3], 'state', 'open', 'agents', agents)
append(log, ch, cid, 'system', 'system', ARGV[4], ARGV[8], ARGV[7], '', 'joined', '', ARGV[3])
return 1
