-- Sets fields of a visitor's record only while the visitor is present (a late write after
-- the visitor left must not bring back a partial record).
-- KEYS[1] P{r}:visitor:V
-- ARGV field, value, field, value, ...
-- Returns 1 when set, 0 when the visitor is gone.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
