-- Removes a member this node serves; the room goes with its last member.
-- 0 when the member is not this node's (it moved elsewhere, or is gone).
-- KEYS: 1 room, 2 members, 3 where, 4 nodes, 5 resume, 6 rooms, 7 noderooms:me
-- ARGV: 1 me, 2 member id, 3 resume-token hash, 4 room name, 5 event channel
if redis.call('HGET', KEYS[3], ARGV[2]) ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[2])
redis.call('HDEL', KEYS[5], ARGV[3])
if redis.call('HINCRBY', KEYS[4], ARGV[1], -1) <= 0 then
  redis.call('HDEL', KEYS[4], ARGV[1])
  redis.call('SREM', KEYS[7], ARGV[4])
end
if redis.call('HLEN', KEYS[2]) == 0 then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
  redis.call('SREM', KEYS[6], ARGV[4])
  return 1
end
local ver = redis.call('HINCRBY', KEYS[1], 'ver', 1)
redis.call('PUBLISH', ARGV[5], '{"t":"left","room":' .. cjson.encode(ARGV[4]) ..
  ',"ver":' .. ver .. ',"node":' .. cjson.encode(ARGV[1]) .. ',"id":' .. cjson.encode(ARGV[2]) .. '}')
return 1
