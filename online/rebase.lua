-- Store a rebased state if nothing changed since its catch-up read (a compare-and-set on the
-- state's 8-byte header and on the user's last stream id). Spec: online/rebase.py.
-- KEYS: state, applied, recent (one hash tag)
-- ARGV: expected header ('' = no state), expected last id ('' = none), new value, new applied
-- Returns 1 if stored, 0 if the state or the user's log moved on (the next read rebases again).
local current = redis.call('GET', KEYS[1])
local header = ''
if current then
  header = string.sub(current, 1, 8)
end
if header ~= ARGV[1] or (redis.call('LINDEX', KEYS[3], -1) or '') ~= ARGV[2] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], ARGV[4])
return 1
