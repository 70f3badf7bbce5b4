import { closeRedis, createRedis, type RedisClient } from '@groq-webhooks/queue';
import { startRedis, type TestRedis, waitFor } from '@groq-webhooks/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { eventIds, take } from './event-ids.js';
import {
  CLAIM,
  CLAIM_FRESH,
  CLAIM_PREFIX,
  FORGET,
  LOOKUP,
  MARK_DONE,
  MAX_LOAD,
  SWEEP,
} from './marker-scripts.js';

// The proposed layout's Lua (docs/idempotency-memory.md) against a real redis-server: what the
// implementation will transcribe must keep every marker findable through splits, merges and
// sweeps, and expire exactly at its TTL. The clock is the scripts' override (ARGV[1]).

const T = 1_800_000_000;
const META = 'groq:done';
let redis: TestRedis;
let client: RedisClient;

type Scripts = RedisClient & {
  eval(lua: string, keys: number, ...args: (string | number)[]): Promise<unknown>;
};
const run = (lua: string, keys: string[], ...args: (string | number)[]) =>
  (client as Scripts).eval(lua, keys.length, ...keys, ...args);

const claimKeys = (ids: string[]) => ids.map((id) => CLAIM_PREFIX + id);
const mark = (ids: string[], clock: number, ttl = 100, shadowUntil = 0) =>
  run(MARK_DONE, [META, ...claimKeys(ids)], clock, ttl, shadowUntil);
const lookup = async (ids: string[], clock: number | '') =>
  (await run(LOOKUP, [META, ...claimKeys(ids)], clock)) as number[];
const sweep = async (clock: number, buckets = 64, merges = 4) =>
  (await run(SWEEP, [META], clock, buckets, 0, merges)) as number[];

async function meta() {
  const fields = await client.hgetall(META);
  return { L: Number(fields.L), p: Number(fields.p), n: Number(fields.n) };
}

/** Markers actually held: the sum of the buckets' sizes, and their encodings. */
async function buckets() {
  const { L, p } = await meta();
  let members = 0;
  const encodings = new Set<string>();
  for (let b = 0; b < 2 ** L + p; b++) {
    members += await client.zcard(`${META}:${b}`);
    const encoding = await client.object('ENCODING', `${META}:${b}`);
    if (encoding !== null) encodings.add(String(encoding));
  }
  // No bucket outside the current range may hold anything.
  const stray = await client.exists(`${META}:${2 ** L + p}`, `${META}:${2 ** (L + 1) + p}`);
  return { count: 2 ** L + p, members, encodings: [...encodings], stray };
}

beforeAll(async () => {
  redis = await startRedis();
  client = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'admin');
  await waitFor(() => client.status === 'ready');
});
afterAll(async () => {
  await closeRedis(client);
  await redis.cleanup();
});
beforeEach(async () => {
  await client.flushdb();
});

describe('proposed done-marker layout (Lua prototype)', () => {
  it('finds every marked event through the splits that grow it, and no other', async () => {
    const marked = [...take(eventIds(1), 20_000)];
    for (let i = 0; i < marked.length; i += 500) await mark(marked.slice(i, i + 500), T);
    const { L, p, n } = await meta();
    expect(n).toBe(20_000);
    expect(2 ** L + p).toBe(Math.ceil(20_000 / MAX_LOAD));
    const held = await buckets();
    expect(held.members).toBe(20_000);
    expect(held.encodings).toEqual(['listpack']);
    expect(held.stray).toBe(0);
    const others = [...take(eventIds(2), 20_000)];
    for (let i = 0; i < marked.length; i += 1000) {
      expect(await lookup(marked.slice(i, i + 1000), T + 1)).toEqual(Array(1000).fill(1));
      expect(await lookup(others.slice(i, i + 1000), T + 1)).toEqual(Array(1000).fill(0));
    }
  });

  it('answers done until the expiry and new from it on, whether or not the sweep has run', async () => {
    await mark(['evt_a'], T, 100);
    expect(await lookup(['evt_a'], T + 99)).toEqual([1]);
    expect(await lookup(['evt_a'], T + 100)).toEqual([0]);
    // A lagging sweep keeps the member; it does not make the event done again.
    expect((await meta()).n).toBe(1);
    expect(await lookup(['evt_a'], T + 5000)).toEqual([0]);
    // Marked again: done for a new TTL.
    await mark(['evt_a'], T + 200, 100);
    expect(await lookup(['evt_a'], T + 299)).toEqual([1]);
    expect((await meta()).n).toBe(1);
  });

  it("with Redis's clock, never expires before the TTL nor more than a second after", async () => {
    const before = Number((await client.time())[0]);
    await run(MARK_DONE, [META, `${CLAIM_PREFIX}evt_t`], '', 100, 0);
    const after = Number((await client.time())[0]);
    const expiries = await client.zrange(`${META}:0`, '0', '-1', 'WITHSCORES');
    const expiry = Number(expiries[1]);
    expect(expiry).toBeGreaterThanOrEqual(before + 100);
    expect(expiry).toBeLessThanOrEqual(after + 101);
    expect(await lookup(['evt_t'], '')).toEqual([1]);
  });

  it('honours the old layout and deletes the claim when it marks done', async () => {
    await client.set(`${CLAIM_PREFIX}evt_old`, 'done', 'EX', 600);
    expect(await lookup(['evt_old', 'evt_new'], T)).toEqual([1, 0]);
    await client.set(`${CLAIM_PREFIX}evt_new`, 'processing:tok', 'PX', 15_000);
    await mark(['evt_new'], T);
    expect(await client.exists(`${CLAIM_PREFIX}evt_new`)).toBe(0);
    expect(await lookup(['evt_new'], T)).toEqual([1]);
  });

  it('keeps the old marker beside the new one until the rollout window ends', async () => {
    const now = Number((await client.time())[0]);
    await mark(['evt_roll'], now, 100, now + 60);
    expect(await client.get(`${CLAIM_PREFIX}evt_roll`)).toBe('done');
    const ttl = await client.ttl(`${CLAIM_PREFIX}evt_roll`);
    expect(ttl).toBeGreaterThan(55);
    expect(ttl).toBeLessThanOrEqual(60);
  });

  it('claims fresh events only: done ones answer 2, held ones 0', async () => {
    await mark(['evt_done'], T);
    await client.set(`${CLAIM_PREFIX}evt_held`, 'processing:other', 'PX', 15_000);
    const replies = await run(
      CLAIM_FRESH,
      [META, ...claimKeys(['evt_done', 'evt_held', 'evt_free'])],
      T + 1,
      15_000,
      'processing:a',
      'processing:b',
      'processing:c',
    );
    expect(replies).toEqual([2, 0, 1]);
    expect(await client.get(`${CLAIM_PREFIX}evt_free`)).toBe('processing:c');
    expect(await client.exists(`${CLAIM_PREFIX}evt_done`)).toBe(0);
  });

  it('claims one event: done (either layout), claimed when free or ours, busy when held', async () => {
    await mark(['evt_new_done'], T);
    await client.set(`${CLAIM_PREFIX}evt_old_done`, 'done', 'EX', 600);
    await client.set(`${CLAIM_PREFIX}evt_ours`, 'processing:me', 'PX', 1000);
    await client.set(`${CLAIM_PREFIX}evt_theirs`, 'processing:them', 'PX', 1000);
    const claim = (id: string) =>
      run(CLAIM, [META, CLAIM_PREFIX + id], T + 1, 'processing:me', 15_000);
    expect(await claim('evt_new_done')).toBe('done');
    expect(await claim('evt_old_done')).toBe('done');
    expect(await claim('evt_ours')).toBe('claimed');
    expect(await client.pttl(`${CLAIM_PREFIX}evt_ours`)).toBeGreaterThan(10_000);
    expect(await claim('evt_theirs')).toBe('busy');
    expect(await claim('evt_free')).toBe('claimed');
    expect(await client.get(`${CLAIM_PREFIX}evt_free`)).toBe('processing:me');
  });

  it('forgets an event on purpose (replay), in either layout', async () => {
    await mark(['evt_replayed'], T);
    await client.set(`${CLAIM_PREFIX}evt_old`, 'done', 'EX', 600);
    expect(await run(FORGET, [META, `${CLAIM_PREFIX}evt_replayed`], T)).toBe(1);
    expect(await run(FORGET, [META, `${CLAIM_PREFIX}evt_old`], T)).toBe(1);
    expect(await run(FORGET, [META, `${CLAIM_PREFIX}evt_never`], T)).toBe(0);
    expect(await lookup(['evt_replayed', 'evt_old'], T)).toEqual([0, 0]);
    expect((await meta()).n).toBe(0);
  });

  it('recounts a group a step covers whole', async () => {
    await mark([...take(eventIds(8), 100)], T);
    await client.hset(META, 'n', 7);
    await sweep(T + 1, 64, 0);
    expect((await meta()).n).toBe(100);
  });

  it('sweeps in bounded steps, drops only expired members and shrinks back to one bucket', async () => {
    const early = [...take(eventIds(3), 8000)];
    const late = [...take(eventIds(4), 8000)];
    for (let i = 0; i < early.length; i += 500) await mark(early.slice(i, i + 500), T, 100);
    for (let i = 0; i < late.length; i += 500) await mark(late.slice(i, i + 500), T + 50, 100);
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
    expect((await meta()).n).toBe(8000);
    expect((await buckets()).members).toBe(8000);
    for (let i = 0; i < late.length; i += 1000) {
      expect(await lookup(late.slice(i, i + 1000), T + 120)).toEqual(Array(1000).fill(1));
    }
    // At T + 200 everything has expired: the steps empty the buckets and merge them away.
    for (let step = 0; step < 200 && (await meta()).n + (await buckets()).count > 1; step++) {
      const [, , merges] = await sweep(T + 200, 64, 4);
      expect(merges).toBeLessThanOrEqual(4);
    }
    expect(await meta()).toEqual({ L: 0, p: 0, n: 0 });
    expect(await client.dbsize()).toBe(1);
  });

  it('keeps markers findable while merges and splits alternate', async () => {
    const ids = [...take(eventIds(5), 4000)];
    for (let i = 0; i < ids.length; i += 500) await mark(ids.slice(i, i + 500), T, 1000);
    // Force merges with a low count, then grow again.
    await client.hset(META, 'n', 0);
    for (let step = 0; step < 30; step++) await sweep(T + 1, 8, 4);
    await client.hset(META, 'n', (await buckets()).members);
    const more = [...take(eventIds(6), 4000)];
    for (let i = 0; i < more.length; i += 500) await mark(more.slice(i, i + 500), T + 1, 1000);
    const all = [...ids, ...more];
    expect((await buckets()).members).toBe(8000);
    for (let i = 0; i < all.length; i += 1000) {
      expect(await lookup(all.slice(i, i + 1000), T + 2)).toEqual(Array(1000).fill(1));
    }
  });
});
