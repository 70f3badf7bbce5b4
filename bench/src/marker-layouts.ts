import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { closeRedis, clusterSlot, createRedis, type RedisClient } from '@groq-webhooks/queue';
import { startRedis, type TestRedis, waitFor } from '@groq-webhooks/testing';
import { eventIds, take } from './event-ids.js';
import { CLAIM_PREFIX, LOOKUP, MARK_DONE, MAX_LOAD, PRELUDE, SWEEP } from './marker-scripts.js';
import { machine } from './processes.js';

// node bench/dist/marker-layouts.js: Redis memory per remembered event for candidate layouts of
// the 7-day done-marker (docs/idempotency-memory.md), each on its own throwaway redis-server
// with the default configuration, and with --sweep the sweep's worst step at 10 million markers.

const { values: args } = parseArgs({
  args: process.argv.slice(2).filter((arg) => arg !== '--'),
  options: {
    // Marker counts at which used_memory is read (the last one is where filling stops).
    sizes: { type: 'string', default: '100000,200000,1000000,3000000' },
    layouts: { type: 'string' },
    // Fill the chosen layout to this many markers and time the sweep's steps.
    sweep: { type: 'string' },
    'sweep-buckets': { type: 'string', default: '64,128,256' },
    seed: { type: 'string', default: '21' },
  },
});

const TTL_SECONDS = 604_800;
/** Simulated start of the traffic (the clock override of the scripts). */
const T0 = 1_800_000_000;
const BATCH = 500;
const log = (line: string) => process.stderr.write(`${line}\n`);

interface Layout {
  name: string;
  describe: string;
  /** Writes the done-markers of `ids`, at simulated time `clock` (Unix s). */
  insert(client: RedisClient, ids: string[], clock: number): Promise<void>;
  /** Looks `ids` up at `clock`; replies 1 per done event. */
  lookup(client: RedisClient, ids: string[], clock: number): Promise<number[]>;
  /** Loads what the layout needs before the empty figure is read (its scripts). */
  prepare(client: RedisClient): Promise<void>;
  /**
   * What `groq-webhooks stats` would report as the markers' memory (bytes), estimated from a
   * sample as docs/idempotency-memory.md proposes; checked against used_memory here.
   */
  estimate?(client: RedisClient): Promise<number>;
}

type ScriptClient = RedisClient & {
  evalsha(sha: string, keys: number, ...args: (string | number)[]): Promise<unknown>;
};

async function load(client: RedisClient, lua: string): Promise<string> {
  return (await client.script('LOAD', lua)) as string;
}

function scriptLayout(
  name: string,
  describe: string,
  insertLua: string,
  lookupLua: string,
  keysOf: (ids: string[]) => string[],
  argsOf: (ids: string[], clock: number) => (string | number)[],
  lookupArgsOf: (ids: string[], clock: number) => (string | number)[] = (_ids, clock) => [clock],
): Layout {
  const shas = new Map<string, Promise<string>>();
  const sha = (client: RedisClient, lua: string) => {
    let loaded = shas.get(lua);
    if (loaded === undefined) {
      loaded = load(client, lua);
      shas.set(lua, loaded);
    }
    return loaded;
  };
  return {
    name,
    describe,
    async prepare(client) {
      await Promise.all([sha(client, insertLua), sha(client, lookupLua)]);
    },
    async insert(client, ids, clock) {
      const keys = keysOf(ids);
      await (client as ScriptClient).evalsha(
        await sha(client, insertLua),
        keys.length,
        ...keys,
        ...argsOf(ids, clock),
      );
    },
    async lookup(client, ids, clock) {
      const keys = keysOf(ids);
      return (await (client as ScriptClient).evalsha(
        await sha(client, lookupLua),
        keys.length,
        ...keys,
        ...lookupArgsOf(ids, clock),
      )) as number[];
    },
  };
}

/** Today: one key per event, written and looked up as the current scripts do (Lua loops). */
const oneKeyPerEvent = scriptLayout(
  'key',
  'one key per event (today): SET groq:event:<id> done EX 604800',
  `for _, key in ipairs(KEYS) do redis.call('SET', key, 'done', 'EX', ARGV[2]) end return #KEYS`,
  `local done = {}
for i, key in ipairs(KEYS) do done[i] = redis.call('EXISTS', key) end
return done`,
  (ids) => ids.map((id) => CLAIM_PREFIX + id),
  (_ids, clock) => [clock, TTL_SECONDS],
);

/** The chosen layout: linear-hashed sorted sets of 12-byte digests scored by expiry. */
const zsetDigest = scriptLayout(
  'zset-digest',
  'sorted-set buckets (linear hashing, ≤ 40 a bucket on average), member = 12-byte SHA-1 prefix, score = expiry (s) [chosen]',
  MARK_DONE,
  LOOKUP,
  (ids) => ['groq:done', ...ids.map((id) => CLAIM_PREFIX + id)],
  (_ids, clock) => [clock, TTL_SECONDS, 0],
);

/**
 * The hash layouts' split (the comparison layouts only): as the chosen layout's, with HGETALL and
 * HSET; `fieldHash` (defined before it) gives a field's 32-bit hash. With `expireAt`, the
 * rebuilt keys get that expiry (time slices).
 */
const HSPLIT = `
local function hsplit(meta, L, p, expireAt)
  local low = 2 ^ L
  local from = meta .. ':' .. p
  local entries = rcall('HGETALL', from)
  local stay, move = {}, {}
  for i = 1, #entries, 2 do
    local side = (fieldHash(entries[i]) % (low * 2) == p) and stay or move
    side[#side + 1] = entries[i]
    side[#side + 1] = entries[i + 1]
  end
  if #move > 0 then
    local to = meta .. ':' .. (p + low)
    rcall('HSET', to, unpack(move))
    if expireAt then rcall('EXPIREAT', to, expireAt) end
    rcall('DEL', from)
    if #stay > 0 then
      rcall('HSET', from, unpack(stay))
      if expireAt then rcall('EXPIREAT', from, expireAt) end
    end
  end
  p = p + 1
  if p == low then return L + 1, 0 end
  return L, p
end`;

/**
 * Hash buckets for comparison, with the same linear hashing: field = the event id itself or its
 * 12-byte digest, value = expiry (s). No expiry sweep here: only memory and lookups are measured.
 */
function hashLayout(name: string, describe: string, field: 'id' | 'digest'): Layout {
  const fieldFunctions =
    field === 'id'
      ? `local function fieldHash(f) return tonumber(string.sub(redis.sha1hex(f), 1, 8), 16) end
local function fieldOf(id) return id, fieldHash(id) end`
      : `local function fieldHash(f) return hashOf(f) end
local function fieldOf(id) return digest(id) end`;
  const helpers = `${PRELUDE}
${fieldFunctions}
${HSPLIT}`;
  const insert = `${helpers}
local meta = KEYS[1]
local now = clock()
local expiry = now + tonumber(ARGV[2])
local L, p, n = level(meta)
for i = 2, #KEYS do
  local f, h = fieldOf(string.sub(KEYS[i], ${CLAIM_PREFIX.length + 1}))
  n = n + rcall('HSET', meta .. ':' .. bucketOf(h, L, p), f, expiry)
  if n > ${MAX_LOAD} * (2 ^ L + p) then L, p = hsplit(meta, L, p) end
end
rcall('HSET', meta, 'L', L, 'p', p, 'n', n)
return n`;
  const lookup = `${helpers}
local meta = KEYS[1]
local now = clock()
local L, p = level(meta)
local done = {}
for i = 2, #KEYS do
  local key = KEYS[i]
  local f, h = fieldOf(string.sub(key, ${CLAIM_PREFIX.length + 1}))
  local expiry = rcall('HGET', meta .. ':' .. bucketOf(h, L, p), f)
  done[i - 1] = (rcall('GET', key) == 'done' or (expiry and tonumber(expiry) > now)) and 1 or 0
end
return done`;
  return scriptLayout(
    name,
    describe,
    insert,
    lookup,
    (ids) => ['groq:done', ...ids.map((id) => CLAIM_PREFIX + id)],
    (_ids, clock) => [clock, TTL_SECONDS],
  );
}

/**
 * Time slices: one group of hash buckets per day (linear hashing within the day), every bucket
 * key expiring whole one TTL after its day ends, so nothing is swept; field = 12-byte digest,
 * value = expiry (s), compared at lookup, which probes every live day (8).
 */
const DAY = 86_400;
const sliceHelpers = `${PRELUDE}
local function sliceMeta(day) return 'groq:done:' .. day end
local function fieldHash(f) return hashOf(f) end
${HSPLIT}`;
const slices = scriptLayout(
  'slices',
  'daily hash buckets expiring whole (linear hashing per day), field = 12-byte digest, value = expiry (s); lookups probe 8 days',
  `${sliceHelpers}
local now = clock()
local ttl = tonumber(ARGV[2])
local expiry = now + ttl
local day = floor(now / ${DAY})
local meta = sliceMeta(day)
local expireAt = (day + 1) * ${DAY} + ttl
local L, p, n = level(meta)
for i = 1, #KEYS do
  local member, h = digest(string.sub(KEYS[i], ${CLAIM_PREFIX.length + 1}))
  local key = meta .. ':' .. bucketOf(h, L, p)
  if rcall('HSET', key, member, expiry) == 1 then
    n = n + 1
    if rcall('HLEN', key) == 1 then rcall('EXPIREAT', key, expireAt) end
  end
  if n > ${MAX_LOAD} * (2 ^ L + p) then L, p = hsplit(meta, L, p, expireAt) end
end
rcall('HSET', meta, 'L', L, 'p', p, 'n', n)
rcall('EXPIREAT', meta, expireAt)
return n`,
  `${sliceHelpers}
local now = clock()
local ttl = tonumber(ARGV[2])
local today = floor(now / ${DAY})
local days = {}
for d = floor((now - ttl) / ${DAY}), today do
  local L, p = level(sliceMeta(d))
  days[#days + 1] = {sliceMeta(d), L, p}
end
local done = {}
for i = 1, #KEYS do
  local key = KEYS[i]
  local member, h = digest(string.sub(key, ${CLAIM_PREFIX.length + 1}))
  local found = rcall('GET', key) == 'done'
  for _, slice in ipairs(days) do
    if found then break end
    local expiry = rcall('HGET', slice[1] .. ':' .. bucketOf(h, slice[2], slice[3]), member)
    found = expiry ~= false and tonumber(expiry) > now
  end
  done[i] = found and 1 or 0
end
return done`,
  (ids) => ids.map((id) => CLAIM_PREFIX + id),
  (_ids, clock) => [clock, TTL_SECONDS],
  (_ids, clock) => [clock, TTL_SECONDS],
);

/** The chosen layout's Lua with 16-byte members (the extra 4 bytes as text: only sizes count). */
const widen = (lua: string) =>
  lua.replace(
    'floor(c / 16777216), floor(c / 65536) % 256, floor(c / 256) % 256, c % 256), a',
    'floor(c / 16777216), floor(c / 65536) % 256, floor(c / 256) % 256, c % 256) .. string.sub(hex, 25, 28), a',
  );
const zsetDigest16 = scriptLayout(
  'zset-digest16',
  'as zset-digest with 16-byte members (128-bit digest)',
  widen(MARK_DONE),
  widen(LOOKUP),
  (ids) => ['groq:done', ...ids.map((id) => CLAIM_PREFIX + id)],
  (_ids, clock) => [clock, TTL_SECONDS, 0],
);

/**
 * The stats estimate of one group: MEMORY USAGE of 64 random buckets (exact for listpacks),
 * scaled to the group's bucket count, plus the meta hash.
 */
async function estimateGroup(client: RedisClient, meta: string): Promise<number> {
  const fields = await client.hmget(meta, 'L', 'p');
  const buckets = 2 ** Number(fields[0] ?? 0) + Number(fields[1] ?? 0);
  const pipeline = client.pipeline();
  const samples = Math.min(64, buckets);
  for (let i = 0; i < samples; i++) {
    const bucket = samples === buckets ? i : Math.floor(Math.random() * buckets);
    pipeline.memory('USAGE', `${meta}:${bucket}`, 'SAMPLES', 0);
  }
  pipeline.memory('USAGE', meta, 'SAMPLES', 0);
  const replies = ((await pipeline.exec()) ?? []).map(([, value]) => Number(value ?? 0));
  const metaBytes = replies.pop() ?? 0;
  const mean = replies.reduce((sum, value) => sum + value, 0) / Math.max(1, replies.length);
  return mean * buckets + metaBytes;
}

zsetDigest.estimate = (client) => estimateGroup(client, 'groq:done');

/**
 * The Redis Cluster variant on one server (memory does not depend on where the slots live):
 * one group per slot, named with a hash tag of the slot of the event's claim key, so that the
 * claim key, the group's meta and its buckets share a slot and one script serves them. One
 * call per event, as the Cluster path sends them.
 */
const SLOT_TAGS = (() => {
  const tags: string[] = new Array(16_384);
  for (let n = 0, found = 0; found < tags.length; n++) {
    const tag = n.toString(36);
    const slot = clusterSlot(tag);
    if (tags[slot] === undefined) {
      tags[slot] = tag;
      found++;
    }
  }
  return tags;
})();

/** Redis Cluster's slot of a key (its hash tag's when it has a non-empty one). */
function keySlot(key: string): number {
  const open = key.indexOf('{');
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) return clusterSlot(key.slice(open + 1, close));
  }
  return clusterSlot(key);
}

function groupOf(eventId: string): string {
  return `groq:done:{${SLOT_TAGS[keySlot(CLAIM_PREFIX + eventId)]}}`;
}

const zsetDigestCluster: Layout = (() => {
  const shas = new Map<RedisClient, Promise<[string, string]>>();
  const loaded = (client: RedisClient) => {
    let pair = shas.get(client);
    if (pair === undefined) {
      pair = Promise.all([load(client, MARK_DONE), load(client, LOOKUP)]);
      shas.set(client, pair);
    }
    return pair;
  };
  return {
    name: 'zset-digest-cluster',
    describe:
      "zset-digest on a Redis Cluster: one group (meta + buckets) per slot, tagged to share the claim key's slot; one call per event",
    async prepare(client) {
      await loaded(client);
    },
    async insert(client, ids, clock) {
      const [mark] = await loaded(client);
      const pipeline = client.pipeline();
      for (const id of ids) {
        pipeline.evalsha(mark, 2, groupOf(id), CLAIM_PREFIX + id, clock, TTL_SECONDS, 0);
      }
      await pipeline.exec();
    },
    async lookup(client, ids, clock) {
      const [, find] = await loaded(client);
      const pipeline = client.pipeline();
      for (const id of ids) pipeline.evalsha(find, 2, groupOf(id), CLAIM_PREFIX + id, clock);
      return ((await pipeline.exec()) ?? []).map(([, value]) => Number((value as number[])[0]));
    },
    async estimate(client) {
      // 64 random groups, scaled to the groups that exist.
      const slots = Array.from({ length: 64 }, () => Math.floor(Math.random() * 16_384));
      let bytes = 0;
      let seen = 0;
      for (const slot of slots) {
        const meta = `groq:done:{${SLOT_TAGS[slot]}}`;
        if ((await client.exists(meta)) === 0) continue;
        bytes += await estimateGroup(client, meta);
        seen++;
      }
      return seen === 0 ? 0 : (bytes / slots.length) * 16_384;
    },
  };
})();

const LAYOUTS: Layout[] = [
  oneKeyPerEvent,
  hashLayout(
    'hash-id',
    'hash buckets (linear hashing), field = event id, value = expiry (s)',
    'id',
  ),
  hashLayout(
    'hash-digest',
    'hash buckets (linear hashing), field = 12-byte SHA-1 prefix, value = expiry (s)',
    'digest',
  ),
  zsetDigest,
  zsetDigest16,
  zsetDigestCluster,
  slices,
];

async function usedMemory(client: RedisClient): Promise<number> {
  const info = (await client.info('memory')) as string;
  const match = /^used_memory:(\d+)/m.exec(info);
  if (!match) throw new Error('no used_memory in INFO');
  return Number(match[1]);
}

/** Redis CPU per call of one command, from INFO commandstats (µs). */
async function commandUsec(
  client: RedisClient,
): Promise<Map<string, { calls: number; usec: number }>> {
  const info = (await client.info('commandstats')) as string;
  const stats = new Map<string, { calls: number; usec: number }>();
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    stats.set(match[1] as string, { calls: Number(match[2]), usec: Number(match[3]) });
  }
  return stats;
}

async function redisUsec(client: RedisClient, run: () => Promise<void>): Promise<number> {
  await client.config('RESETSTAT');
  await run();
  let total = 0;
  for (const [name, stat] of await commandUsec(client)) {
    if (name !== 'info' && name !== 'config') total += stat.usec;
  }
  return total;
}

interface Checkpoint {
  markers: number;
  usedMemory: number;
  /** (used_memory − empty) / markers. */
  bytesPerMarker: number;
  /** Δused_memory / Δmarkers since the previous checkpoint. */
  marginalBytesPerMarker: number;
  keys: number;
  /** The layout's stats estimate of its markers' memory, ÷ (used_memory − empty). */
  estimateRatio?: number;
}

interface LayoutResult {
  layout: string;
  describe: string;
  empty: number;
  checkpoints: Checkpoint[];
  /** Redis CPU per event written, over the whole fill (µs). */
  insertUsecPerEvent: number;
  /** Redis CPU per event looked up in batches of 256, half of them present (µs). */
  lookupUsecPerEvent: number;
  /**
   * Median Redis CPU of one call carrying one event, less a PING's (µs): what the finish script
   * adds per job (mark) and a lone lookup costs.
   */
  singleInsertUsec: number;
  singleLookupUsec: number;
  /** Lookups that answered wrong (must be 0). */
  wrongLookups: number;
}

async function withRedis<T>(
  run: (redis: TestRedis, client: RedisClient) => Promise<T>,
): Promise<T> {
  const redis = await startRedis();
  const client = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'admin');
  try {
    await waitFor(() => client.status === 'ready', { timeoutMs: 10_000 });
    return await run(redis, client);
  } finally {
    await closeRedis(client);
    await redis.cleanup();
  }
}

/** Median CPU of single-event calls, less the median of PINGs (see {@link LayoutResult}). */
async function singleCalls(
  layout: Layout,
  redis: TestRedis,
  client: RedisClient,
  seed: number,
  now: number,
): Promise<{ singleInsertUsec: number; singleLookupUsec: number }> {
  const pid = redis.process.pid;
  const median = (timed: { cpu: number[] }) => {
    const sorted = [...timed.cpu].sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)] ?? 0;
  };
  const floor = median(await timeCalls(client, pid, 3000, async () => void (await client.ping())));
  const fresh = [...take(eventIds(seed + 7), 3000)];
  const inserted = await timeCalls(client, pid, fresh.length, async (i) => {
    await layout.insert(client, [fresh[i] as string], now);
    return undefined;
  });
  const looked = await timeCalls(client, pid, fresh.length, async (i) => {
    await layout.lookup(client, [fresh[i] as string], now);
    return undefined;
  });
  return {
    singleInsertUsec: median(inserted) - floor,
    singleLookupUsec: median(looked) - floor,
  };
}

/** Simulated time of the i-th of `total` events: spread evenly over one TTL. */
function clockAt(index: number, total: number): number {
  return T0 + Math.floor((index * (TTL_SECONDS - DAY)) / total);
}

async function measureLayout(layout: Layout, sizes: number[], seed: number): Promise<LayoutResult> {
  return withRedis(async (redis, client) => {
    const total = sizes[sizes.length - 1] ?? 0;
    await layout.prepare(client);
    const empty = await usedMemory(client);
    const checkpoints: Checkpoint[] = [];
    const ids = eventIds(seed);
    let written = 0;
    let previous = { markers: 0, used: empty };
    let insertUsec = 0;
    for (const size of sizes) {
      insertUsec += await redisUsec(client, async () => {
        const inFlight: Promise<void>[] = [];
        while (written < size) {
          const batch: string[] = [];
          for (let i = 0; i < BATCH && written < size; i++, written++) {
            batch.push(ids.next().value as string);
          }
          inFlight.push(layout.insert(client, batch, clockAt(written, total)));
          if (inFlight.length >= 8) await inFlight.shift();
        }
        await Promise.all(inFlight);
      });
      const used = await usedMemory(client);
      const keys = Number(await client.dbsize());
      const estimate = layout.estimate === undefined ? undefined : await layout.estimate(client);
      const checkpoint: Checkpoint = {
        markers: size,
        usedMemory: used,
        bytesPerMarker: (used - empty) / size,
        marginalBytesPerMarker: (used - previous.used) / (size - previous.markers),
        keys,
        ...(estimate === undefined ? {} : { estimateRatio: estimate / (used - empty) }),
      };
      checkpoints.push(checkpoint);
      log(
        `${layout.name} ${size}: used_memory ${used} (${checkpoint.bytesPerMarker.toFixed(1)} B/marker, marginal ${checkpoint.marginalBytesPerMarker.toFixed(1)}), ${keys} keys`,
      );
      previous = { markers: size, used };
    }
    // Lookups at the end of the simulated week: half of the ids were written, half never.
    const present = [...take(eventIds(seed), 10_000)];
    const absent = [...take(eventIds(seed + 1), 10_000)];
    const now = clockAt(total, total);
    let wrong = 0;
    const lookupUsec = await redisUsec(client, async () => {
      for (let i = 0; i < present.length; i += 128) {
        const hits = present.slice(i, i + 128);
        const replies = await layout.lookup(client, [...hits, ...absent.slice(i, i + 128)], now);
        replies.forEach((reply, index) => {
          if (reply !== (index < hits.length ? 1 : 0)) wrong++;
        });
      }
    });
    return {
      layout: layout.name,
      describe: layout.describe,
      empty,
      checkpoints,
      insertUsecPerEvent: insertUsec / total,
      lookupUsecPerEvent: lookupUsec / (present.length + absent.length),
      ...(await singleCalls(layout, redis, client, seed, now)),
      wrongLookups: wrong,
    };
  });
}

interface StepStats {
  scenario: string;
  bucketsPerStep: number;
  steps: number;
  /** CPU time of Redis's main thread per call (µs): the work, whatever else runs on the machine. */
  worstCpuUsec: number;
  p99CpuUsec: number;
  medianCpuUsec: number;
  /** Wall time per call as SLOWLOG records it (µs): includes preemption on a busy machine. */
  worstWallUsec: number;
  removed: number;
  merges: number;
}

interface SweepResult {
  markers: number;
  buckets: number;
  usedMemory: number;
  bytesPerMarker: number;
  /** One event's done-mark (the finish script's share), splits included, over 20,000 calls. */
  mark: StepStats;
  /** PING (the cost of any call) and coalesced done-marks. */
  extra: StepStats[];
  steps: StepStats[];
}

/** CPU time Redis's main thread has used so far (ns), from /proc. */
function mainThreadNs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ');
  return Number(fields[0]);
}

/** Runs `call` `count` times, one at a time, timing each call by CPU (schedstat) and wall (SLOWLOG). */
async function timeCalls(
  client: RedisClient,
  pid: number,
  count: number,
  call: (index: number) => Promise<number[] | undefined>,
): Promise<{ cpu: number[]; wall: number[]; replies: number[][] }> {
  await client.slowlog('RESET');
  const cpu: number[] = [];
  const replies: number[][] = [];
  for (let i = 0; i < count; i++) {
    const before = mainThreadNs(pid);
    const reply = await call(i);
    cpu.push((mainThreadNs(pid) - before) / 1000);
    if (reply !== undefined) replies.push(reply);
    // The slow log holds 1,000 entries at most (configured below): read it in time.
    if (i % 900 === 899) wallTimes.push(...(await evalshaDurations(client)));
  }
  const wall = [...wallTimes, ...(await evalshaDurations(client))];
  wallTimes.length = 0;
  return { cpu, wall, replies };
}
const wallTimes: number[] = [];

function stats(
  scenario: string,
  bucketsPerStep: number,
  timed: { cpu: number[]; wall: number[]; replies: number[][] },
): StepStats {
  const cpu = [...timed.cpu].sort((a, b) => a - b);
  const at = (q: number) =>
    Math.round(cpu[Math.min(cpu.length - 1, Math.floor(q * cpu.length))] ?? 0);
  return {
    scenario,
    bucketsPerStep,
    steps: cpu.length,
    worstCpuUsec: Math.round(cpu[cpu.length - 1] ?? 0),
    p99CpuUsec: at(0.99),
    medianCpuUsec: at(0.5),
    worstWallUsec: Math.max(0, ...timed.wall),
    removed: timed.replies.reduce((sum, reply) => sum + (reply[1] ?? 0), 0),
    merges: timed.replies.reduce((sum, reply) => sum + (reply[2] ?? 0), 0),
  };
}

/**
 * Fills the chosen layout with `total` markers written over a simulated week (batches of 500,
 * as the stock path coalesces them), times 20,000 single-event done-marks (what the finish
 * script adds per job, splits included), then sweep steps in four scenarios: nothing expired,
 * a pass that lagged a day (a sixth of the markers expired), a week after the traffic stopped
 * (every member expired: the most a step can remove), and the same while the group shrinks
 * (merges).
 */
async function measureSweep(
  total: number,
  bucketsPerStep: number[],
  seed: number,
): Promise<SweepResult> {
  return withRedis(async (redis, client) => {
    const scripts = client as ScriptClient;
    const pid = redis.process.pid;
    const mark = await load(client, MARK_DONE);
    const sweep = await load(client, SWEEP);
    const empty = await usedMemory(client);
    const ids = eventIds(seed);
    const inFlight: Promise<unknown>[] = [];
    for (let written = 0; written < total; ) {
      const keys: string[] = ['groq:done'];
      for (let i = 0; i < BATCH && written < total; i++, written++) {
        keys.push(CLAIM_PREFIX + (ids.next().value as string));
      }
      inFlight.push(
        scripts.evalsha(mark, keys.length, ...keys, clockAt(written, total), TTL_SECONDS, 0),
      );
      if (inFlight.length >= 8) await inFlight.shift();
      if (written % 1_000_000 < BATCH) log(`sweep fill: ${written} markers`);
    }
    await Promise.all(inFlight);
    const used = await usedMemory(client);
    await client.config('SET', 'slowlog-log-slower-than', '0');
    await client.config('SET', 'slowlog-max-len', '1000');
    const lastWrite = clockAt(total, total);
    const markIds = [...take(eventIds(seed + 2), 20_000)];
    const marked = await timeCalls(client, pid, markIds.length, async (i) => {
      await scripts.evalsha(
        mark,
        2,
        'groq:done',
        CLAIM_PREFIX + markIds[i],
        lastWrite,
        TTL_SECONDS,
        0,
      );
      return undefined;
    });
    const markStats = stats('mark one event done', 0, marked);
    const extra: StepStats[] = [];
    const pinged = await timeCalls(client, pid, 5_000, async () => {
      await client.ping();
      return undefined;
    });
    extra.push(stats('PING (the floor: one call of anything)', 0, pinged));
    for (const size of [100, 500]) {
      const batches = [...take(eventIds(seed + 3 + size), 200 * size)];
      const timed = await timeCalls(client, pid, 200, async (i) => {
        const keys = [
          'groq:done',
          ...batches.slice(i * size, (i + 1) * size).map((id) => CLAIM_PREFIX + id),
        ];
        await scripts.evalsha(mark, keys.length, ...keys, lastWrite, TTL_SECONDS, 0);
        return undefined;
      });
      extra.push(stats(`mark ${size} events done (coalesced)`, 0, timed));
    }
    log(
      `mark: worst ${markStats.worstCpuUsec} µs CPU, p99 ${markStats.p99CpuUsec}, median ${markStats.medianCpuUsec}`,
    );
    const meta = await client.hgetall('groq:done');
    const buckets = 2 ** Number(meta.L) + Number(meta.p);
    log(`sweep: ${meta.n} markers in ${buckets} buckets, meta ${JSON.stringify(meta)}`);
    const steps: StepStats[] = [];
    const run = async (scenario: string, clock: number, count: number) => {
      for (const perStep of bucketsPerStep) {
        const timed = await timeCalls(
          client,
          pid,
          count,
          async () =>
            (await scripts.evalsha(sweep, 1, 'groq:done', clock, perStep, 0, 4)) as number[],
        );
        const row = stats(scenario, perStep, timed);
        steps.push(row);
        log(
          `sweep ${scenario} ${perStep}/step: worst ${row.worstCpuUsec} µs CPU (p99 ${row.p99CpuUsec}, median ${row.medianCpuUsec}; worst wall ${row.worstWallUsec}), ${row.removed} removed, ${row.merges} merges`,
        );
      }
    };
    await run('nothing expired', lastWrite + 1, 300);
    await run('a day expired', T0 + TTL_SECONDS + DAY, 300);
    await run('all expired', lastWrite + TTL_SECONDS + 1, 300);
    // Shrinking: with the count forced low every step also merges (up to 4 buckets).
    await client.hset('groq:done', 'n', 0);
    await run('all expired, merging', lastWrite + TTL_SECONDS + 1, 300);
    return {
      markers: total,
      buckets,
      usedMemory: used,
      bytesPerMarker: (used - empty) / total,
      mark: markStats,
      extra,
      steps,
    };
  });
}

async function evalshaDurations(client: RedisClient): Promise<number[]> {
  const entries = (await client.slowlog('GET', -1)) as [number, number, number, string[]][];
  await client.slowlog('RESET');
  return entries
    .filter((entry) => entry[3]?.[0]?.toLowerCase() === 'evalsha')
    .map((entry) => entry[2]);
}

function markdown(results: LayoutResult[], sweep: SweepResult | undefined): string {
  const lines: string[] = [];
  const m = machine();
  lines.push(
    `# Done-marker layouts — ${new Date().toISOString()}`,
    '',
    `Machine: ${m.cpu}, ${m.memoryGiB} GiB, Node ${m.node}, ${m.redis} (default configuration)`,
    '',
  );
  if (results.length > 0) {
    const sizes = results[0]?.checkpoints.map((c) => c.markers) ?? [];
    lines.push(
      '## Redis used_memory per remembered event (bytes): average since empty / marginal since the previous size',
      '',
      `| layout | ${sizes.map((s) => s.toLocaleString('en')).join(' | ')} | Redis µs/event written (batches of 500) | Redis µs/event looked up (batches of 256) | one-event call µs: write / lookup | wrong lookups |`,
      `|---|${sizes.map(() => '---').join('|')}|---|---|---|---|`,
    );
    for (const r of results) {
      lines.push(
        `| ${r.layout} | ${r.checkpoints.map((c) => `${c.bytesPerMarker.toFixed(1)} / ${c.marginalBytesPerMarker.toFixed(1)}${c.estimateRatio === undefined ? '' : ` (stats ×${c.estimateRatio.toFixed(2)})`}`).join(' | ')} | ${r.insertUsecPerEvent.toFixed(2)} | ${r.lookupUsecPerEvent.toFixed(2)} | ${r.singleInsertUsec.toFixed(1)} / ${r.singleLookupUsec.toFixed(1)} | ${r.wrongLookups} |`,
      );
    }
    lines.push('', ...results.map((r) => `- ${r.layout}: ${r.describe}`), '');
  }
  if (sweep !== undefined) {
    const row = (r: StepStats) =>
      `| ${r.scenario} | ${r.bucketsPerStep || '—'} | ${r.steps} | ${r.worstCpuUsec} | ${r.p99CpuUsec} | ${r.medianCpuUsec} | ${r.worstWallUsec} | ${r.removed} | ${r.merges} |`;
    lines.push(
      `## Sweep at ${sweep.markers.toLocaleString('en')} markers (${sweep.buckets} buckets, ${sweep.bytesPerMarker.toFixed(1)} B/marker)`,
      '',
      'CPU: Redis main-thread CPU time per call (schedstat), the work itself; wall: SLOWLOG, which also counts preemption by other processes.',
      '',
      '| call | buckets/step | calls | worst CPU µs | p99 CPU µs | median CPU µs | worst wall µs | removed | merges |',
      '|---|---|---|---|---|---|---|---|---|',
      ...sweep.extra.map(row),
      row(sweep.mark),
      ...sweep.steps.map(row),
      '',
    );
  }
  return lines.join('\n');
}

const seed = Number(args.seed);
const sizes = (args.sizes ?? '').split(',').map(Number);
const wanted = args.layouts?.split(',');
const results: LayoutResult[] = [];
for (const layout of LAYOUTS) {
  if (wanted !== undefined && !wanted.includes(layout.name)) continue;
  results.push(await measureLayout(layout, sizes, seed));
}
const sweep =
  args.sweep === undefined
    ? undefined
    : await measureSweep(
        Number(args.sweep),
        (args['sweep-buckets'] ?? '').split(',').map(Number),
        seed,
      );
process.stdout.write(`${markdown(results, sweep)}\n`);
process.stdout.write(`${JSON.stringify({ results, sweep })}\n`);

// Keeps the digest in one place for readers of this file: the member is these 12 bytes.
export function memberOf(eventId: string): Buffer {
  return createHash('sha1').update(eventId).digest().subarray(0, 12);
}
