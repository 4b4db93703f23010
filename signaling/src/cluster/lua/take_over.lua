-- Moves the member holding a resume token to this node (it reconnected or
-- moved here); the room sees no leave. Nil when no member holds the token.
-- KEYS: 1 room, 2 members, 3 where, 4 nodes, 5 resume, 6 noderooms:me
-- ARGV: 1 me, 2 resume-token hash, 3 room name, 4 event channel, 5 prefix
local id = redis.call('HGET', KEYS[5], ARGV[2])
if not id then return false end
local member = redis.call('HGET', KEYS[2], id)
if not member then return false end
local old = redis.call('HGET', KEYS[3], id)
local ver = redis.call('HINCRBY', KEYS[1], 'ver', 1)
if old ~= ARGV[1] then
  redis.call('HSET', KEYS[3], id, ARGV[1])
  if old then
    if redis.call('HINCRBY', KEYS[4], old, -1) <= 0 then
      redis.call('HDEL', KEYS[4], old)
      redis.call('SREM', ARGV[5] .. 'noderooms:' .. old, ARGV[3])
    end
  end
  redis.call('HINCRBY', KEYS[4], ARGV[1], 1)
  redis.call('SADD', KEYS[6], ARGV[3])
  redis.call('PUBLISH', ARGV[4], '{"t":"moved","room":' .. cjson.encode(ARGV[3]) ..
    ',"ver":' .. ver .. ',"node":' .. cjson.encode(ARGV[1]) .. ',"id":' .. cjson.encode(id) .. '}')
end
return {id, member, redis.call('HGET', KEYS[1], 'mode'), tostring(ver),
  redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3])}
