-- The visitor's grace period ran out: forget the visit (record, page history, list entry).
-- Idempotent.
-- KEYS[1] P{r}:visitor:V  KEYS[2] P{r}:vpages:V  KEYS[3] P{r}:visitors
-- ARGV[1] visitor id
-- Returns 1 when the visitor was present, 0 when already gone.
local listed = redis.call('ZREM', KEYS[3], ARGV[1])
local deleted = redis.call('DEL', KEYS[1], KEYS[2])
if listed + deleted > 0 then return 1 end
return 0
