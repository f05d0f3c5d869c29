-- Helpers prepended to every routing script ({r} slot). `rp` is the routing key prefix "P{r}:".
-- An agent is in `avail:Q` for each of its queues exactly while it is available with free capacity.
local function refresh_agent(rp, aid)
  local st, max, load, idle, queues = unpack(redis.call('HMGET', rp .. 'agent:' .. aid,
    'status', 'max', 'load', 'idle_since', 'queues'))
  load = tonumber(load) or 0
  max = tonumber(max) or 0
  idle = tonumber(idle) or 0
  local ok = (st == 'available' and load < max)
  for q in string.gmatch(queues or '', '[^,]+') do
    if ok then
      redis.call('ZADD', rp .. 'avail:' .. q, load * 1e13 + idle, aid)
    else
      redis.call('ZREM', rp .. 'avail:' .. q, aid)
    end
  end
end

-- Changes an agent's load (offers + accepted chats) and re-ranks it.
local function add_load(rp, aid, delta, now)
  local key = rp .. 'agent:' .. aid
  local l = redis.call('HINCRBY', key, 'load', delta)
  if l < 0 then
    redis.call('HSET', key, 'load', 0)
  end
  redis.call('HSET', key, 'idle_since', now)
  refresh_agent(rp, aid)
end

local function notify_queue(rp, queue)
  redis.call('SPUBLISH', rp .. 'qch', queue)
end
