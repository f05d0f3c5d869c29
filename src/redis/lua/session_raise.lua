-- Raises an agent's session version in Redis, never lowers it, and when it rose tells the
-- nodes holding the agent's sockets (one step: a node cannot see the new version without the
-- message having gone out). Never lowering it means a node that read an older version from the
-- store (a cache miss racing a revocation) cannot bring revoked tokens back.
-- KEYS[1] P{u:a:A}:session  KEYS[2] P{u:a:A} (the agent's channel)
-- ARGV[1] version  ARGV[2] time to live ms (at least an agent token's lifetime)
-- ARGV[3] payload to publish when the version rose ("" = nothing)
-- Returns the version in force.
local v = tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]))
if cur and cur >= v then
  if cur == v then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
  return cur
end
redis.call('SET', KEYS[1], v, 'PX', ARGV[2])
if ARGV[3] ~= '' then
  redis.call('SPUBLISH', KEYS[2], ARGV[3])
end
return v
