// The done-marker layout proposed in docs/idempotency-memory.md, as Lua, so that the layout
// benchmark (marker-layouts.ts) measures the code the document shows. Not used by the product
// yet: the implementation moves these scripts into packages/queue once issue 16 has landed.
//
// Layout (single Redis; on a Cluster one such group per slot, see the document):
// - `groq:done` (hash): L, p (linear-hashing level and split pointer), n (markers held),
//   c, at (the sweep's cursor and the time of its last step, ms);
// - `groq:done:<b>` (sorted set, listpack-encoded): member = the first 12 bytes of the SHA-1 of
//   the event id, score = the marker's expiry (Unix seconds);
// - `groq:event:<id>`: the claim (`processing:<token>`, PX = lock), and the old layout's
//   done-marker (`done`, EX = TTL), honoured until it expires.
//
// Every script takes ARGV[1] = a clock override in Unix seconds ('' = Redis's TIME): the
// benchmarks simulate a week with it. The production scripts read TIME only.

/** Split when the markers exceed this many per bucket on average. */
export const MAX_LOAD = 40;
/** Merge the last split back when they fall below this many per bucket. */
export const MIN_LOAD = 10;
/** A merge that would leave more members than this in one bucket waits. */
export const MERGE_LIMIT = 100;
/** What the claim key of an event id starts with (`idempotencyKey('')`). */
export const CLAIM_PREFIX = 'groq:event:';

/** Helpers shared by every script (Lua 5.1, numbers are doubles: exact up to 2^53). */
export const PRELUDE = `
local rcall = redis.call
local floor = math.floor
-- Redis's clock: whole seconds, and whether a fraction of a second has passed.
local function clock()
  if ARGV[1] ~= '' then return tonumber(ARGV[1]), false end
  local t = rcall('TIME')
  return tonumber(t[1]), t[2] ~= '0'
end
-- The member of an event id (the first 96 bits of its SHA-1, as 12 bytes) and its hash (the
-- first 32 of those bits), which picks the bucket.
local function digest(id)
  local hex = redis.sha1hex(id)
  local a = tonumber(string.sub(hex, 1, 8), 16)
  local b = tonumber(string.sub(hex, 9, 16), 16)
  local c = tonumber(string.sub(hex, 17, 24), 16)
  return string.char(
    floor(a / 16777216), floor(a / 65536) % 256, floor(a / 256) % 256, a % 256,
    floor(b / 16777216), floor(b / 65536) % 256, floor(b / 256) % 256, b % 256,
    floor(c / 16777216), floor(c / 65536) % 256, floor(c / 256) % 256, c % 256), a
end
local function hashOf(member)
  local b1, b2, b3, b4 = string.byte(member, 1, 4)
  return ((b1 * 256 + b2) * 256 + b3) * 256 + b4
end
-- Linear hashing: the bucket of hash h when there are 2^L + p buckets.
local function bucketOf(h, L, p)
  local low = 2 ^ L
  local b = h % low
  if b < p then b = h % (low * 2) end
  return b
end
local function level(meta)
  local m = rcall('HMGET', meta, 'L', 'p', 'n')
  return tonumber(m[1]) or 0, tonumber(m[2]) or 0, tonumber(m[3]) or 0
end
-- True when the event's marker exists and has not expired (a lagging sweep changes nothing).
local function isDone(meta, L, p, id, now)
  local member, h = digest(id)
  local expiry = rcall('ZSCORE', meta .. ':' .. bucketOf(h, L, p), member)
  return expiry ~= false and tonumber(expiry) > now
end
-- Moves bucket p's members whose hash has bit L set to the new bucket p + 2^L, dropping expired
-- ones first. At most one bucket's members (about ${2 * MAX_LOAD} on average, 128 before Redis
-- would convert it). Copies before it removes: a script stopped half-way by an error (on a
-- Cluster: a key of a slot being migrated) loses no marker. Returns the new L, p and how many
-- expired members it dropped.
local function split(meta, L, p, now)
  local low = 2 ^ L
  local from = meta .. ':' .. p
  local dropped = rcall('ZREMRANGEBYSCORE', from, '-inf', now)
  local entries = rcall('ZRANGE', from, 0, -1, 'WITHSCORES')
  local move, moved = {}, {}
  for i = 1, #entries, 2 do
    if hashOf(entries[i]) % (low * 2) ~= p then
      move[#move + 1] = entries[i + 1]
      move[#move + 1] = entries[i]
      moved[#moved + 1] = entries[i]
    end
  end
  if #moved > 0 then
    rcall('ZADD', meta .. ':' .. (p + low), unpack(move))
    rcall('ZREM', from, unpack(moved))
  end
  p = p + 1
  if p == low then return L + 1, 0, dropped end
  return L, p, dropped
end
-- Undoes the last split (bucket p + 2^L back into p, copied before it is deleted), dropping
-- expired members, unless the result would be too big (then nil). Returns the new L, p and how
-- many it dropped.
local function merge(meta, L, p, now)
  local low = 2 ^ L
  if p == 0 then
    low = low / 2
    L, p = L - 1, low
  end
  p = p - 1
  local from = meta .. ':' .. (p + low)
  local into = meta .. ':' .. p
  local dropped = rcall('ZREMRANGEBYSCORE', from, '-inf', now) +
    rcall('ZREMRANGEBYSCORE', into, '-inf', now)
  if rcall('ZCARD', from) + rcall('ZCARD', into) > ${MERGE_LIMIT} then return nil, nil, dropped end
  local entries = rcall('ZRANGE', from, 0, -1, 'WITHSCORES')
  if #entries > 0 then
    local args = {}
    for i = 1, #entries, 2 do
      args[#args + 1] = entries[i + 1]
      args[#args + 1] = entries[i]
    end
    rcall('ZADD', into, unpack(args))
    rcall('DEL', from)
  end
  return L, p, dropped
end
-- Writes the marker of event id (expiry: now + ttl, rounded up to the second) into its bucket,
-- after dropping that bucket's expired members. Returns the new L, p, n.
local function markDone(meta, L, p, n, id, expiry, now)
  local member, h = digest(id)
  local key = meta .. ':' .. bucketOf(h, L, p)
  n = n - rcall('ZREMRANGEBYSCORE', key, '-inf', now)
  n = n + rcall('ZADD', key, expiry, member)
  if n > ${MAX_LOAD} * (2 ^ L + p) then
    local dropped
    L, p, dropped = split(meta, L, p, now)
    n = n - dropped
  end
  return L, p, n
end
`;

/**
 * Marks a batch of events done (the coalesced `markDone` of the stock path on a single Redis;
 * the fused finish script calls `markDone` the same way for one event).
 * KEYS[1]: the group's meta key; KEYS[2..]: the events' claim keys (deleted, or overwritten
 * with the old layout's `done` until the rollout window ends).
 * ARGV: clock, TTL (s), shadowUntil (Unix s; 0 = none).
 */
export const MARK_DONE = `${PRELUDE}
local meta = KEYS[1]
local now, fraction = clock()
local expiry = now + tonumber(ARGV[2]) + (fraction and 1 or 0)
local shadowUntil = tonumber(ARGV[3])
local L, p, n = level(meta)
for i = 2, #KEYS do
  local id = string.sub(KEYS[i], ${CLAIM_PREFIX.length + 1})
  L, p, n = markDone(meta, L, p, n, id, expiry, now)
  -- Processes of the previous version only read the old marker: during a rolling upgrade it
  -- is kept (until the window ends), afterwards the claim simply goes.
  if shadowUntil > now then
    rcall('SET', KEYS[i], 'done', 'EXAT', shadowUntil)
  else
    rcall('DEL', KEYS[i])
  end
end
rcall('HSET', meta, 'L', L, 'p', p, 'n', n)
return n`;

/**
 * The lookup of the ingest's batch script, alone: for each event, 1 when it is done (new or
 * old layout), else 0. KEYS[1]: meta; KEYS[2..]: claim keys. ARGV: clock.
 */
export const LOOKUP = `${PRELUDE}
local meta = KEYS[1]
local now = clock()
local L, p = level(meta)
local done = {}
for i = 2, #KEYS do
  local key = KEYS[i]
  if rcall('GET', key) == 'done' or isDone(meta, L, p, string.sub(key, ${CLAIM_PREFIX.length + 1}), now) then
    done[i - 1] = 1
  else
    done[i - 1] = 0
  end
end
return done`;

/**
 * The stock path's fresh claims (one call for many events on a single Redis, one event per
 * call on a Cluster): per event 1 claimed, 2 done, 0 a record exists (the caller then runs the
 * full claim script, which sorts out busy, ours or the old layout's done).
 * KEYS[1]: meta; KEYS[2..]: claim keys. ARGV: clock, lock (ms), then one claim value per key.
 */
export const CLAIM_FRESH = `${PRELUDE}
local meta = KEYS[1]
local now = clock()
local L, p = level(meta)
local replies = {}
for i = 2, #KEYS do
  if isDone(meta, L, p, string.sub(KEYS[i], ${CLAIM_PREFIX.length + 1}), now) then
    replies[i - 1] = 2
  elseif rcall('SET', KEYS[i], ARGV[i + 1], 'PX', ARGV[2], 'NX') then
    replies[i - 1] = 1
  else
    replies[i - 1] = 0
  end
end
return replies`;

/**
 * The stock path's full claim of one event (after {@link CLAIM_FRESH} found a record, or on a
 * Cluster): 'done', 'claimed' or 'busy'. KEYS: meta, claim key. ARGV: clock, claim value, lock (ms).
 */
export const CLAIM = `${PRELUDE}
local meta, key = KEYS[1], KEYS[2]
local L, p = level(meta)
if isDone(meta, L, p, string.sub(key, ${CLAIM_PREFIX.length + 1}), clock()) then return 'done' end
local v = rcall('GET', key)
if not v then
  rcall('SET', key, ARGV[2], 'PX', ARGV[3])
  return 'claimed'
end
-- The old layout's marker, until it expires.
if v == 'done' then return 'done' end
if v == ARGV[2] then
  rcall('PEXPIRE', key, ARGV[3])
  return 'claimed'
end
return 'busy'`;

/**
 * Forgets that an event was handled (for \`events replay\`, which runs it again on purpose): its
 * member and the old layout's marker go. KEYS: meta, claim key. ARGV: clock. Replies 1 when
 * there was a marker.
 */
export const FORGET = `${PRELUDE}
local meta, key = KEYS[1], KEYS[2]
local L, p = level(meta)
local member, h = digest(string.sub(key, ${CLAIM_PREFIX.length + 1}))
local removed = rcall('ZREM', meta .. ':' .. bucketOf(h, L, p), member)
if removed == 1 then rcall('HINCRBY', meta, 'n', -1) end
if rcall('GET', key) == 'done' then
  rcall('DEL', key)
  removed = 1
end
return removed`;

/**
 * One bounded step of the expiry sweep, driven by the workers: at most ARGV[2] buckets from the
 * cursor, their expired members dropped, then up to ARGV[4] merges while the group is
 * under-loaded. Skipped when another worker stepped less than ARGV[3] ms ago, so the fleet's
 * sweep rate does not grow with its size. KEYS[1]: meta. ARGV: clock, maxBuckets, minGapMs,
 * maxMerges. Replies {buckets visited, members removed, merges, n} ({-1} when skipped).
 */
export const SWEEP = `${PRELUDE}
local meta = KEYS[1]
local now = clock()
local t = rcall('TIME')
local nowMs = tonumber(t[1]) * 1000 + floor(tonumber(t[2]) / 1000)
local m = rcall('HMGET', meta, 'L', 'p', 'n', 'c', 'at')
if not m[3] then return {0, 0, 0, 0} end
if nowMs - (tonumber(m[5]) or 0) < tonumber(ARGV[3]) then return {-1} end
local L, p, n, c = tonumber(m[1]), tonumber(m[2]), tonumber(m[3]), tonumber(m[4]) or 0
local buckets = 2 ^ L + p
local visits = math.min(tonumber(ARGV[2]), buckets)
local removed = 0
-- A group this step covers whole gets its count recounted: a script stopped half-way (on a
-- Cluster, by a slot migration) may have left it off by a few.
local whole = visits == buckets
local held = 0
for _ = 1, visits do
  if c >= buckets then c = 0 end
  local key = meta .. ':' .. c
  removed = removed + rcall('ZREMRANGEBYSCORE', key, '-inf', now)
  if whole then held = held + rcall('ZCARD', key) end
  c = c + 1
end
if whole then n = held else n = n - removed end
local merges = 0
while merges < tonumber(ARGV[4]) and n < ${MIN_LOAD} * (2 ^ L + p) and 2 ^ L + p > 1 do
  local L2, p2, dropped = merge(meta, L, p, now)
  n = n - dropped
  removed = removed + dropped
  if L2 == nil then break end
  L, p = L2, p2
  merges = merges + 1
end
if c >= 2 ^ L + p then c = 0 end
rcall('HSET', meta, 'L', L, 'p', p, 'n', n, 'c', c, 'at', nowMs)
return {visits, removed, merges, n}`;
