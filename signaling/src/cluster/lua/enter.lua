-- Enters a member in a room, creating the room (this node its first home)
-- when it does not exist. Atomic: two nodes can never both create a room.
-- KEYS: 1 room, 2 members, 3 where, 4 nodes, 5 resume, 6 rooms, 7 noderooms:me
-- ARGV: 1 me, 2 wanted mode ('' none), 3 default mode, 4 max p2p, 5 max sfu,
--       6 member id, 7 member json, 8 guard ('1': refuse when the room
--       exists and has no member on this node), 9 resume-token hash,
--       10 room name, 11 event channel
local mode = redis.call('HGET', KEYS[1], 'mode')
local exists = mode ~= false
if exists then
  if ARGV[2] ~= '' and ARGV[2] ~= mode then return {'mode_mismatch', mode} end
else
  mode = ARGV[2]
  if mode == '' then mode = ARGV[3] end
end
local max = tonumber(ARGV[5])
if mode == 'p2p' then max = tonumber(ARGV[4]) end
local already = redis.call('HGET', KEYS[3], ARGV[6])
if not already and redis.call('HLEN', KEYS[2]) >= max then return {'room_full', mode} end
if ARGV[8] == '1' and exists and redis.call('HEXISTS', KEYS[4], ARGV[1]) == 0 then
  return {'elsewhere', mode}
end
if not exists then redis.call('HSET', KEYS[1], 'mode', mode, 'home', ARGV[1]) end
local ver = redis.call('HINCRBY', KEYS[1], 'ver', 1)
redis.call('HSET', KEYS[2], ARGV[6], ARGV[7])
if already ~= ARGV[1] then
  redis.call('HSET', KEYS[3], ARGV[6], ARGV[1])
  redis.call('HINCRBY', KEYS[4], ARGV[1], 1)
end
redis.call('HSET', KEYS[5], ARGV[9], ARGV[6])
redis.call('SADD', KEYS[6], ARGV[10])
redis.call('SADD', KEYS[7], ARGV[10])
redis.call('PUBLISH', ARGV[11], '{"t":"joined","room":' .. cjson.encode(ARGV[10]) ..
  ',"ver":' .. ver .. ',"node":' .. cjson.encode(ARGV[1]) .. ',"member":' .. ARGV[7] .. '}')
return {'ok', mode, tostring(ver), redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3])}
