-- Whether a node-built webhook event is still to be emitted, before the node spends a read of
-- the transcript on it: its type is wanted and the chat's flag is not set yet.
-- KEYS[1] P{r}:hooks:types  KEYS[2] P{r}:chat:ID
-- ARGV[1] event type  ARGV[2] flag field in KEYS[2]
-- Returns 1 or 0.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 0 end
return 1
