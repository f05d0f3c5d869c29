-- Helpers prepended to every routing script ({r} slot). `rp` is the routing key prefix "P{r}:".
-- An agent is in `avail:Q` for each of its queues exactly while it is available with free capacity
-- and not `unroutable` (no console connected anywhere for `chat.agent_unroutable_ms`: presence).
-- `staffed` (field Q: "1"/"0") says whether `avail:Q` has anyone; it changes only here, in the same
-- script that moved the agent, and each change is published on `sch` ("Q:1" / "Q:0").
-- `agent_totals` holds the cluster's sums the gauges report (field `load`: offers and chats of all
-- agents; field `free`: free slots of available agents). Each agent record keeps what it adds to
-- them (`c_load`, `c_free`), so a change moves the sums by the difference, in the same script.
local function staffed_check(rp, q)
  local now_staffed = (redis.call('ZCARD', rp .. 'avail:' .. q) > 0) and '1' or '0'
  if redis.call('HGET', rp .. 'staffed', q) ~= now_staffed then
    redis.call('HSET', rp .. 'staffed', q, now_staffed)
    redis.call('SPUBLISH', rp .. 'sch', q .. ':' .. now_staffed)
  end
end

local function refresh_agent(rp, aid)
  local key = rp .. 'agent:' .. aid
  local st, max, load, idle, queues, c_load, c_free, gone = unpack(redis.call('HMGET', key,
    'status', 'max', 'load', 'idle_since', 'queues', 'c_load', 'c_free', 'unroutable'))
  load = tonumber(load) or 0
  max = tonumber(max) or 0
  idle = tonumber(idle) or 0
  local ok = (st == 'available' and load < max and gone ~= '1')
  for q in string.gmatch(queues or '', '[^,]+') do
    if ok then
      redis.call('ZADD', rp .. 'avail:' .. q, load * 1e13 + idle, aid)
    else
      redis.call('ZREM', rp .. 'avail:' .. q, aid)
    end
    staffed_check(rp, q)
  end
  local free = 0
  if ok then free = max - load end
  local d_load, d_free = load - (tonumber(c_load) or 0), free - (tonumber(c_free) or 0)
  if d_load ~= 0 or d_free ~= 0 then
    local totals = rp .. 'agent_totals'
    redis.call('HINCRBY', totals, 'load', d_load)
    redis.call('HINCRBY', totals, 'free', d_free)
    redis.call('HSET', key, 'c_load', load, 'c_free', free)
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

-- Moves a running chat's assignment from one agent to another (a transfer, a supervisor's
-- take-over): its place in the agents' chat sets and load, and the `join:ID` outbox timer that
-- writes the transcript side. The caller has set the record's `agent`.
local function move_chat(rp, cid, from, to, now, lease)
  redis.call('SREM', rp .. 'agentchats:' .. from, cid)
  redis.call('SADD', rp .. 'agentchats:' .. to, cid)
  add_load(rp, from, -1, now)
  add_load(rp, to, 1, now)
  redis.call('ZADD', rp .. 'timers', now + lease, 'join:' .. cid)
end

local function notify_queue(rp, queue)
  redis.call('SPUBLISH', rp .. 'qch', queue)
end

-- Keeps one hour of a queue's events for the supervisors' monitor in a sorted set scored by
-- time (`accepted:Q` members "CHAT:WAIT_MS", `missed:Q` members "CHAT:NOW"); older ones go on
-- every write, so each set holds at most an hour.
local function record_recent(rp, kind, queue, now, member)
  local key = rp .. kind .. ':' .. queue
  redis.call('ZADD', key, now, member)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - 3600000)
end

-- Keeps the queue's last 20 request-to-accept times (ms, newest first) for the wait estimate,
-- and the last hour's accepts for the monitor.
local function record_wait(rp, queue, cid, now, ms)
  local key = rp .. 'waits:' .. queue
  ms = math.max(0, ms)
  redis.call('LPUSH', key, ms)
  redis.call('LTRIM', key, 0, 19)
  record_recent(rp, 'accepted', queue, now, cid .. ':' .. ms)
end

-- A pending offer of chat `cid` (hash `ckey`) to agent `aid` goes back to its place (`ticket`)
-- in `queue`: queued again, out of the agent's chats and without its offer timer, the agent's
-- load released, the queue's watchers told. A deny or timeout (`requeue.lua`) and an agent
-- without a console (`agent_presence.lua`) both do this.
local function offer_back(rp, ckey, cid, aid, queue, ticket, now)
  redis.call('HSET', ckey, 'state', 'queued')
  redis.call('HDEL', ckey, 'offered_to', 'offered_at')
  redis.call('ZADD', rp .. 'q:' .. queue, ticket, cid)
  redis.call('SREM', rp .. 'agentchats:' .. aid, cid)
  redis.call('ZREM', rp .. 'timers', 'offer:' .. cid)
  add_load(rp, aid, -1, now)
  notify_queue(rp, queue)
end

-- Denied sets whose reset time has come (`denyreset`, scored by due time) are dropped, so an
-- agent who denied or missed a request gets it offered again.
local function clear_due_denials(rp, now)
  local due = redis.call('ZRANGEBYSCORE', rp .. 'denyreset', '-inf', now, 'LIMIT', 0, 100)
  for _, cid in ipairs(due) do
    redis.call('DEL', rp .. 'denied:' .. cid)
    redis.call('ZREM', rp .. 'denyreset', cid)
  end
end

-- One routing pass over a queue: offers its waiting chats to available agents, oldest request
-- first; an agent gets a chat only while it has free capacity and never one it already denied
-- or let time out. Looks at up to `batch` waiting chats. Returns a flat list
-- {chat, agent, name, email, email_verified, question, created, ...}: each offer with what its
-- offer frame shows, so the caller tells the agent without reading the chat again.
local function route_queue(rp, queue, now, timeout, batch)
  local qkey, avail = rp .. 'q:' .. queue, rp .. 'avail:' .. queue
  local offers = {}
  clear_due_denials(rp, now)
  local waiting = redis.call('ZRANGE', qkey, 0, batch - 1)
  for _, cid in ipairs(waiting) do
    local cands = redis.call('ZRANGE', avail, 0, 63)
    if #cands == 0 then break end
    local denied = rp .. 'denied:' .. cid
    for _, aid in ipairs(cands) do
      if redis.call('SISMEMBER', denied, aid) == 0 then
        local ckey = rp .. 'chat:' .. cid
        redis.call('ZREM', qkey, cid)
        redis.call('HSET', ckey, 'state', 'offered', 'offered_to', aid, 'offered_at', now)
        redis.call('SADD', rp .. 'agentchats:' .. aid, cid)
        add_load(rp, aid, 1, now)
        redis.call('ZADD', rp .. 'timers', now + timeout, 'offer:' .. cid)
        local n, e, ev, qu, c = unpack(redis.call('HMGET', ckey, 'name', 'email', 'email_verified',
          'question', 'created'))
        for _, v in ipairs({cid, aid, n or '', e or '', ev or '0', qu or '', c or '0'}) do
          offers[#offers + 1] = v
        end
        break
      end
    end
  end
  return offers
end
