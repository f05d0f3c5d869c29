-- Marks a live chat's node-built webhook events (`chat.ended`, `interaction.decided`) as already
-- emitted, so a chat closed for a data erasure sends no transcript anywhere. Only a chat that
-- still exists (a forgotten one must not come back as a stray hash).
-- KEYS[1] P{r}:chat:ID
-- Returns 1 when marked, 0 when the chat is gone.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'hook_ended', '1', 'hook_decided', '1')
return 1
