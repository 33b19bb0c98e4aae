-- One /observe, atomically: dedupe, compare-and-set the user's state, append the event to the
-- feedback log, remember the event id, the seen item and the stream id. Spec:
-- docs/redis_layout.md. All KEYS share one hash tag (one Cluster slot).
-- KEYS: state, seen, eids, events, recent, applied, online error (of the partition and version),
--       rewarded items of the answer `prediction_id` joins
-- ARGV: expected header ('' = no state yet), new value, event_id, user_id, item_id, reward,
--       timestamp (epoch us), prediction_id, propensity, dedupe window, recent length,
--       expected last stream id of the user ('' = none), squared prediction error ('' = none),
--       join ('' = none, 'joined' = a reward in the answer's window, 'default' = a default
--       reward for the item at the window's close), seconds to keep the rewarded items
-- Returns {'dup'} | {'rewarded'} | {'conflict', state, applied, last id (each false if none)} |
--         {'ok', stream id}
-- The last-id check makes "the state includes every event of the user up to `applied`" hold
-- even while another snapshot version appends events for the same user (see online/rebase.py).
if redis.call('ZSCORE', KEYS[3], ARGV[3]) then
  return {'dup'}
end
if ARGV[14] == 'default' and redis.call('SISMEMBER', KEYS[8], ARGV[5]) == 1 then
  return {'rewarded'}
end
local current = redis.call('GET', KEYS[1])
local header = ''
if current then
  header = string.sub(current, 1, 8)
end
local last = redis.call('LINDEX', KEYS[5], -1)
if header ~= ARGV[1] or (last or '') ~= ARGV[12] then
  return {'conflict', current, redis.call('GET', KEYS[6]), last}
end
redis.call('SET', KEYS[1], ARGV[2])
local id = redis.call('XADD', KEYS[4], '*',
  'event_id', ARGV[3], 'user_id', ARGV[4], 'item_id', ARGV[5], 'reward', ARGV[6],
  'timestamp', ARGV[7], 'prediction_id', ARGV[8], 'propensity', ARGV[9])
redis.call('SET', KEYS[6], id)
redis.call('ZADD', KEYS[3], tonumber(string.match(id, '^%d+')), ARGV[3])
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -tonumber(ARGV[10]) - 1)
redis.call('SADD', KEYS[2], ARGV[5])
redis.call('RPUSH', KEYS[5], id)
redis.call('LTRIM', KEYS[5], -tonumber(ARGV[11]), -1)
if ARGV[14] == 'joined' and ARGV[15] ~= '' then
  redis.call('SADD', KEYS[8], ARGV[5])
  redis.call('EXPIRE', KEYS[8], tonumber(ARGV[15]))
end
if ARGV[13] ~= '' then
  redis.call('HINCRBYFLOAT', KEYS[7], 'se', ARGV[13])
  redis.call('HINCRBY', KEYS[7], 'n', 1)
end
return {'ok', id}
