-- Something about a present visitor changed besides a page view (a chat started or ended, the
-- pre-chat form named them): last_seen moves on (it orders the changes watchers get) and the
-- record is read in the same step.
-- KEYS[1] P{r}:visitor:V
-- ARGV[1] rp  ARGV[2] visitor id  ARGV[3] now
-- Returns {} when the visitor is not on the site, else {the hash as a flat list, number of
-- live chats}.
local rp, vid = ARGV[1], ARGV[2]
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
local seen = math.max(tonumber(ARGV[3]), (tonumber(redis.call('HGET', KEYS[1], 'last_seen')) or 0) + 1)
redis.call('HSET', KEYS[1], 'last_seen', seen)
return {redis.call('HGETALL', KEYS[1]), redis.call('SCARD', rp .. 'visitorchats:' .. vid)}
