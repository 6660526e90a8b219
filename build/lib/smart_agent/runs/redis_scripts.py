"""The Lua scripts of the Redis run log: each write or resume step is one atomic round trip.

Keys of a run (see `RunKeys`): `meta` hash (owner, status, created, ended, usage, producer, `n` the
events added, `cut` the id of the newest event trimmed away), `events` stream (fields h "n offset kind":
the event's number, the byte length of the text before it, its kind; d its JSON data; two fields, not
four, because parsing the replies is most of a reader's cost), `text` string (the reply, APPENDed),
`lease` (the producing instance's id, with a PX TTL), `known` (the tombstone that outlives the rest so a
late reader learns the run expired rather than never existed) and the owner's `running` sorted set
(run ids scored by lease expiry in ms, so a dead producer's runs stop counting by themselves).
"""

from __future__ import annotations

from typing import Final

# Ids are compared as (ms, seq) pairs of decimal strings without leading zeros: Lua numbers are
# doubles and a client may send a 20-digit sequence number.
_COMPARE = """
local function split(id)
  local dash = string.find(id, '-', 1, true)
  return string.sub(id, 1, dash - 1), string.sub(id, dash + 1)
end
local function num_lt(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end
local function id_lt(a, b)
  local am, as = split(a)
  local bm, bs = split(b)
  if am ~= bm then return num_lt(am, bm) end
  return num_lt(as, bs)
end
"""

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# Exact trimming (MAXLEN =, not ~) so a run keeps exactly `max_events` like the in-memory log; the
# event about to be trimmed is remembered as `cut` so a resume from before it gets a snapshot.
_ADD = """
local function add(meta, events, text, kind, data, token, max_events, ttl)
  local n = redis.call('HINCRBY', meta, 'n', 1)
  local offset = redis.call('STRLEN', text)
  if redis.call('XLEN', events) >= tonumber(max_events) then
    local oldest = redis.call('XRANGE', events, '-', '+', 'COUNT', 1)
    redis.call('HSET', meta, 'cut', oldest[1][1])
  end
  local id = redis.call('XADD', events, 'MAXLEN', max_events, '*',
    'h', n .. ' ' .. offset .. ' ' .. kind, 'd', data)
  if token ~= '' then redis.call('APPEND', text, token) end
  redis.call('PEXPIRE', events, ttl)
  redis.call('PEXPIRE', text, ttl)
  return id
end
"""

CREATE: Final = (
    _NOW
    + """
-- KEYS meta known lease running; ARGV run_id owner max_running lease_ms ttl_ms known_ms created producer
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
local running = redis.call('ZCARD', KEYS[4])
if running >= tonumber(ARGV[3]) then return {'limit', running} end
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then return {'taken', running} end
redis.call('HSET', KEYS[1], 'owner', ARGV[2], 'status', 'running', 'created', ARGV[7],
  'producer', ARGV[8], 'n', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('SET', KEYS[2], 1, 'PX', ARGV[6])
redis.call('SET', KEYS[3], ARGV[8], 'PX', ARGV[4])
redis.call('ZADD', KEYS[4], now + tonumber(ARGV[4]), ARGV[1])
redis.call('PEXPIRE', KEYS[4], ARGV[5])
return {'ok', running}
"""
)

APPEND: Final = (
    _ADD
    + """
-- KEYS meta events text; ARGV kind data token max_events ttl_ms
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return false end
return add(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
"""
)

FINISH: Final = (
    _ADD
    + """
-- KEYS meta events text lease known running; ARGV run_id kind data status usage ended
--   retention_ms known_ms max_events
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return false end
local id = add(KEYS[1], KEYS[2], KEYS[3], ARGV[2], ARGV[3], '', ARGV[9], ARGV[7])
redis.call('HSET', KEYS[1], 'status', ARGV[4], 'usage', ARGV[5], 'ended', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
redis.call('DEL', KEYS[4])
redis.call('SET', KEYS[5], 1, 'PX', ARGV[8])
redis.call('ZREM', KEYS[6], ARGV[1])
return id
"""
)

REFRESH: Final = (
    _NOW
    + """
-- KEYS meta events text lease known running; ARGV run_id producer lease_ms ttl_ms known_ms
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
redis.call('SET', KEYS[4], ARGV[2], 'PX', ARGV[3])
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[4]) end
redis.call('PEXPIRE', KEYS[5], ARGV[5])
redis.call('ZADD', KEYS[6], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[6], ARGV[4])
return 1
"""
)

RUNNING: Final = (
    _NOW
    + """
-- KEYS running
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
"""
)

PAGE: Final = (
    _COMPARE
    + """
-- KEYS meta events text known; ARGV after count mode ('open' may answer with a snapshot)
-- Returns {'ok', status, after, snapshot or nil, n, entries} or {'expired'|'unknown'|'invalid'|'slow'}.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  if redis.call('EXISTS', KEYS[4]) == 1 then return {'expired'} end
  return {'unknown'}
end
local after = ARGV[1]
local newest = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local last = '0-0'
if #newest > 0 then last = newest[1][1] end
if id_lt(last, after) then return {'invalid'} end
local snapshot = false
local cut = redis.call('HGET', KEYS[1], 'cut')
if cut and id_lt(after, cut) then
  if ARGV[3] ~= 'open' then return {'slow'} end
  local oldest = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
  local offset = tonumber(string.match(oldest[1][2][2], '^%d+ (%d+) '))
  snapshot = ''
  if offset > 0 then snapshot = redis.call('GETRANGE', KEYS[3], 0, offset - 1) end
  after = cut
end
local entries = redis.call('XRANGE', KEYS[2], '(' .. after, '+', 'COUNT', ARGV[2])
return {'ok', status, after, snapshot, redis.call('HGET', KEYS[1], 'n'), entries}
"""
)
