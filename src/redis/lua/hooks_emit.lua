-- Appends a webhook event the node built (a transcript, a stored interaction) to the webhook
-- stream when an enabled endpoint wants its type. With a flag field, at most once per chat: the
-- flag is set in the chat's routing record in the same step, and a chat already forgotten
-- (flushed) emits nothing, so outbox handlers that run more than once emit once.
-- KEYS[1] P{r}:hooks:types  KEYS[2] P{r}:hooks:events  KEYS[3] P{r}:chat:ID (or any {r} key
-- when ARGV[3] is "")
-- ARGV[1] event type  ARGV[2] body (JSON)  ARGV[3] flag field in KEYS[3], or "" for none
-- Returns 1 when appended, 0 when not wanted or already emitted.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
if ARGV[3] ~= '' then
  if redis.call('EXISTS', KEYS[3]) == 0 then return 0 end
  if redis.call('HSETNX', KEYS[3], ARGV[3], '1') == 0 then return 0 end
end
redis.call('XADD', KEYS[2], '*', 'event', ARGV[2])
return 1
