-- Appends a participant's entry: a text, a link, a file or a pushed page. A resend with a client
-- message id this sender already used returns the sequence number of the first copy and stores
-- nothing (ids are per sender: role and id, so a transferred chat's agents never collide).
-- The transcript is capped: participant entries and their bytes (text and details) are counted
-- in the meta hash (`n`, `b`). At the cap the visitor is refused; the first refusal also writes
-- one system entry (event `transcript_full`) so the agent sees why. The agent may write a small
-- reserve beyond the cap (to say so and end the chat); ending is never refused.
-- KEYS[1] P{c:ID}:log  KEYS[2] P{c:ID}:meta  KEYS[3] P{c:ID}:cmid  KEYS[4] P{c:ID} (channel)
-- A `supervisor` writes only whispers (event `whisper`, internal: the node checked the role and
-- never delivers them to the visitor); the script lets any supervisor id write one.
-- The time of the visitor's last entry is kept in the meta hash (`vlast`) for the monitor.
-- ARGV[1] chat id  ARGV[2] role (visitor|agent|supervisor)  ARGV[3] actor id  ARGV[4] display name
-- ARGV[5] client message id  ARGV[6] text  ARGV[7] now
-- ARGV[8] kind (message|system)  ARGV[9] event ("" | link | file | push_page)  ARGV[10] data JSON or ""
-- ARGV[11] max participant entries  ARGV[12] max participant bytes
-- ARGV[13] agent's reserve of entries  ARGV[14] agent's reserve of bytes
-- ARGV[15] text of the `transcript_full` system entry
-- ARGV[16] the published entry without `seq`: a MessagePack map of 11 entries holding the other
--          10 (chat_id, kind, author, name, text, at, client_msg_id, event, data, author_id)
-- Returns {seq, 1 if new | 0 if a duplicate} or error "wrong_state" / "forbidden" / "cap_reached".
local log, meta, cmids, ch = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local st, vid, aid, n, b, full = unpack(redis.call('HMGET', meta, 'state', 'visitor', 'agent', 'n', 'b', 'full'))
local who = aid
if ARGV[2] == 'visitor' then who = vid elseif ARGV[2] == 'supervisor' then who = ARGV[3] end
if st and who ~= ARGV[3] then return redis.error_reply('forbidden') end
local dedupe = ARGV[2] .. ':' .. ARGV[3] .. ':' .. ARGV[5]
local known = redis.call('HGET', cmids, dedupe)
if known then return {known, 0} end
if st ~= 'open' then return redis.error_reply('wrong_state') end
n, b = tonumber(n) or 0, tonumber(b) or 0
local size = #ARGV[6] + #ARGV[10]
local max_n, max_b = tonumber(ARGV[11]), tonumber(ARGV[12])
if ARGV[2] ~= 'visitor' then
  max_n, max_b = max_n + tonumber(ARGV[13]), max_b + tonumber(ARGV[14])
end
if n + 1 > max_n or b + size > max_b then
  if ARGV[2] == 'visitor' and not full then
    redis.call('HSET', meta, 'full', 1)
    append(log, ch, ARGV[1], 'system', 'system', '', ARGV[15], ARGV[7], '', 'transcript_full', '')
  end
  return redis.error_reply('cap_reached')
end
local aid = (ARGV[2] == 'agent') and ARGV[3] or ''
local seq = redis.call('XADD', log, '*', 'k', ARGV[8], 'a', ARGV[2], 'n', ARGV[4], 't', ARGV[6],
  'at', ARGV[7], 'm', ARGV[5], 'e', ARGV[9], 'd', ARGV[10], 'i', aid)
-- The entry as `append` publishes it, packed by the node (ARGV[16]) but for `seq`: a stream id
-- ("ms-n") is shorter than 32 bytes, a MessagePack fixstr, unless its counter is huge.
local packed_seq = (#seq < 32) and (string.char(0xa0 + #seq) .. seq) or ('\217' .. string.char(#seq) .. seq)
redis.call('SPUBLISH', ch, ARGV[16] .. '\163seq' .. packed_seq)
redis.call('HSET', cmids, dedupe, seq)
if ARGV[2] == 'visitor' then
  redis.call('HSET', meta, 'n', n + 1, 'b', b + size, 'vlast', ARGV[7])
else
  redis.call('HSET', meta, 'n', n + 1, 'b', b + size)
end
return {seq, 1}
