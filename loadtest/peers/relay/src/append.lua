-- Appends one message to the chat's stream and publishes it to the chat's channel, in one step.
-- KEYS[1] P{c:ID}:log  KEYS[2] P{c:ID} (the chat's channel)
-- ARGV[1] origin (node:connection)  ARGV[2] author  ARGV[3] client message id  ARGV[4] text
-- ARGV[5] now (ms)
-- Returns the stream id (the message's sequence number).
-- The published payload is the fields joined by newlines, the text last (it may hold any byte).
local seq = redis.call('XADD', KEYS[1], '*', 'a', ARGV[2], 't', ARGV[4], 'm', ARGV[3], 'at', ARGV[5])
redis.call('SPUBLISH', KEYS[2], ARGV[1] .. '\n' .. seq .. '\n' .. ARGV[2] .. '\n' .. ARGV[3] .. '\n' .. ARGV[5] .. '\n' .. ARGV[4])
return seq
