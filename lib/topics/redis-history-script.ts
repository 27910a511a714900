/**
 * The Lua scripts of the Redis history store (./redis-history.ts). Each runs atomically in
 * Redis, so the epoch, the offset, the stream entry and the publication of one append can never
 * be seen apart, and two instances appending to one topic can never get the same offset.
 *
 * Keys of a topic T (both under the adapter's prefix):
 * - `${prefix}#p#T`, a hash, the position: `e` the epoch, `o` the last offset given. It is
 *   created (with the random epoch the caller passes) by whichever script finds it missing,
 *   which also deletes any stream left without it: a lost position is a new epoch.
 * - `${prefix}#h#T`, a stream: one entry per kept publication, id `0-<offset>`, fields
 *   `t` (Redis's clock in ms when appended) and `d` (the JSON text). With the offset as the
 *   id's sequence number the id is the offset: XRANGE from `0-<offset + 1>` finds where a
 *   resuming subscriber left in O(log n), no index of our own; the ms part stays 0 because the
 *   age is the `t` field, which also keeps ids increasing whatever the clock does.
 */

/**
 * Shared by both scripts. A stream entry as XRANGE returns it is `{ id, { 't', ms, 'd', data } }`.
 * The position, when missing, is made with the caller's random epoch; a stream left without
 * its position belongs to no epoch and goes.
 */
const HELPERS = `
local function now_ms ()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
local function position (meta, stream, epoch, ttl)
  local found = redis.call('HMGET', meta, 'e', 'o')
  if found[1] then return found[1], tonumber(found[2]) end
  redis.call('HSET', meta, 'e', epoch, 'o', 0)
  if tonumber(ttl) > 0 then redis.call('PEXPIRE', meta, ttl) end
  redis.call('DEL', stream)
  return epoch, 0
end
`

/**
 * KEYS: position, stream. ARGV: new epoch (used if the position is missing), data, maxMessages,
 * maxAge, position ttl (both in ms, 0: no limit), channel, envelope header, '1' for SPUBLISH.
 * Gives the next offset, keeps the entry (MAXLEN exact: at most maxMessages; then the entries
 * older than maxAge, at most 16 per append: the stream can never grow faster than one per
 * append), sets the keys' TTLs and publishes `<header><epoch> <offset> <data>` on the topic's
 * channel. Returns { epoch, offset }.
 */
export const APPEND_SCRIPT = `${HELPERS}
local meta, stream = KEYS[1], KEYS[2]
local now = now_ms()
local epoch = position(meta, stream, ARGV[1], ARGV[5])
local offset = redis.call('HINCRBY', meta, 'o', 1)
redis.call('XADD', stream, 'MAXLEN', '=', ARGV[3], '0-' .. offset, 't', now, 'd', ARGV[2])
local max_age = tonumber(ARGV[4])
if max_age > 0 then
  local cutoff = now - max_age
  local aged = nil
  for _, entry in ipairs(redis.call('XRANGE', stream, '-', '+', 'COUNT', 16)) do
    if tonumber(entry[2][2]) >= cutoff then break end
    aged = entry[1]
  end
  if aged then redis.call('XTRIM', stream, 'MINID', '0-' .. (tonumber(string.sub(aged, 3)) + 1)) end
  redis.call('PEXPIRE', stream, max_age)
end
if tonumber(ARGV[5]) > 0 then redis.call('PEXPIRE', meta, ARGV[5]) end
redis.call(ARGV[8] == '1' and 'SPUBLISH' or 'PUBLISH', ARGV[6], ARGV[7] .. epoch .. ' ' .. offset .. ' ' .. ARGV[2])
return { epoch, offset }
`

/**
 * KEYS: position, stream. ARGV: new epoch (used if the position is missing), position ttl,
 * epoch asked for ('' for the position only), offset asked for, maxAge (0: no limit).
 * Returns { epoch, last offset } for the position only, else
 * { epoch, last offset, status, first offset, data... } where status is 'ok', 'epoch' (the
 * stream is another one, or the offset is beyond its end) or 'too-old' (the entry after the
 * offset asked for was trimmed or is older than maxAge), and the data are the kept entries after
 * the offset asked for, from the first offset on (also when 'too-old': a gap fill takes what is
 * left).
 */
export const READ_SCRIPT = `${HELPERS}
local meta, stream = KEYS[1], KEYS[2]
local epoch, last = position(meta, stream, ARGV[1], ARGV[2])
if ARGV[3] == '' then return { epoch, last } end
local since = tonumber(ARGV[4])
if epoch ~= ARGV[3] or since > last then return { epoch, last, 'epoch', 0 } end
if since == last then return { epoch, last, 'ok', last + 1 } end
local cutoff = 0
if tonumber(ARGV[5]) > 0 then cutoff = now_ms() - tonumber(ARGV[5]) end
local entries = redis.call('XRANGE', stream, '0-' .. (since + 1), '+')
local reply = { epoch, last, 'ok', 0 }
local first = nil
for _, entry in ipairs(entries) do
  if first or tonumber(entry[2][2]) >= cutoff then
    if not first then first = tonumber(string.sub(entry[1], 3)) end
    reply[#reply + 1] = entry[2][4]
  end
end
if since < last and first ~= since + 1 then reply[3] = 'too-old' end
reply[4] = first or (last + 1)
return reply
`
