-- Webhook events, prepended to every routing script ({r} slot; docs/design-redis.md#webhooks).
-- `hook_event` appends an event to the webhook stream in the same step as the change it reports,
-- only when an enabled endpoint wants its type (field of `P{r}:hooks:types`), so a node that
-- dies right after the script cannot lose it. The stream entry holds the exact body the
-- endpoints receive: {id, type, created_at, data}.
local function hook_event(rp, etype, eid, now, data)
  if redis.call('HEXISTS', rp .. 'hooks:types', etype) == 0 then return end
  local body = cjson.encode({id = eid, type = etype, created_at = now, data = data})
  redis.call('XADD', rp .. 'hooks:events', '*', 'event', body)
end

-- A stored string as an event field: empty or missing is JSON null.
local function hook_str(s)
  if s == nil or s == false or s == '' then return cjson.null end
  return s
end

-- `chat.accepted` for a chat that just became active with agent `aid` (an accept, an accepted
-- invitation); the record's visitor, queue, name, e-mail and request time come with it.
local function hook_accepted(rp, chat_key, cid, aid, now, proactive)
  local v, q, n, e, c = unpack(redis.call('HMGET', chat_key, 'visitor', 'queue', 'name', 'email',
    'created'))
  hook_event(rp, 'chat.accepted', 'evt_' .. cid .. '_accepted_' .. now, now, {chat_id = cid,
    queue = q, visitor_id = v, agent_id = tonumber(aid), name = hook_str(n), email = hook_str(e),
    requested_at = tonumber(c), accepted_at = now, proactive = proactive})
end
