-- Replaces the set of wanted webhook event types (type -> enabled endpoints wanting it), as
-- computed from the SQL store after a change or by a node's periodic check.
-- KEYS[1] P{r}:hooks:types
-- ARGV[1..] type, count, type, count, ...
redis.call('DEL', KEYS[1])
for i = 1, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
return 1
