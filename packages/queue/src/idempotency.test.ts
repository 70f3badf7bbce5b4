import { startRedis, type TestRedis, waitFor } from '@groq-webhooks/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { closeRedis, createRedis, type RedisClient } from './connection.js';
import { IdempotencyStore, retryDoneMark } from './idempotency.js';
import { idempotencyKey } from './naming.js';

describe('IdempotencyStore against a real redis-server', () => {
  let redis: TestRedis;
  let client: RedisClient;
  let store: IdempotencyStore;

  beforeAll(async () => {
    redis = await startRedis();
    client = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'admin');
    await waitFor(() => client.status === 'ready');
    store = new IdempotencyStore(client);
  });
  afterAll(async () => {
    if (client) await closeRedis(client);
    await redis?.cleanup();
  });

  it('claims a fresh event for its owner with the given TTL', async () => {
    expect(await store.claim('evt_fresh', 'owner-a', 5000)).toBe('claimed');
    expect(await client.get(idempotencyKey('evt_fresh'))).toBe('processing:owner-a');
    const ttl = await client.pttl(idempotencyKey('evt_fresh'));
    expect(ttl).toBeGreaterThan(3000);
    expect(ttl).toBeLessThanOrEqual(5000);
  });

  it('answers busy to another owner and claimed (with a renewed TTL) to the same one', async () => {
    expect(await store.claim('evt_held', 'owner-a', 1000)).toBe('claimed');
    expect(await store.claim('evt_held', 'owner-b', 60_000)).toBe('busy');
    expect(await client.get(idempotencyKey('evt_held'))).toBe('processing:owner-a');
    expect(await store.claim('evt_held', 'owner-a', 60_000)).toBe('claimed');
    expect(await client.pttl(idempotencyKey('evt_held'))).toBeGreaterThan(1000);
  });

  it('answers done to everyone once the event is marked done', async () => {
    expect(await store.claim('evt_finished', 'owner-a', 5000)).toBe('claimed');
    await store.markDone('evt_finished', 60);
    expect(await store.isDone('evt_finished')).toBe(true);
    expect(await store.claim('evt_finished', 'owner-a', 5000)).toBe('done');
    expect(await store.claim('evt_finished', 'owner-b', 5000)).toBe('done');
  });

  it('lets another owner claim after a release, and only the owner releases or renews', async () => {
    expect(await store.claim('evt_retry', 'owner-a', 5000)).toBe('claimed');
    await store.release('evt_retry', 'owner-b');
    expect(await store.claim('evt_retry', 'owner-b', 5000)).toBe('busy');
    expect(await store.renew('evt_retry', 'owner-b', 5000)).toBe(false);
    expect(await store.renew('evt_retry', 'owner-a', 5000)).toBe(true);
    await store.release('evt_retry', 'owner-a');
    expect(await client.exists(idempotencyKey('evt_retry'))).toBe(0);
    expect(await store.claim('evt_retry', 'owner-b', 5000)).toBe('claimed');
  });

  it('lets a new owner claim once an abandoned claim has expired', async () => {
    expect(await store.claim('evt_abandoned', 'owner-dead', 50)).toBe('claimed');
    await waitFor(async () => (await client.exists(idempotencyKey('evt_abandoned'))) === 0);
    expect(await store.claim('evt_abandoned', 'owner-b', 5000)).toBe('claimed');
  });

  it('reports the milliseconds left on a record, negative without one', async () => {
    expect(await store.claim('evt_ttl', 'owner-a', 5000)).toBe('claimed');
    expect(await store.claimTtlMs('evt_ttl')).toBeGreaterThan(3000);
    expect(await store.claimTtlMs('evt_no_record')).toBeLessThan(0);
  });
});

describe('retryDoneMark (pure: the write is a stand-in)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** A write failing its first `failures` calls (the first by throwing outright). */
  function flaky(failures: number) {
    const calls: number[] = [];
    const write = () => {
      calls.push(Date.now());
      if (calls.length === 1 && failures > 0) throw new Error('thrown');
      if (calls.length <= failures) return Promise.reject(new Error(`refused ${calls.length}`));
      return Promise.resolve('OK');
    };
    return { calls, write };
  }

  it('writes once when the write succeeds', async () => {
    const { calls, write } = flaky(0);
    expect(await retryDoneMark(write)).toBe('OK');
    expect(calls).toHaveLength(1);
  });

  it('tries again 200, 400 and 800 ms apart until the write succeeds', async () => {
    vi.useFakeTimers();
    const { calls, write } = flaky(3);
    const result = retryDoneMark(write);
    await vi.advanceTimersByTimeAsync(1400);
    expect(await result).toBe('OK');
    expect(calls.map((at) => at - (calls[0] ?? 0))).toEqual([0, 200, 600, 1400]);
  });

  it('gives up after five tries with the last error', async () => {
    vi.useFakeTimers();
    const { calls, write } = flaky(10);
    const result = retryDoneMark(write);
    const settled = result.catch((error: Error) => error);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(((await settled) as Error).message).toBe('refused 5');
    expect(calls).toHaveLength(5);
  });

  it('does not try again after an error it is told not to retry', async () => {
    const { calls, write } = flaky(2);
    await expect(retryDoneMark(write, () => false)).rejects.toThrow('thrown');
    expect(calls).toHaveLength(1);
  });
});
