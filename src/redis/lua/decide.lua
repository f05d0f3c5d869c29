-- Records what becomes of an ended chat's transcript and schedules its flush (outbox timer
-- `flush:ID`). The decision timer passes agent "" and decision "keep".
-- KEYS[1] P{r}:chat:ID
-- ARGV[1] rp  ARGV[2] chat id  ARGV[3] agent id or ""  ARGV[4] decision  ARGV[5] interaction id or ""
-- ARGV[6] now  ARGV[7] timer lease ms
-- Returns "ok" or error "not_found" / "forbidden" / "wrong_state" / "already".
local rp, cid, aid, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[6])
local st, agent = unpack(redis.call('HMGET', KEYS[1], 'state', 'agent'))
if not st then return redis.error_reply('not_found') end
if aid ~= '' and agent ~= aid then return redis.error_reply('forbidden') end
if st == 'decided' then return redis.error_reply('already') end
if st ~= 'ended' then return redis.error_reply('wrong_state') end
redis.call('HSET', KEYS[1], 'state', 'decided', 'decision', ARGV[4], 'interaction', ARGV[5],
  'decided_by', aid, 'decided_at', now)
redis.call('ZREM', rp .. 'timers', 'wrapup:' .. cid)
if agent then redis.call('SREM', rp .. 'agentchats:' .. agent, cid) end
redis.call('ZADD', rp .. 'timers', now + tonumber(ARGV[7]), 'flush:' .. cid)
return 'ok'
