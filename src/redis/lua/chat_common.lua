-- Helpers prepended to every transcript script ({c:ID} slot).
-- Appends one entry to the chat's stream and tells the nodes following the chat, in one step.
-- The published payload is the entry with the chat id as a MessagePack map, so a node decodes
-- it once and cheaply (length-prefixed strings: no escape scanning of the text, as JSON needs).
-- `data` is "" or a JSON document (link, pushed page or file details), kept as text.
-- `aid` is the id of the agent an entry is by or about ("" otherwise): consoles tell their own
-- entries from a colleague's by it, since several agents may write into one chat.
local function append(log, channel, cid, kind, author, name, text, at, cmid, event, data, aid)
  data = data or ''
  aid = aid or ''
  local seq = redis.call('XADD', log, '*', 'k', kind, 'a', author, 'n', name, 't', text, 'at', at,
    'm', cmid, 'e', event, 'd', data, 'i', aid)
  redis.call('SPUBLISH', channel, cmsgpack.pack({
    chat_id = cid, seq = seq, kind = kind, author = author, name = name, text = text,
    at = tonumber(at), client_msg_id = cmid, event = event, data = data, author_id = aid }))
  return seq
end
