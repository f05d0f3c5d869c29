-- Reads a queue's Waiting list for the console: the oldest waiting requests with what the agent
-- needs to pick one. Read-only; one round trip instead of one per request.
-- KEYS[1] P{r}:q:QUEUE
-- ARGV[1] rp  ARGV[2] most requests returned
-- Returns flat {chat, name, email, question, created, page url, ...} and the number waiting
-- as the last element.
local rp = ARGV[1]
local out = {}
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
for _, cid in ipairs(ids) do
  local n, e, qu, c, v = unpack(redis.call('HMGET', rp .. 'chat:' .. cid, 'name', 'email', 'question', 'created', 'visitor'))
  local url = ''
  if v then url = redis.call('HGET', rp .. 'visitor:' .. v, 'url') or '' end
  for _, x in ipairs({cid, n or '', e or '', qu or '', c or '0', url}) do
    out[#out + 1] = x
  end
end
out[#out + 1] = tostring(redis.call('ZCARD', KEYS[1]))
return out
