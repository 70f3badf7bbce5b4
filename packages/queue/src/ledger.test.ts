import { startRedis, type TestRedis, waitFor } from '@groq-webhooks/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeRedis, createRedis, type RedisClient } from './connection.js';
import { type EventLedger, IdempotencyStore } from './idempotency.js';
import { idempotencyKey, jobIdFor } from './naming.js';
import { chooseQueuePath, STOCK_PATH } from './queue-path.js';

const TTL_SECONDS = 600;

// What the processor relies on, the same on both paths.
describe.each(['stock', 'fast'] as const)('the %s ledger against a real redis-server', (kind) => {
  let redis: TestRedis;
  let client: RedisClient;
  let ledger: EventLedger;
  let store: IdempotencyStore;

  beforeAll(async () => {
    redis = await startRedis();
    client = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'worker');
    await waitFor(() => client.status === 'ready');
    const path = kind === 'stock' ? STOCK_PATH : (await chooseQueuePath('on', client)).path;
    ledger = path.ledger(client, { doneTtlSeconds: TTL_SECONDS });
    store = new IdempotencyStore(client);
  });
  afterAll(async () => {
    if (client) await closeRedis(client);
    await redis?.cleanup();
  });

  it('claims for one lock token at a time; done for everyone once marked done', async () => {
    expect(await ledger.claim('evt_l1', jobIdFor('evt_l1'), 'tok-a', 5000)).toBe('claimed');
    expect(await ledger.claim('evt_l1', jobIdFor('evt_l1'), 'tok-b', 5000)).toBe('busy');
    expect(await ledger.renew('evt_l1', 'tok-b', 5000)).toBe(false);
    expect(await ledger.renew('evt_l1', 'tok-a', 5000)).toBe(true);
    await ledger.markDone('evt_l1');
    expect(await ledger.claim('evt_l1', jobIdFor('evt_l1'), 'tok-b', 5000)).toBe('done');
    const now = Number((await client.time())[0]);
    expect(await store.doneUntil('evt_l1')).toBeGreaterThan(now + TTL_SECONDS - 60);
    // The claim is gone: the marker lives in the compact layout.
    expect(await client.exists(idempotencyKey('evt_l1'))).toBe(0);
  });

  it('lets a retry claim after a release', async () => {
    expect(await ledger.claim('evt_l2', jobIdFor('evt_l2'), 'tok-a', 5000)).toBe('claimed');
    await ledger.release('evt_l2', 'tok-a');
    expect(await ledger.claimTtlMs('evt_l2')).toBeLessThan(0);
    expect(await ledger.claim('evt_l2', jobIdFor('evt_l2'), 'tok-b', 5000)).toBe('claimed');
  });

  it('marks a handled event done by the time its job is finished, or at close', async () => {
    expect(await ledger.claim('evt_l3', jobIdFor('evt_l3'), 'tok-a', 5000)).toBe('claimed');
    await ledger.markHandled('evt_l3', jobIdFor('evt_l3'));
    // The stock ledger writes at once; the fast one with the job's finish, which never comes
    // here, so closing writes it.
    expect(await ledger.markUnfinishedDone()).toBe(0);
    expect(await store.isDone('evt_l3')).toBe(true);
  });

  it('gives back nothing it did not take at fetch', async () => {
    expect(await ledger.claim('evt_l4', jobIdFor('evt_l4'), 'tok-a', 5000)).toBe('claimed');
    await ledger.giveBack('evt_l4', jobIdFor('evt_l4'), 'tok-b');
    expect(await client.get(idempotencyKey('evt_l4'))).toBe('processing:tok-a');
  });
});

describe('the fast ledger', () => {
  let redis: TestRedis;
  let client: RedisClient;

  beforeAll(async () => {
    redis = await startRedis();
    client = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'worker');
    await waitFor(() => client.status === 'ready');
  });
  afterAll(async () => {
    if (client) await closeRedis(client);
    await redis?.cleanup();
  });

  it('claims many events at once in few commands: one winner per event', async () => {
    const { path } = await chooseQueuePath('on', client);
    const ledger = path.ledger(client, { doneTtlSeconds: TTL_SECONDS });
    const ids = Array.from({ length: 100 }, (_, i) => `evt_many_${i}`);
    const sent = await watchCommands(redis.url);
    const claims = await Promise.all(
      ids.flatMap((id) => [
        ledger.claim(id, jobIdFor(id), 'tok-a', 5000),
        ledger.claim(id, jobIdFor(id), 'tok-b', 5000),
      ]),
    );
    for (let i = 0; i < ids.length; i++) {
      expect([claims[2 * i], claims[2 * i + 1]]).toEqual(['claimed', 'busy']);
    }
    // One by one that is 200 SET NX and 100 scripts for the losers; here one command for the
    // fresh claims and the losers' 100 scripts.
    expect(await sent.stop()).toBeLessThan(110);
  });
});

/** Counts the commands clients send to Redis (not those scripts run) until `stop()`: MONITOR. */
async function watchCommands(url: string): Promise<{ stop(): Promise<number> }> {
  const monitor = await new Redis(url).monitor();
  let count = 0;
  monitor.on('monitor', (_time: string, _args: string[], source: string) => {
    if (source !== 'lua') count++;
  });
  return {
    async stop() {
      monitor.disconnect();
      return count;
    },
  };
}
