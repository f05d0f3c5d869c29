-- A page view of a visitor on the site. The first view of a visit creates the record
-- ("arrive"); later ones update it ("page"). The record keeps only what the list shows (the
-- current page, already cut to length by the caller, and the number of page views); the page
-- joins the bounded history (oldest first). The list of visitors present is ordered by the
-- start of the visit, which page views never change: a reader paging through the list meets
-- each visitor once, however busy the site (ordered by last seen, browsing visitors would
-- keep moving past its cursor).
-- KEYS[1] P{r}:visitor:V  KEYS[2] P{r}:vpages:V  KEYS[3] P{r}:visitors
-- ARGV[1] rp  ARGV[2] visitor id  ARGV[3] now  ARGV[4] url  ARGV[5] title  ARGV[6] referrer
-- ARGV[7] ip  ARGV[8] country ("" = unknown, keeps the last one)  ARGV[9] max pages kept
-- ARGV[10] the browser's User-Agent, cut to length ("" = unknown, keeps the last one); only the
-- chat's visitor panel reads it, so the list's records stay small
-- Returns {kind, the hash as a flat list, number of live chats of the visitor}.
local rp, vid, now = ARGV[1], ARGV[2], ARGV[3]
local kind = 'page'
if redis.call('EXISTS', KEYS[1]) == 0 then
  kind = 'arrive'
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'id', vid, 'started_at', now)
end
-- last_seen is strictly increasing within a visit: watchers order changes that reach them
-- through different nodes' batches by it.
local seen = math.max(tonumber(now), (tonumber(redis.call('HGET', KEYS[1], 'last_seen')) or 0) + 1)
redis.call('HSET', KEYS[1], 'last_seen', seen, 'url', ARGV[4], 'title', ARGV[5], 'ip', ARGV[7])
redis.call('HINCRBY', KEYS[1], 'pages', 1)
if ARGV[8] ~= '' then
  redis.call('HSET', KEYS[1], 'country', ARGV[8])
end
if ARGV[10] ~= '' then
  redis.call('HSET', KEYS[1], 'browser', ARGV[10])
end
redis.call('RPUSH', KEYS[2], cjson.encode({
  url = ARGV[4], title = ARGV[5], referrer = ARGV[6], at = tonumber(now) }))
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[9]), -1)
redis.call('ZADD', KEYS[3], redis.call('HGET', KEYS[1], 'started_at'), vid)
return {kind, redis.call('HGETALL', KEYS[1]), redis.call('SCARD', rp .. 'visitorchats:' .. vid)}
