import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  closeRedis,
  createRedis,
  DONE_GROUP,
  DONE_MARKER_LUA,
  doneGroupKey,
  doneGroupOfSlot,
  groupBytes,
  idempotencyKey,
  MAX_LOAD,
  type RedisClient,
  withSimulatedClock,
} from '@groq-webhooks/queue';
import { startRedis, type TestRedis, waitFor } from '@groq-webhooks/testing';
import { eventIds, take } from './event-ids.js';
import { machine } from './processes.js';

// node bench/dist/marker-layouts.js: Redis memory per remembered event for candidate layouts of
// the done-marker (docs/idempotency-memory.md), each on its own throwaway redis-server with the
// default configuration, and with --sweep the sweep's worst step at 10 million markers. The
// layouts the product writes (`key`, `zset-digest`, `zset-digest-cluster`) run the product's own
// scripts (`DONE_MARKER_LUA`); the others are built from the same prelude for comparison. Every
// script's clock is simulated (`withSimulatedClock`: Unix seconds in CLOCK_KEY) to fill a week.

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
/** Simulated start of the traffic. */
const T0 = 1_800_000_000;
const BATCH = 500;
/** Where the scripts read the simulated clock. */
const CLOCK_KEY = 'bench:clock';
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
   * What `groq-webhooks stats` reports as the markers' memory (bytes), estimated from a sample
   * as the product does; checked against used_memory here.
   */
  estimate?(client: RedisClient): Promise<number>;
}

type ScriptClient = RedisClient & {
  evalsha(sha: string, keys: number, ...args: (string | number)[]): Promise<unknown>;
};

async function load(client: RedisClient, lua: string): Promise<string> {
  return (await client.script('LOAD', withSimulatedClock(lua, CLOCK_KEY))) as string;
}

/**
 * Sets the scripts' clock, with a command of its own and only when it changes: the single-call
 * timings run at one clock, so no SET falls inside a timed call.
 */
const clocks = new WeakMap<RedisClient, number>();
async function setClock(client: RedisClient, clock: number): Promise<void> {
  if (clocks.get(client) === clock) return;
  await client.set(CLOCK_KEY, clock);
  clocks.set(client, clock);
}

/** A layout of one script call per batch: KEYS = group (or none), claim keys; ARGV = `argv`. */
function scriptLayout(
  name: string,
  describe: string,
  insertLua: string,
  lookupLua: string,
  options: { group: boolean; insertArgs: (string | number)[] },
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
  const keysOf = (ids: string[]) => [
    ...(options.group ? [DONE_GROUP] : []),
    ...ids.map(idempotencyKey),
  ];
  return {
    name,
    describe,
    async prepare(client) {
      await Promise.all([sha(client, insertLua), sha(client, lookupLua)]);
    },
    async insert(client, ids, clock) {
      await setClock(client, clock);
      const keys = keysOf(ids);
      await (client as ScriptClient).evalsha(
        await sha(client, insertLua),
        keys.length,
        ...keys,
        ...options.insertArgs,
      );
    },
    async lookup(client, ids, clock) {
      await setClock(client, clock);
      const keys = keysOf(ids);
      const replies = (await (client as ScriptClient).evalsha(
        await sha(client, lookupLua),
        keys.length,
        ...keys,
      )) as number[];
      return replies.map((reply) => (reply === 0 ? 0 : 1));
    },
  };
}

/** The previous layout, as the product writes it with `layout: one-key`. */
const oneKeyPerEvent = scriptLayout(
  'key',
  'one key per event (the previous layout): SET groq:event:<id> done EX 604800',
  DONE_MARKER_LUA.markDone('one-key'),
  DONE_MARKER_LUA.lookup,
  { group: true, insertArgs: [TTL_SECONDS, 0] },
);

/** The product's layout: linear-hashed sorted sets of 12-byte digests scored by expiry. */
const zsetDigest = scriptLayout(
  'zset-digest',
  'sorted-set buckets (linear hashing, ≤ 40 a bucket on average), member = 12-byte SHA-1 prefix, score = expiry (s) [chosen]',
  DONE_MARKER_LUA.markDone('buckets'),
  DONE_MARKER_LUA.lookup,
  { group: true, insertArgs: [TTL_SECONDS, 0] },
);
zsetDigest.estimate = (client) => groupBytes(client, DONE_GROUP);

/**
 * The hash layouts' split (the comparison layouts only): as the product's, with HGETALL and
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

/** The event id of claim key KEYS[i], in Lua. */
const EVENT_ID = (key: string) => `string.sub(${key}, ${idempotencyKey('').length + 1})`;

/**
 * Hash buckets for comparison, with the same linear hashing: field = the event id itself or its
 * 12-byte digest, value = expiry (s). No expiry sweep here: only memory and lookups are measured.
 */
function hashLayout(name: string, describe: string, field: 'id' | 'digest'): Layout {
  const fieldFunctions =
    field === 'id'
      ? `local function fieldHash(f) return tonumber(string.sub(redis.sha1hex(f), 1, 8), 16) end
local function fieldOf(id) return id, fieldHash(id) end`
      : `local function fieldHash(f) return markerHash(f) end
local function fieldOf(id) return markerOf(id) end`;
  const helpers = `${DONE_MARKER_LUA.prelude}
${fieldFunctions}
${HSPLIT}`;
  const insert = `${helpers}
local meta = KEYS[1]
local now = clock()
local expiry = now + tonumber(ARGV[1])
local L, p, n = markersLevel(meta)
for i = 2, #KEYS do
  local f, h = fieldOf(${EVENT_ID('KEYS[i]')})
  n = n + rcall('HSET', meta .. ':' .. bucketOf(h, L, p), f, expiry)
  if n > ${MAX_LOAD} * (2 ^ L + p) then L, p = hsplit(meta, L, p) end
end
rcall('HSET', meta, 'L', L, 'p', p, 'n', n)
return n`;
  const lookup = `${helpers}
local meta = KEYS[1]
local now = clock()
local L, p = markersLevel(meta)
local done = {}
for i = 2, #KEYS do
  local key = KEYS[i]
  local f, h = fieldOf(${EVENT_ID('key')})
  local expiry = rcall('HGET', meta .. ':' .. bucketOf(h, L, p), f)
  done[i - 1] = (rcall('GET', key) == 'done' or (expiry and tonumber(expiry) > now)) and 1 or 0
end
return done`;
  return scriptLayout(name, describe, insert, lookup, {
    group: true,
    insertArgs: [TTL_SECONDS],
  });
}

/**
 * Time slices: one group of hash buckets per day (linear hashing within the day), every bucket
 * key expiring whole one TTL after its day ends, so nothing is swept; field = 12-byte digest,
 * value = expiry (s), compared at lookup, which probes every live day (8).
 */
const DAY = 86_400;
const sliceHelpers = `${DONE_MARKER_LUA.prelude}
local function sliceMeta(day) return 'groq:done:' .. day end
local function fieldHash(f) return markerHash(f) end
${HSPLIT}`;
const slices = scriptLayout(
  'slices',
  'daily hash buckets expiring whole (linear hashing per day), field = 12-byte digest, value = expiry (s); lookups probe 8 days',
  `${sliceHelpers}
local now = clock()
local ttl = tonumber(ARGV[1])
local expiry = now + ttl
local day = floor(now / ${DAY})
local meta = sliceMeta(day)
local expireAt = (day + 1) * ${DAY} + ttl
local L, p, n = markersLevel(meta)
for i = 1, #KEYS do
  local member, h = markerOf(${EVENT_ID('KEYS[i]')})
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
local ttl = ${TTL_SECONDS}
local today = floor(now / ${DAY})
local days = {}
for d = floor((now - ttl) / ${DAY}), today do
  local L, p = markersLevel(sliceMeta(d))
  days[#days + 1] = {sliceMeta(d), L, p}
end
local done = {}
for i = 1, #KEYS do
  local key = KEYS[i]
  local member, h = markerOf(${EVENT_ID('key')})
  local found = rcall('GET', key) == 'done'
  for _, slice in ipairs(days) do
    if found then break end
    local expiry = rcall('HGET', slice[1] .. ':' .. bucketOf(h, slice[2], slice[3]), member)
    found = expiry ~= false and tonumber(expiry) > now
  end
  done[i] = found and 1 or 0
end
return done`,
  { group: false, insertArgs: [TTL_SECONDS] },
);

/** The product's Lua with 16-byte members (the extra 4 bytes as text: only sizes count). */
const widen = (lua: string) => {
  const from = 'floor(c / 16777216), floor(c / 65536) % 256, floor(c / 256) % 256, c % 256), a';
  if (!lua.includes(from)) throw new Error('the digest is not where widen expects it');
  return lua.replace(
    from,
    'floor(c / 16777216), floor(c / 65536) % 256, floor(c / 256) % 256, c % 256) .. string.sub(hex, 25, 28), a',
  );
};
const zsetDigest16 = scriptLayout(
  'zset-digest16',
  'as zset-digest with 16-byte members (128-bit digest)',
  widen(DONE_MARKER_LUA.markDone('buckets')),
  widen(DONE_MARKER_LUA.lookup),
  { group: true, insertArgs: [TTL_SECONDS, 0] },
);

/**
 * The product's Redis Cluster variant on one server (memory does not depend on where the slots
 * live): one group per slot (`doneGroupKey(id, true)`), one call per event, as the Cluster path
 * sends them.
 */
const zsetDigestCluster: Layout = (() => {
  const shas = new Map<RedisClient, Promise<[string, string]>>();
  const loaded = (client: RedisClient) => {
    let pair = shas.get(client);
    if (pair === undefined) {
      pair = Promise.all([
        load(client, DONE_MARKER_LUA.markDone('buckets')),
        load(client, DONE_MARKER_LUA.lookup),
      ]);
      shas.set(client, pair);
    }
    return pair;
  };
  return {
    name: 'zset-digest-cluster',
    describe:
      "zset-digest on a Redis Cluster: one group (state + buckets) per slot, tagged to share the claim key's slot; one call per event",
    async prepare(client) {
      await loaded(client);
    },
    async insert(client, ids, clock) {
      const [mark] = await loaded(client);
      await setClock(client, clock);
      const pipeline = client.pipeline();
      for (const id of ids) {
        pipeline.evalsha(mark, 2, doneGroupKey(id, true), idempotencyKey(id), TTL_SECONDS, 0);
      }
      await pipeline.exec();
    },
    async lookup(client, ids, clock) {
      const [, find] = await loaded(client);
      await setClock(client, clock);
      const pipeline = client.pipeline();
      for (const id of ids) pipeline.evalsha(find, 2, doneGroupKey(id, true), idempotencyKey(id));
      return ((await pipeline.exec()) ?? []).map(([, value]) =>
        Number((value as number[])[0]) === 0 ? 0 : 1,
      );
    },
    async estimate(client) {
      // 64 random slots' groups, scaled to all 16 384, as `stats` does on a Cluster.
      const slots = Array.from({ length: 64 }, () => Math.floor(Math.random() * 16_384));
      let bytes = 0;
      for (const slot of slots) bytes += await groupBytes(client, doneGroupOfSlot(slot));
      return (bytes / slots.length) * 16_384;
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
    const mark = await load(client, DONE_MARKER_LUA.markDone('buckets'));
    const sweep = await load(client, DONE_MARKER_LUA.sweep);
    const empty = await usedMemory(client);
    const ids = eventIds(seed);
    const inFlight: Promise<unknown>[] = [];
    for (let written = 0; written < total; ) {
      const keys: string[] = [DONE_GROUP];
      for (let i = 0; i < BATCH && written < total; i++, written++) {
        keys.push(idempotencyKey(ids.next().value as string));
      }
      // Commands run in order on the connection: each batch runs at the clock set before it.
      await setClock(client, clockAt(written, total));
      inFlight.push(scripts.evalsha(mark, keys.length, ...keys, TTL_SECONDS, 0));
      if (inFlight.length >= 8) await inFlight.shift();
      if (written % 1_000_000 < BATCH) log(`sweep fill: ${written} markers`);
    }
    await Promise.all(inFlight);
    const used = await usedMemory(client);
    await client.config('SET', 'slowlog-log-slower-than', '0');
    await client.config('SET', 'slowlog-max-len', '1000');
    const lastWrite = clockAt(total, total);
    await setClock(client, lastWrite);
    const markIds = [...take(eventIds(seed + 2), 20_000)];
    const marked = await timeCalls(client, pid, markIds.length, async (i) => {
      await scripts.evalsha(
        mark,
        2,
        DONE_GROUP,
        idempotencyKey(markIds[i] as string),
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
          DONE_GROUP,
          ...batches.slice(i * size, (i + 1) * size).map((id) => idempotencyKey(id)),
        ];
        await scripts.evalsha(mark, keys.length, ...keys, TTL_SECONDS, 0);
        return undefined;
      });
      extra.push(stats(`mark ${size} events done (coalesced)`, 0, timed));
    }
    log(
      `mark: worst ${markStats.worstCpuUsec} µs CPU, p99 ${markStats.p99CpuUsec}, median ${markStats.medianCpuUsec}`,
    );
    const meta = await client.hgetall(DONE_GROUP);
    const buckets = 2 ** Number(meta.L) + Number(meta.p);
    log(`sweep: ${meta.n} markers in ${buckets} buckets, meta ${JSON.stringify(meta)}`);
    const steps: StepStats[] = [];
    const run = async (scenario: string, clock: number, count: number) => {
      await setClock(client, clock);
      for (const perStep of bucketsPerStep) {
        const timed = await timeCalls(
          client,
          pid,
          count,
          async () => (await scripts.evalsha(sweep, 1, DONE_GROUP, perStep, 0, 4)) as number[],
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
    await client.hset(DONE_GROUP, 'n', 0);
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
