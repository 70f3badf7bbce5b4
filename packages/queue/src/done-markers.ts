import { idempotencyKey } from './naming.js';

// The done-markers of SPEC §6 in a compact layout (docs/idempotency-memory.md): instead of one
// key per event (`groq:event:<id>` = `done`, ~170 bytes of Redis), each marker is one member of
// a small sorted set, ~25 bytes. The claim key `groq:event:<id>` keeps the in-flight claim
// (`processing:<token>`, with the job lock's TTL) and, from the previous layout, `done` markers
// until they expire, which every script here still honours.
//
// A group (`groq:done` on a single Redis, `groq:done:{<tag>}` per slot on a Cluster) is a hash
// of its state — L and p (linear hashing: there are 2^L + p buckets), n (markers held), c and at
// (the sweep's cursor and the time of its last step, ms) — and its buckets `<group>:<b>`:
// sorted sets whose members are the first 12 bytes of SHA-1(event id) and whose scores are the
// markers' expiries in Unix seconds. About 40 members a bucket keeps every bucket in Redis's
// compact listpack encoding (≤ 128 members of ≤ 64 bytes, the defaults); a marker is done while
// its expiry is after Redis's clock, whether or not the sweep has dropped it yet.

/** Split a bucket when the markers pass this many per bucket on average. */
export const MAX_LOAD = 40;
/** Merge the last split back when they fall under this many per bucket. */
export const MIN_LOAD = 10;
/** A merge that would leave more members than this in one bucket waits. */
export const MERGE_LIMIT = 100;
/** What the claim key of an event id starts with: the scripts read the event id after it. */
const CLAIM_PREFIX_LENGTH = idempotencyKey('').length;

/**
 * How a worker writes done-markers: `buckets` (the compact layout), or `one-key` (one
 * `groq:event:<id>` = `done` key per event, the previous layout: for the memory benchmark's
 * comparison, set in the upgrade record). Every reader honours both.
 */
export type MarkerLayout = 'buckets' | 'one-key';

/** What the scripts that write done-markers need to know, read once at a worker's start. */
export interface MarkerSettings {
  readonly layout: MarkerLayout;
  /**
   * Until this Unix time (s), each new marker also leaves the previous layout's `done` in its
   * claim key, so that processes of the previous version still running skip the event (a rolling
   * upgrade). 0: never.
   */
  readonly shadowUntil: number;
}

/** The compact layout, nothing shadowed: a fresh install, or a reader. */
export const DEFAULT_MARKER_SETTINGS: MarkerSettings = Object.freeze({
  layout: 'buckets',
  shadowUntil: 0,
});

/**
 * Redis's clock in the scripts: whole seconds, and whether a fraction of a second has passed.
 * Exported for the benchmarks and tests, which replace it to simulate a week.
 */
export const REDIS_CLOCK = `local function clock()
  local t = rcall('TIME')
  return tonumber(t[1]), t[2] ~= '0'
end`;

/**
 * A marker script whose clock reads the Unix seconds stored at `key` when that key is set (else
 * Redis's clock): for the tests and benchmarks that simulate a week. The rest of the script is
 * unchanged. Single Redis only (`key` is not declared).
 */
export function withSimulatedClock(lua: string, key: string): string {
  if (!lua.includes(REDIS_CLOCK)) throw new Error('not a marker script');
  return lua.replace(
    REDIS_CLOCK,
    `local function clock()
  local simulated = rcall('GET', '${key}')
  if simulated then return tonumber(simulated), false end
  local t = rcall('TIME')
  return tonumber(t[1]), t[2] ~= '0'
end`,
  );
}

/**
 * The Lua every marker script starts with (Lua 5.1: numbers are doubles, exact up to 2^53).
 * Names are distinct from BullMQ's, whose job finish runs in the same script on the fast path.
 */
export const MARKER_PRELUDE = `
local rcall = redis.call
local floor = math.floor
${REDIS_CLOCK}
-- An event's marker: the first 96 bits of the SHA-1 of its id as 12 bytes, and their first 32
-- bits as a number, which picks its bucket.
local function markerOf(id)
  local hex = redis.sha1hex(id)
  local a = tonumber(string.sub(hex, 1, 8), 16)
  local b = tonumber(string.sub(hex, 9, 16), 16)
  local c = tonumber(string.sub(hex, 17, 24), 16)
  return string.char(
    floor(a / 16777216), floor(a / 65536) % 256, floor(a / 256) % 256, a % 256,
    floor(b / 16777216), floor(b / 65536) % 256, floor(b / 256) % 256, b % 256,
    floor(c / 16777216), floor(c / 65536) % 256, floor(c / 256) % 256, c % 256), a
end
local function markerHash(member)
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
local function markersLevel(group)
  local m = rcall('HMGET', group, 'L', 'p', 'n')
  return tonumber(m[1]) or 0, tonumber(m[2]) or 0, tonumber(m[3]) or 0
end
-- The event's marker's expiry (Unix s), or false when it has none or it has expired.
local function markedUntil(group, L, p, id, now)
  local member, h = markerOf(id)
  local expiry = rcall('ZSCORE', group .. ':' .. bucketOf(h, L, p), member)
  if expiry then
    expiry = tonumber(expiry)
    if expiry > now then return expiry end
  end
  return false
end
-- Moves bucket p's members whose hash has bit L set to the new bucket p + 2^L, dropping expired
-- ones first: one bucket (about ${2 * MAX_LOAD} members). Copies before it removes, so a script stopped
-- half-way (on a Cluster, by a slot migration) loses no marker. Returns the new L, p and how
-- many expired members it dropped.
local function splitBucket(group, L, p, now)
  local low = 2 ^ L
  local from = group .. ':' .. p
  local dropped = rcall('ZREMRANGEBYSCORE', from, '-inf', now)
  local entries = rcall('ZRANGE', from, 0, -1, 'WITHSCORES')
  local move, moved = {}, {}
  for i = 1, #entries, 2 do
    if markerHash(entries[i]) % (low * 2) ~= p then
      move[#move + 1] = entries[i + 1]
      move[#move + 1] = entries[i]
      moved[#moved + 1] = entries[i]
    end
  end
  if #moved > 0 then
    rcall('ZADD', group .. ':' .. (p + low), unpack(move))
    rcall('ZREM', from, unpack(moved))
  end
  p = p + 1
  if p == low then return L + 1, 0, dropped end
  return L, p, dropped
end
-- Undoes the last split (bucket p + 2^L back into p, copied before it is deleted), dropping
-- expired members, unless the result would hold more than ${MERGE_LIMIT} (then nil). Returns the new L, p
-- and how many it dropped.
local function mergeBuckets(group, L, p, now)
  local low = 2 ^ L
  if p == 0 then
    low = low / 2
    L, p = L - 1, low
  end
  p = p - 1
  local from = group .. ':' .. (p + low)
  local into = group .. ':' .. p
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
-- Writes the marker of event id, expiring at expiry, then drops its bucket's expired members;
-- splits a bucket when the group is over-loaded. Returns the new L, p, n. The ZADD comes first:
-- Redis refuses a script under maxmemory at its first write only if that write may grow memory
-- (any write before it, even one removing nothing, lets the rest through), so a mark that is
-- the first write of its script is refused whole, before anything is written.
local function addMarker(group, L, p, n, id, expiry, now)
  local member, h = markerOf(id)
  local key = group .. ':' .. bucketOf(h, L, p)
  n = n + rcall('ZADD', key, expiry, member)
  n = n - rcall('ZREMRANGEBYSCORE', key, '-inf', now)
  if n > ${MAX_LOAD} * (2 ^ L + p) then
    local dropped
    L, p, dropped = splitBucket(group, L, p, now)
    n = n - dropped
  end
  return L, p, n
end
`;

/**
 * `markAllDone(group, keys, from, ttl, shadowUntil)`, per layout: marks done the events whose
 * claim keys are keys[from..], for ttl seconds (rounded up to the second: a marker lasts at least
 * the TTL and less than a second more). Their claims go, or, until shadowUntil (Unix s), become
 * the previous layout's `done` for processes of the previous version. Returns L, p (the group's
 * level after the marks) and Redis's clock.
 */
const MARK_ALL_DONE: Record<MarkerLayout, string> = {
  buckets: `
local function markAllDone(group, keys, from, ttl, shadowUntil)
  local now, fraction = clock()
  local expiry = now + ttl + (fraction and 1 or 0)
  local L, p, n = markersLevel(group)
  for i = from, #keys do
    L, p, n = addMarker(group, L, p, n, string.sub(keys[i], ${CLAIM_PREFIX_LENGTH + 1}), expiry, now)
    if shadowUntil > now then
      rcall('SET', keys[i], 'done', 'EXAT', shadowUntil)
    else
      rcall('DEL', keys[i])
    end
  end
  rcall('HSET', group, 'L', L, 'p', p, 'n', n)
  return L, p, now
end
`,
  'one-key': `
local function markAllDone(group, keys, from, ttl, shadowUntil)
  for i = from, #keys do rcall('SET', keys[i], 'done', 'EX', ttl) end
  local L, p = markersLevel(group)
  return L, p, (clock())
end
`,
};

/** The prelude and `markAllDone` of a layout: what a script that marks events done starts with. */
export function markerLua(layout: MarkerLayout): string {
  return MARKER_PRELUDE + MARK_ALL_DONE[layout];
}

/** The event id of a claim key, in Lua. */
export function eventIdOfClaimKey(key: string): string {
  return `string.sub(${key}, ${CLAIM_PREFIX_LENGTH + 1})`;
}

/**
 * Marks events done. KEYS: the group, then the events' claim keys (one event per call on a
 * Cluster). ARGV: the TTL (s), shadowUntil (Unix s, 0 = none). Replies 1.
 */
export function markDoneScript(layout: MarkerLayout): string {
  return `${markerLua(layout)}
markAllDone(KEYS[1], KEYS, 2, tonumber(ARGV[1]), tonumber(ARGV[2]))
return 1`;
}

/**
 * A script over many events of one marker group: KEYS are the group then the events' claim
 * keys; `body` runs per event with `key`, `id` (the event id), `now`, `L` and `p` in scope and
 * sets `replies[i - 1]`.
 */
function perEvent(body: string): string {
  return `${MARKER_PRELUDE}
local group = KEYS[1]
local now = clock()
local L, p = markersLevel(group)
local replies = {}
for i = 2, #KEYS do
  local key = KEYS[i]
  local id = ${eventIdOfClaimKey('key')}
${body}
end
return replies`;
}

/**
 * Looks events up. KEYS: the group, then the events' claim keys. Replies per event: its
 * marker's expiry (Unix s), 1 when the previous layout's marker says done, else 0.
 */
export const LOOKUP = perEvent(`
  local expiry = markedUntil(group, L, p, id, now)
  if expiry then
    replies[i - 1] = expiry
  elseif rcall('GET', key) == 'done' then
    replies[i - 1] = 1
  else
    replies[i - 1] = 0
  end`);

/**
 * The fresh claims of many events at once (a single Redis; one event per call on a Cluster).
 * KEYS: the group, then the claim keys. ARGV: the lock (ms), then one claim value per key.
 * Replies per event: 1 claimed, 2 done, 0 a record exists (the full claim sorts it out: busy,
 * ours, or the previous layout's done).
 */
export const CLAIM_FRESH = perEvent(`
  if markedUntil(group, L, p, id, now) then
    replies[i - 1] = 2
  elseif rcall('SET', key, ARGV[i], 'PX', ARGV[1], 'NX') then
    replies[i - 1] = 1
  else
    replies[i - 1] = 0
  end`);

/**
 * The claim of one event: 'done' (either layout), 'claimed' (free, or ours: the TTL renewed) or
 * 'busy'. KEYS: the group, the claim key. ARGV: the claim value, the lock (ms).
 */
export const CLAIM = `${MARKER_PRELUDE}
local group, key = KEYS[1], KEYS[2]
local L, p = markersLevel(group)
if markedUntil(group, L, p, ${eventIdOfClaimKey('key')}, (clock())) then return 'done' end
local v = rcall('GET', key)
if not v then
  rcall('SET', key, ARGV[1], 'PX', ARGV[2])
  return 'claimed'
end
if v == 'done' then return 'done' end
if v == ARGV[1] then
  rcall('PEXPIRE', key, ARGV[2])
  return 'claimed'
end
return 'busy'`;

/**
 * Forgets that an event was handled, in either layout (tests; an operator's repair). KEYS: the
 * group, the claim key. Replies 1 when there was a marker.
 */
export const FORGET = `${MARKER_PRELUDE}
local group, key = KEYS[1], KEYS[2]
local L, p = markersLevel(group)
local member, h = markerOf(${eventIdOfClaimKey('key')})
local removed = rcall('ZREM', group .. ':' .. bucketOf(h, L, p), member)
if removed == 1 then rcall('HINCRBY', group, 'n', -1) end
if rcall('GET', key) == 'done' then
  rcall('DEL', key)
  removed = 1
end
return removed`;

/**
 * One bounded step of the expiry sweep on one group: at most ARGV[1] buckets from the group's
 * cursor, their expired members dropped, then up to ARGV[3] merges while the group is
 * under-loaded. Skipped when a step ran less than ARGV[2] ms ago (the fleet shares the cursor,
 * so its sweep rate does not grow with its size). A step that covers the whole group recounts
 * it (a script stopped half-way on a Cluster may have left the count off by a few).
 * KEYS: the group. Replies {buckets visited, members removed, merges, markers held, buckets,
 * cursor}, or {-1} when skipped.
 */
export const SWEEP = `${MARKER_PRELUDE}
local group = KEYS[1]
local now = clock()
local t = rcall('TIME')
local nowMs = tonumber(t[1]) * 1000 + floor(tonumber(t[2]) / 1000)
local m = rcall('HMGET', group, 'L', 'p', 'n', 'c', 'at')
if not m[3] then return {0, 0, 0, 0, 0, 0} end
if nowMs - (tonumber(m[5]) or 0) < tonumber(ARGV[2]) then return {-1} end
local L, p, n, c = tonumber(m[1]), tonumber(m[2]), tonumber(m[3]), tonumber(m[4]) or 0
local buckets = 2 ^ L + p
local visits = math.min(tonumber(ARGV[1]), buckets)
local removed = 0
local whole = visits == buckets
local held = 0
for _ = 1, visits do
  if c >= buckets then c = 0 end
  local key = group .. ':' .. c
  removed = removed + rcall('ZREMRANGEBYSCORE', key, '-inf', now)
  if whole then held = held + rcall('ZCARD', key) end
  c = c + 1
end
if whole then n = held else n = n - removed end
local merges = 0
while merges < tonumber(ARGV[3]) and n < ${MIN_LOAD} * (2 ^ L + p) and 2 ^ L + p > 1 do
  local L2, p2, dropped = mergeBuckets(group, L, p, now)
  n = n - dropped
  removed = removed + dropped
  if L2 == nil then break end
  L, p = L2, p2
  merges = merges + 1
end
if c >= 2 ^ L + p then c = 0 end
rcall('HSET', group, 'L', L, 'p', p, 'n', n, 'c', c, 'at', nowMs)
return {visits, removed, merges, n, 2 ^ L + p, c}`;

/** The marker scripts' Lua, for the benchmarks that measure them (`bench/src/marker-layouts.ts`). */
export const DONE_MARKER_LUA = Object.freeze({
  prelude: MARKER_PRELUDE,
  markDone: markDoneScript,
  lookup: LOOKUP,
  sweep: SWEEP,
});
