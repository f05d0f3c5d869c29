-- The pre-chat form named a present visitor: the record shows the typed name and e-mail, unless
-- the site already vouched for the visitor's e-mail (signed identify): a typed e-mail never
-- replaces a verified one, nor its name.
-- KEYS[1] P{r}:visitor:V
-- ARGV[1] name ("" = keep)  ARGV[2] e-mail ("" = keep)
-- Returns 1 when the record changed, 0 when the visitor is gone or nothing changed.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], 'email_verified') == '1' then return 0 end
local changed = 0
if ARGV[1] ~= '' then
  redis.call('HSET', KEYS[1], 'name', ARGV[1])
  changed = 1
end
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'email', ARGV[2], 'email_verified', '0')
  changed = 1
end
return changed
