-- The inviting agent's message opens the transcript of a proactive chat, so the Message
-- records what the visitor was invited with. Idempotent: only into an empty transcript.
-- KEYS[1] P{c:ID}:log  KEYS[2] P{c:ID}:meta  KEYS[3] P{c:ID} (channel)
-- ARGV[1] chat id  ARGV[2] agent display name  ARGV[3] text  ARGV[4] when sent  ARGV[5] agent id
-- Returns 1 when written now, 0 when the transcript already had entries.
if redis.call('XLEN', KEYS[1]) > 0 then return 0 end
append(KEYS[1], KEYS[3], ARGV[1], 'message', 'agent', ARGV[2], ARGV[3], ARGV[4], '', '', '', ARGV[5])
return 1
