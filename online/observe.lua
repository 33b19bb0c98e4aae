-- One /observe, atomically: dedupe, compare-and-set the user's state, append the event to the
-- feedback log, remember the event id, the seen item and the stream id. Spec:
-- docs/redis_layout.md. All KEYS share one hash tag (one Cluster slot).
-- KEYS: state, seen, eids, events, recent
-- ARGV: expected header ('' = no state yet), new value, event_id, user_id, item_id, reward,
--       timestamp (epoch us), prediction_id, propensity, dedupe window, recent length
-- Returns {'dup'} | {'conflict', current value or false} | {'ok', stream id}
if redis.call('ZSCORE', KEYS[3], ARGV[3]) then
  return {'dup'}
end
local current = redis.call('GET', KEYS[1])
local header = ''
if current then
  header = string.sub(current, 1, 8)
end
if header ~= ARGV[1] then
  return {'conflict', current}
end
redis.call('SET', KEYS[1], ARGV[2])
local id = redis.call('XADD', KEYS[4], '*',
  'event_id', ARGV[3], 'user_id', ARGV[4], 'item_id', ARGV[5], 'reward', ARGV[6],
  'timestamp', ARGV[7], 'prediction_id', ARGV[8], 'propensity', ARGV[9])
redis.call('ZADD', KEYS[3], tonumber(string.match(id, '^%d+')), ARGV[3])
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -tonumber(ARGV[10]) - 1)
redis.call('SADD', KEYS[2], ARGV[5])
redis.call('RPUSH', KEYS[5], id)
redis.call('LTRIM', KEYS[5], -tonumber(ARGV[11]), -1)
return {'ok', id}
