import { startRedis, type TestRedis, waitFor } from '@groq-webhooks/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { closeRedis, createRedis, type RedisClient } from './connection.js';
import {
  CLAIM,
  CLAIM_FRESH,
  FORGET,
  LOOKUP,
  MAX_LOAD,
  markDoneScript,
  SWEEP,
  withSimulatedClock,
} from './done-markers.js';
import { rememberedEvents } from './done-stats.js';
import { DoneSweeper, SWEEP_BUCKETS_PER_STEP } from './done-sweeper.js';
import { IdempotencyStore } from './idempotency.js';
import {
  MARKER_RECORD_KEY,
  openMarkerSettings,
  ROLLOUT_WINDOW_SECONDS,
  readMarkerRecord,
} from './marker-record.js';
import { DONE_GROUP, idempotencyKey } from './naming.js';

// The done-marker layout (docs/idempotency-memory.md) against a real redis-server: every marker
// findable through the splits, merges and sweeps that reshape the group, expiring exactly at its
// TTL. The script tests run the product's Lua with a simulated clock (`withSimulatedClock`): a
// week in a moment.

const T = 1_800_000_000;
const CLOCK_KEY = 'test:clock';
let redis: TestRedis;
let client: RedisClient;

type Evaluating = RedisClient & {
  eval(lua: string, keys: number, ...args: (string | number)[]): Promise<unknown>;
};

/** Runs a marker script with the clock at `clock` (Unix s), or Redis's own with ''. */
async function run(lua: string, clock: number | '', keys: string[], ...args: (string | number)[]) {
  if (clock === '') await client.del(CLOCK_KEY);
  else await client.set(CLOCK_KEY, clock);
  return (client as Evaluating).eval(
    withSimulatedClock(lua, CLOCK_KEY),
    keys.length,
    ...keys,
    ...args,
  );
}

/** Distinct event ids, as senders make them. */
function ids(seed: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `evt_${seed}_${i.toString(36)}_${i * 7919}`);
}
const claimKeys = (eventIds: string[]) => eventIds.map(idempotencyKey);

async function mark(eventIds: string[], clock: number, ttl = 100, shadowUntil = 0) {
  for (let i = 0; i < eventIds.length; i += 500) {
    const keys = claimKeys(eventIds.slice(i, i + 500));
    await run(markDoneScript('buckets'), clock, [DONE_GROUP, ...keys], ttl, shadowUntil);
  }
}

/** 1 per event done (either layout), else 0. */
async function lookup(eventIds: string[], clock: number | '') {
  const replies: number[] = [];
  for (let i = 0; i < eventIds.length; i += 1000) {
    const keys = claimKeys(eventIds.slice(i, i + 1000));
    const found = (await run(LOOKUP, clock, [DONE_GROUP, ...keys])) as number[];
    replies.push(...found.map((reply) => (reply === 0 ? 0 : 1)));
  }
  return replies;
}

const sweep = async (clock: number, buckets = 64, merges = 4) =>
  (await run(SWEEP, clock, [DONE_GROUP], buckets, 0, merges)) as number[];

async function level() {
  const fields = await client.hgetall(DONE_GROUP);
  return { L: Number(fields.L), p: Number(fields.p), n: Number(fields.n) };
}

/** Markers actually held: the sum of the buckets' sizes, and their encodings. */
async function buckets() {
  const { L, p } = await level();
  let members = 0;
  const encodings = new Set<string>();
  for (let b = 0; b < 2 ** L + p; b++) {
    members += await client.zcard(`${DONE_GROUP}:${b}`);
    const encoding = await client.object('ENCODING', `${DONE_GROUP}:${b}`);
    if (encoding !== null) encodings.add(String(encoding));
  }
  // No bucket outside the current range may hold anything.
  const stray = await client.exists(
    `${DONE_GROUP}:${2 ** L + p}`,
    `${DONE_GROUP}:${2 ** (L + 1) + p}`,
  );
  return { count: 2 ** L + p, members, encodings: [...encodings], stray };
}

beforeAll(async () => {
  redis = await startRedis();
  client = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'admin');
  await waitFor(() => client.status === 'ready');
});
afterAll(async () => {
  if (client) await closeRedis(client);
  await redis?.cleanup();
});
beforeEach(async () => {
  await client.flushdb();
});

describe('the done-marker scripts', () => {
  it('find every marked event through the splits that grow the group, and no other', async () => {
    const marked = ids('a', 20_000);
    await mark(marked, T);
    const { L, p, n } = await level();
    expect(n).toBe(20_000);
    expect(2 ** L + p).toBe(Math.ceil(20_000 / MAX_LOAD));
    const held = await buckets();
    expect(held.members).toBe(20_000);
    // Every bucket in Redis's compact encoding: that is what makes a marker ~25 bytes.
    expect(held.encodings).toEqual(['listpack']);
    expect(held.stray).toBe(0);
    expect(await lookup(marked, T + 1)).toEqual(Array(20_000).fill(1));
    expect(await lookup(ids('b', 20_000), T + 1)).toEqual(Array(20_000).fill(0));
  });

  it('answer done until the expiry and new from it on, whether or not the sweep has run', async () => {
    await mark(['evt_a'], T, 100);
    expect(await lookup(['evt_a'], T + 99)).toEqual([1]);
    expect(await lookup(['evt_a'], T + 100)).toEqual([0]);
    // A lagging sweep keeps the member: it does not make the event done again.
    expect((await level()).n).toBe(1);
    expect(await lookup(['evt_a'], T + 5000)).toEqual([0]);
    // Marked again: done for a new TTL, still one member.
    await mark(['evt_a'], T + 200, 100);
    expect(await lookup(['evt_a'], T + 299)).toEqual([1]);
    expect((await level()).n).toBe(1);
  });

  it("with Redis's clock, never expire before the TTL nor a second after it", async () => {
    const store = new IdempotencyStore(client);
    const before = Number((await client.time())[0]);
    await store.markDone('evt_t', 100);
    const after = Number((await client.time())[0]);
    const expiry = await store.doneUntil('evt_t');
    expect(expiry).toBeGreaterThanOrEqual(before + 100);
    expect(expiry).toBeLessThanOrEqual(after + 101);
    expect(await store.isDone('evt_t')).toBe(true);
    expect(await store.isDone('evt_other')).toBe(false);
  });

  it('honour the previous layout, and drop the claim when they mark done', async () => {
    await client.set(idempotencyKey('evt_old'), 'done', 'EX', 600);
    expect(await lookup(['evt_old', 'evt_new'], T)).toEqual([1, 0]);
    await client.set(idempotencyKey('evt_new'), 'processing:tok', 'PX', 15_000);
    await mark(['evt_new'], T);
    expect(await client.exists(idempotencyKey('evt_new'))).toBe(0);
    expect(await lookup(['evt_new'], T)).toEqual([1]);
  });

  it('leave the previous layout’s marker beside the new one until the rollout window ends', async () => {
    const now = Number((await client.time())[0]);
    const store = new IdempotencyStore(client, { layout: 'buckets', shadowUntil: now + 60 });
    await store.markDone('evt_roll', 100);
    expect(await client.get(idempotencyKey('evt_roll'))).toBe('done');
    const ttl = await client.ttl(idempotencyKey('evt_roll'));
    expect(ttl).toBeGreaterThan(55);
    expect(ttl).toBeLessThanOrEqual(60);
    expect(await store.doneUntil('evt_roll')).toBeGreaterThanOrEqual(now + 100);
    // Past the window, a mark only leaves the compact marker.
    const late = new IdempotencyStore(client, { layout: 'buckets', shadowUntil: now - 1 });
    await late.markDone('evt_late', 100);
    expect(await client.exists(idempotencyKey('evt_late'))).toBe(0);
  });

  it('write one key per event in the previous layout when told to (the benchmark’s column)', async () => {
    const store = new IdempotencyStore(client, { layout: 'one-key', shadowUntil: 0 });
    await store.markDone('evt_one_key', 100);
    expect(await client.get(idempotencyKey('evt_one_key'))).toBe('done');
    expect(await client.ttl(idempotencyKey('evt_one_key'))).toBeGreaterThan(95);
    expect(await client.exists(DONE_GROUP)).toBe(0);
    expect(await store.isDone('evt_one_key')).toBe(true);
    expect(await store.claim('evt_one_key', 'owner', 5000)).toBe('done');
  });

  it('claim fresh events only: done ones answer 2, held ones 0', async () => {
    await mark(['evt_done'], T);
    await client.set(idempotencyKey('evt_held'), 'processing:other', 'PX', 15_000);
    const replies = await run(
      CLAIM_FRESH,
      T + 1,
      [DONE_GROUP, ...claimKeys(['evt_done', 'evt_held', 'evt_free'])],
      15_000,
      'processing:a',
      'processing:b',
      'processing:c',
    );
    expect(replies).toEqual([2, 0, 1]);
    expect(await client.get(idempotencyKey('evt_free'))).toBe('processing:c');
    expect(await client.exists(idempotencyKey('evt_done'))).toBe(0);
  });

  it('claim one event: done in either layout, claimed when free or ours, busy when held', async () => {
    await mark(['evt_new_done'], T);
    await client.set(idempotencyKey('evt_old_done'), 'done', 'EX', 600);
    await client.set(idempotencyKey('evt_ours'), 'processing:me', 'PX', 1000);
    await client.set(idempotencyKey('evt_theirs'), 'processing:them', 'PX', 1000);
    const claim = (id: string) =>
      run(CLAIM, T + 1, [DONE_GROUP, idempotencyKey(id)], 'processing:me', 15_000);
    expect(await claim('evt_new_done')).toBe('done');
    expect(await claim('evt_old_done')).toBe('done');
    expect(await claim('evt_ours')).toBe('claimed');
    expect(await client.pttl(idempotencyKey('evt_ours'))).toBeGreaterThan(10_000);
    expect(await claim('evt_theirs')).toBe('busy');
    expect(await claim('evt_free')).toBe('claimed');
    expect(await client.get(idempotencyKey('evt_free'))).toBe('processing:me');
    // Past its expiry an event is claimed again.
    expect(
      await run(CLAIM, T + 100, [DONE_GROUP, idempotencyKey('evt_new_done')], 'processing:me', 1),
    ).toBe('claimed');
  });

  it('forget an event on purpose, in either layout', async () => {
    await mark(['evt_forgotten'], T);
    await client.set(idempotencyKey('evt_old'), 'done', 'EX', 600);
    expect(await run(FORGET, T, [DONE_GROUP, idempotencyKey('evt_forgotten')])).toBe(1);
    expect(await run(FORGET, T, [DONE_GROUP, idempotencyKey('evt_old')])).toBe(1);
    expect(await run(FORGET, T, [DONE_GROUP, idempotencyKey('evt_never')])).toBe(0);
    expect(await lookup(['evt_forgotten', 'evt_old'], T)).toEqual([0, 0]);
    expect((await level()).n).toBe(0);
  });

  it('recount a group a sweep step covers whole', async () => {
    await mark(ids('c', 100), T);
    await client.hset(DONE_GROUP, 'n', 7);
    await sweep(T + 1, 64, 0);
    expect((await level()).n).toBe(100);
  });

  it('sweep in bounded steps, dropping only expired markers, and shrink back to one bucket', async () => {
    const early = ids('e', 8000);
    const late = ids('l', 8000);
    await mark(early, T, 100);
    await mark(late, T + 50, 100);
    const grown = await buckets();
    expect(grown.count).toBe(16_000 / MAX_LOAD);
    // At T + 120 the early markers have expired: one pass removes exactly them.
    let removed = 0;
    for (let step = 0; step < Math.ceil(grown.count / 64); step++) {
      const [visited, gone] = await sweep(T + 120, 64, 0);
      expect(visited).toBeLessThanOrEqual(64);
      removed += gone ?? 0;
    }
    expect(removed).toBe(8000);
    expect((await level()).n).toBe(8000);
    expect((await buckets()).members).toBe(8000);
    expect(await lookup(late, T + 120)).toEqual(Array(8000).fill(1));
    // At T + 200 everything has expired: the steps empty the buckets and merge them away.
    for (let step = 0; step < 200 && (await level()).n + (await buckets()).count > 1; step++) {
      const [, , merges] = await sweep(T + 200, 64, 4);
      expect(merges).toBeLessThanOrEqual(4);
    }
    expect(await level()).toEqual({ L: 0, p: 0, n: 0 });
    expect(await client.dbsize()).toBe(2);
  });

  it('keep markers findable while merges and splits alternate', async () => {
    const first = ids('m', 4000);
    await mark(first, T, 1000);
    // Force merges with a low count, then grow again.
    await client.hset(DONE_GROUP, 'n', 0);
    for (let step = 0; step < 30; step++) await sweep(T + 1, 8, 4);
    await client.hset(DONE_GROUP, 'n', (await buckets()).members);
    const more = ids('n', 4000);
    await mark(more, T + 1, 1000);
    expect((await buckets()).members).toBe(8000);
    expect(await lookup([...first, ...more], T + 2)).toEqual(Array(8000).fill(1));
  });
});

describe('the sweeper, stats and upgrade record', () => {
  it('steps the group by at most 64 buckets, skipping a step right after another', async () => {
    // Marked 1000 s ago for 100 s: by Redis's clock every marker has expired.
    await mark(ids('s', 8000), Number((await client.time())[0]) - 1000, 100);
    await client.del(CLOCK_KEY);
    const sweeper = new DoneSweeper(client);
    const [first] = await sweeper.step();
    expect(first).toMatchObject({ skipped: false, visited: SWEEP_BUCKETS_PER_STEP });
    expect(first?.removed).toBeGreaterThan(0);
    // Another worker a moment later: the fleet shares the group's pace.
    expect((await sweeper.step())[0]?.skipped).toBe(true);
    await client.hset(DONE_GROUP, 'at', 0);
    let markers = 8000;
    for (let i = 0; i < 100 && markers > 0; i++) {
      await client.hset(DONE_GROUP, 'at', 0);
      const [step] = await sweeper.step();
      expect(step?.visited).toBeLessThanOrEqual(SWEEP_BUCKETS_PER_STEP);
      markers = step?.markers ?? 0;
    }
    expect(markers).toBe(0);
    await sweeper.stop();
  });

  it('stats count the remembered events and estimate their memory', async () => {
    const store = new IdempotencyStore(client);
    expect(await rememberedEvents(client)).toEqual({
      events: 0,
      bytes: 0,
      bytesPerEvent: null,
      oldLayoutUntil: null,
    });
    const empty = await usedMemory();
    await mark(ids('x', 20_000), Number((await client.time())[0]), 3600);
    await client.del(CLOCK_KEY);
    const grown = (await usedMemory()) - empty;
    const remembered = await rememberedEvents(client);
    expect(remembered.events).toBe(20_000);
    // MEMORY USAGE leaves out Redis's own tables and samples 64 buckets: near used_memory.
    expect(remembered.bytes / grown).toBeGreaterThan(0.7);
    expect(remembered.bytes / grown).toBeLessThan(1.15);
    expect(remembered.bytesPerEvent).toBeLessThan(40);
    await store.markDone('evt_one_more', 3600);
    expect((await rememberedEvents(client)).events).toBe(20_001);
  });

  it('opens the upgrade record once: a fresh install shadows nothing, an upgrade its first hour', async () => {
    const now = Number((await client.time())[0]);
    const fresh = await openMarkerSettings(client, { ttlSeconds: 600, queueKeys: ['q:completed'] });
    expect(fresh).toEqual({ layout: 'buckets', shadowUntil: expect.any(Number) });
    expect(fresh.shadowUntil).toBeLessThanOrEqual(now + 1);
    expect((await rememberedEvents(client)).oldLayoutUntil).toBeNull();

    await client.del(MARKER_RECORD_KEY);
    await client.zadd('q:completed', 1, 'evt-old');
    const upgrade = await openMarkerSettings(client, {
      ttlSeconds: 600,
      queueKeys: ['q:completed'],
    });
    expect(upgrade.shadowUntil).toBeGreaterThanOrEqual(now + ROLLOUT_WINDOW_SECONDS);
    const record = await readMarkerRecord(client);
    expect(record?.oldUntil).toBe((record?.since ?? 0) + ROLLOUT_WINDOW_SECONDS + 600);
    const until = (await rememberedEvents(client)).oldLayoutUntil;
    expect(Date.parse(until ?? '')).toBe((record?.oldUntil ?? 0) * 1000);
    // Later workers read what the first one wrote.
    expect(await openMarkerSettings(client, { ttlSeconds: 5, queueKeys: [] })).toEqual(upgrade);
    // The benchmark's switch to the previous layout.
    await client.hset(MARKER_RECORD_KEY, 'layout', 'one-key');
    expect((await openMarkerSettings(client, { ttlSeconds: 5, queueKeys: [] })).layout).toBe(
      'one-key',
    );
  });
});

async function usedMemory(): Promise<number> {
  const info = (await client.info('memory')) as string;
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1]);
}
