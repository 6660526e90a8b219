"""The Lua scripts of the Redis run log: each write or resume step is one atomic round trip.

Keys of a run (see `RunKeys`): `meta` hash (owner, status, created, ended, usage, producer, `n` the
events added, `cut` the id of the newest event trimmed away, `moved` the text spans moved to the
reasoning), `events` stream (fields h "n text:reasoning kind": the event's number, the byte lengths
of the text and of the reasoning before it, its kind; d its JSON data; two fields, not five, because
parsing the replies is most of a reader's cost), `text` string (the reply, APPENDed), `reasoning`
string (the thinking, APPENDed), `lease` (the producing instance's id, with a PX TTL), `known` (the
tombstone that outlives the rest so a late reader learns the run expired rather than never existed)
and the owner's `running` sorted set (run ids scored by lease expiry in ms, so a dead producer's runs
stop counting by themselves).

Moving text to the reasoning (`reasoning_moved`) keeps both strings append-only, so every byte offset
an event header recorded stays valid: the script that adds the event APPENDs the moved characters to
`reasoning` and records in `meta.moved` the span of `text` they came from ("n:start:end ", n the
event's number, byte offsets). The text as readers know it is `text` without the spans of the moves
made so far; a snapshot standing for the events before number m leaves out the spans of moves numbered
below m only, so it is exactly what a reader folding every event from the start holds at that point.
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

# The spans of `text` moved to the reasoning by the events numbered below `before` (every one when
# nil), sorted and merged: {{start, stop}, ...} in bytes, stop excluded.
_MOVED = """
local function moved_spans(meta, before)
  local spans = {}
  for n, a, b in string.gmatch(redis.call('HGET', meta, 'moved') or '', '(%d+):(%d+):(%d+)') do
    if before == nil or tonumber(n) < before then table.insert(spans, {tonumber(a), tonumber(b)}) end
  end
  table.sort(spans, function(x, y) return x[1] < y[1] end)
  local merged = {}
  for _, span in ipairs(spans) do
    local last = merged[#merged]
    if last and span[1] <= last[2] then
      if span[2] > last[2] then last[2] = span[2] end
    else
      table.insert(merged, {span[1], span[2]})
    end
  end
  return merged
end
"""

# Moves the last `chars` characters of the text readers know (UTF-8, so characters are counted by
# their lead bytes, walking back from the end over the spans already moved) to the reasoning.
_MOVE = """
local function move(meta, text, reasoning, n, chars)
  local spans = moved_spans(meta, nil)
  local stop = redis.call('STRLEN', text)
  local pos, i, need, pieces = stop, #spans, chars, {}
  while need > 0 and pos > 0 do
    if i >= 1 and spans[i][2] >= pos then
      pos = math.min(pos, spans[i][1])
      i = i - 1
    else
      local low = 0
      if i >= 1 then low = spans[i][2] end
      local from = math.max(low, pos - 4 * need)
      local chunk = redis.call('GETRANGE', text, from, pos - 1)
      local j = #chunk
      while j >= 1 and need > 0 do
        local byte = string.byte(chunk, j)
        if byte < 128 or byte >= 192 then need = need - 1 end
        j = j - 1
      end
      table.insert(pieces, 1, string.sub(chunk, j + 1))
      pos = from + j
    end
  end
  if pos < stop then
    redis.call('APPEND', reasoning, table.concat(pieces))
    redis.call('HSET', meta, 'moved',
      (redis.call('HGET', meta, 'moved') or '') .. n .. ':' .. pos .. ':' .. stop .. ' ')
  end
end
"""

# Exact trimming (MAXLEN =, not ~) so a run keeps exactly `max_events` like the in-memory log; the
# event about to be trimmed is remembered as `cut` so a resume from before it gets a snapshot.
_ADD = (
    _MOVED
    + _MOVE
    + """
local function add(meta, events, text, reasoning, kind, data, token, thought, moved, max_events, ttl)
  local n = redis.call('HINCRBY', meta, 'n', 1)
  local header = n .. ' ' .. redis.call('STRLEN', text) .. ':' .. redis.call('STRLEN', reasoning)
  if redis.call('XLEN', events) >= tonumber(max_events) then
    local oldest = redis.call('XRANGE', events, '-', '+', 'COUNT', 1)
    redis.call('HSET', meta, 'cut', oldest[1][1])
  end
  local id = redis.call('XADD', events, 'MAXLEN', max_events, '*', 'h', header .. ' ' .. kind, 'd', data)
  if token ~= '' then redis.call('APPEND', text, token) end
  if thought ~= '' then redis.call('APPEND', reasoning, thought) end
  if tonumber(moved) > 0 then move(meta, text, reasoning, n, tonumber(moved)) end
  redis.call('PEXPIRE', events, ttl)
  redis.call('PEXPIRE', text, ttl)
  redis.call('PEXPIRE', reasoning, ttl)
  return id
end
"""
)

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
-- KEYS meta events text reasoning; ARGV kind data token thought moved_chars max_events ttl_ms
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return false end
return add(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
"""
)

FINISH: Final = (
    _ADD
    + """
-- KEYS meta events text lease known running reasoning; ARGV run_id kind data status usage ended
--   retention_ms known_ms max_events
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return false end
local id = add(KEYS[1], KEYS[2], KEYS[3], KEYS[7], ARGV[2], ARGV[3], '', '', 0, ARGV[9], ARGV[7])
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
-- KEYS meta events text lease known running reasoning; ARGV run_id producer lease_ms ttl_ms known_ms
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
redis.call('SET', KEYS[4], ARGV[2], 'PX', ARGV[3])
for _, i in ipairs({1, 2, 3, 7}) do redis.call('PEXPIRE', KEYS[i], ARGV[4]) end
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
    + _MOVED
    + """
-- KEYS meta events text known reasoning; ARGV after count mode ('open' may answer with a snapshot)
-- Returns {'ok', status, after, snapshot text or nil, n, entries, snapshot reasoning or nil}
-- or {'expired'|'unknown'|'invalid'|'slow'}.
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
local snapshot, thought = false, false
local cut = redis.call('HGET', KEYS[1], 'cut')
if cut and id_lt(after, cut) then
  if ARGV[3] ~= 'open' then return {'slow'} end
  local oldest = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
  local n, offset, thought_offset = string.match(oldest[1][2][2], '^(%d+) (%d+):(%d+) ')
  if not n then  -- written before the reasoning had a key of its own: "n text kind"
    n, offset = string.match(oldest[1][2][2], '^(%d+) (%d+) ')
    thought_offset = 0
  end
  snapshot, thought = '', ''
  local pos = 0
  for _, span in ipairs(moved_spans(KEYS[1], tonumber(n))) do
    if span[1] > pos then snapshot = snapshot .. redis.call('GETRANGE', KEYS[3], pos, span[1] - 1) end
    pos = span[2]
  end
  if tonumber(offset) > pos then snapshot = snapshot .. redis.call('GETRANGE', KEYS[3], pos, offset - 1) end
  if tonumber(thought_offset) > 0 then thought = redis.call('GETRANGE', KEYS[5], 0, thought_offset - 1) end
  after = cut
end
local entries = redis.call('XRANGE', KEYS[2], '(' .. after, '+', 'COUNT', ARGV[2])
return {'ok', status, after, snapshot, redis.call('HGET', KEYS[1], 'n'), entries, thought}
"""
)
