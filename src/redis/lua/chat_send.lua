-- Appends a participant's entry: a text, a link, a file or a pushed page. A resend with a client
-- message id this sender already used returns the sequence number of the first copy and stores
-- nothing (ids are per sender: role and id, so a transferred chat's agents never collide).
-- KEYS[1] P{c:ID}:log  KEYS[2] P{c:ID}:meta  KEYS[3] P{c:ID}:cmid  KEYS[4] P{c:ID} (channel)
-- ARGV[1] chat id  ARGV[2] role (visitor|agent)  ARGV[3] actor id  ARGV[4] display name
-- ARGV[5] client message id  ARGV[6] text  ARGV[7] now
-- ARGV[8] kind (message|system)  ARGV[9] event ("" | link | file | push_page)  ARGV[10] data JSON or ""
-- Returns {seq, 1 if new | 0 if a duplicate} or error "wrong_state" / "forbidden".
local log, meta, cmids, ch = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local st, vid, aid = unpack(redis.call('HMGET', meta, 'state', 'visitor', 'agent'))
local who = (ARGV[2] == 'visitor') and vid or aid
if st and who ~= ARGV[3] then return redis.error_reply('forbidden') end
local dedupe = ARGV[2] .. ':' .. ARGV[3] .. ':' .. ARGV[5]
local known = redis.call('HGET', cmids, dedupe)
if known then return {known, 0} end
if st ~= 'open' then return redis.error_reply('wrong_state') end
local seq = append(log, ch, ARGV[1], ARGV[8], ARGV[2], ARGV[4], ARGV[6], ARGV[7], ARGV[5], ARGV[9], ARGV[10])
redis.call('HSET', cmids, dedupe, seq)
return {seq, 1}
