-- The read of a rebase, atomically: a user's state under one snapshot version and the user's
-- logged events that the state does not include yet. Spec: docs/redis_layout.md, online/rebase.py.
-- KEYS: state, applied, recent, events (one hash tag)
-- ARGV: the version's training cutoff in the user's log partition (a stream id)
-- Returns {state, applied, last id, entries not found, {id, fields}...}: the entries of the
-- user's `recent` list after `applied` (with a state) or after the cutoff (without one), in
-- log order; "not found" counts listed ids whose entries were trimmed from the log.
local state = redis.call('GET', KEYS[1])
local applied = redis.call('GET', KEYS[2])
local after = ARGV[1]
if state and applied then
  after = applied
end
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local after_ms, after_seq = parse(after)
local ids = redis.call('LRANGE', KEYS[3], 0, -1)
local reply = {state, applied, ids[#ids] or false, 0}
for _, id in ipairs(ids) do
  local ms, seq = parse(id)
  if ms > after_ms or (ms == after_ms and seq > after_seq) then
    local entry = redis.call('XRANGE', KEYS[4], id, id)[1]
    if entry then
      reply[#reply + 1] = entry
    else
      reply[4] = reply[4] + 1
    end
  end
end
return reply
