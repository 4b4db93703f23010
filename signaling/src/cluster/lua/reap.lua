-- Removes every member a node served (it died, or is leaving the cluster)
-- and the node itself. Idempotent: a second run finds nothing to do.
-- ARGV: 1 prefix, 2 node
local P, dead = ARGV[1], ARGV[2]
local removed = 0
for _, room in ipairs(redis.call('SMEMBERS', P .. 'noderooms:' .. dead)) do
  local R = P .. 'room:' .. room
  local where = redis.call('HGETALL', R .. ':where')
  local resume = redis.call('HGETALL', R .. ':resume')
  for i = 1, #where, 2 do
    if where[i + 1] == dead then
      local id = where[i]
      redis.call('HDEL', R .. ':members', id)
      redis.call('HDEL', R .. ':where', id)
      for j = 1, #resume, 2 do
        if resume[j + 1] == id then redis.call('HDEL', R .. ':resume', resume[j]) end
      end
      removed = removed + 1
      if redis.call('HLEN', R .. ':members') > 0 then
        local ver = redis.call('HINCRBY', R, 'ver', 1)
        redis.call('PUBLISH', P .. 'events:' .. room, '{"t":"left","room":' .. cjson.encode(room) ..
          ',"ver":' .. ver .. ',"node":' .. cjson.encode(dead) .. ',"id":' .. cjson.encode(id) .. '}')
      end
    end
  end
  redis.call('HDEL', R .. ':nodes', dead)
  if redis.call('HLEN', R .. ':members') == 0 then
    redis.call('DEL', R, R .. ':members', R .. ':where', R .. ':nodes', R .. ':resume')
    redis.call('SREM', P .. 'rooms', room)
  end
end
redis.call('DEL', P .. 'noderooms:' .. dead)
redis.call('DEL', P .. 'node:' .. dead)
redis.call('SREM', P .. 'nodes', dead)
return removed
