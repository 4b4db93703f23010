-- Replaces the record of a member this node serves after a media-state change.
-- KEYS: 1 room, 2 members, 3 where
-- ARGV: 1 me, 2 member id, 3 member json, 4 room name, 5 event channel, 6 media json
if redis.call('HGET', KEYS[3], ARGV[2]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
local ver = redis.call('HINCRBY', KEYS[1], 'ver', 1)
redis.call('PUBLISH', ARGV[5], '{"t":"media","room":' .. cjson.encode(ARGV[4]) ..
  ',"ver":' .. ver .. ',"node":' .. cjson.encode(ARGV[1]) .. ',"id":' .. cjson.encode(ARGV[2]) ..
  ',"media":' .. ARGV[6] .. '}')
return 1
