import { startRedis, type TestRedis, waitFor } from '@groq-webhooks/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeRedis, createRedis, type RedisClient } from './connection.js';
import type { EventLedger } from './idempotency.js';
import { resourceStateKey } from './naming.js';
import type { ResourceTurn } from './ordering.js';
import { chooseQueuePath, STOCK_PATH } from './queue-path.js';

const KEEP_SECONDS = 600;
const T = Date.parse('2026-11-28T10:00:00Z');

function turn(key: string, offsetMs: number, type = 'resource.updated'): ResourceTurn {
  return { key, createdMs: T + offsetMs, type };
}

// Per-resource turns, the same on both paths (the fast one takes a moment's turns in one
// command and ends them inside the job's finish, which finish-script.test.ts covers).
describe.each(['stock', 'fast'] as const)('resource turns on the %s path', (kind) => {
  let redis: TestRedis;
  let client: RedisClient;
  let ledger: EventLedger;

  beforeAll(async () => {
    redis = await startRedis();
    client = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'worker');
    await waitFor(() => client.status === 'ready');
    const path = kind === 'stock' ? STOCK_PATH : (await chooseQueuePath('on', client)).path;
    ledger = path.ledger(client, { doneTtlSeconds: KEEP_SECONDS });
  });
  afterAll(async () => {
    if (client) await closeRedis(client);
    await redis?.cleanup();
  });

  it('lets one owner at a time hold a resource; the others are told how long it may hold', async () => {
    expect(await ledger.takeTurn(turn('res_a', 0), 'tok-1', 5000)).toEqual({ outcome: 'acquired' });
    const busy = await ledger.takeTurn(turn('res_a', 10), 'tok-2', 5000);
    expect(busy.outcome).toBe('busy');
    expect(busy.outcome === 'busy' && busy.heldForMs).toBeGreaterThan(4000);
    // Another resource is free meanwhile.
    expect((await ledger.takeTurn(turn('res_b', 0), 'tok-2', 5000)).outcome).toBe('acquired');
    await ledger.endTurn(turn('res_a', 0), 'tok-2');
    expect((await ledger.takeTurn(turn('res_a', 10), 'tok-3', 5000)).outcome).toBe('busy');
    await ledger.endTurn(turn('res_a', 0), 'tok-1');
    expect((await ledger.takeTurn(turn('res_a', 10), 'tok-3', 5000)).outcome).toBe('acquired');
  });

  it('frees a resource whose holder died once its lock lapses', async () => {
    expect((await ledger.takeTurn(turn('res_dead', 0), 'tok-dead', 200)).outcome).toBe('acquired');
    expect((await ledger.takeTurn(turn('res_dead', 1), 'tok-next', 5000)).outcome).toBe('busy');
    await waitFor(
      async () =>
        (await ledger.takeTurn(turn('res_dead', 1), 'tok-next', 5000)).outcome === 'acquired',
      { timeoutMs: 5000, description: 'the dead holder’s lock to lapse' },
    );
  });

  it('renews only its own turn', async () => {
    expect((await ledger.takeTurn(turn('res_renew', 0), 'tok-1', 300)).outcome).toBe('acquired');
    expect(await ledger.renewTurn('res_renew', 'tok-2', 60_000)).toBe(false);
    expect(await ledger.renewTurn('res_renew', 'tok-1', 60_000)).toBe(true);
    expect(Number(await client.hget(resourceStateKey('res_renew'), 'until'))).toBeGreaterThan(
      Date.now() + 30_000,
    );
  });

  it('judges an event older than the newest applied stale; equal created ones run', async () => {
    const newer = turn('res_s', 2000);
    expect((await ledger.takeTurn(newer, 'tok-1', 5000)).outcome).toBe('acquired');
    await ledger.markDone('evt_s_newer', { turn: newer, owner: 'tok-1' });
    expect(await ledger.takeTurn(turn('res_s', 1000), 'tok-2', 5000)).toEqual({
      outcome: 'stale',
      deleted: false,
    });
    // A stale event takes nothing: the resource stays free.
    expect((await ledger.takeTurn(turn('res_s', 2000), 'tok-3', 5000)).outcome).toBe('acquired');
    await ledger.endTurn(turn('res_s', 2000), 'tok-3');
    expect(await client.hget(resourceStateKey('res_s'), 'newest')).toBe(String(T + 2000));
    expect(await client.ttl(resourceStateKey('res_s'))).toBeGreaterThan(KEEP_SECONDS - 60);
  });

  it('keeps a deleted resource deleted for older events, and lets a newer creation bring it back', async () => {
    const deletion = turn('res_d', 5000, 'resource.deleted');
    expect((await ledger.takeTurn(deletion, 'tok-1', 5000)).outcome).toBe('acquired');
    await ledger.markDone('evt_d_deleted', { turn: deletion, owner: 'tok-1' });
    expect(await ledger.takeTurn(turn('res_d', 4000), 'tok-2', 5000)).toEqual({
      outcome: 'stale',
      deleted: true,
    });
    const creation = turn('res_d', 6000, 'resource.created');
    expect((await ledger.takeTurn(creation, 'tok-3', 5000)).outcome).toBe('acquired');
    await ledger.markDone('evt_d_created', { turn: creation, owner: 'tok-3' });
    expect(await client.hgetall(resourceStateKey('res_d'))).toEqual({
      newest: String(T + 6000),
      deleted: '0',
    });
  });

  it('never judges an event whose created time it cannot read', async () => {
    const newer = turn('res_u', 9000);
    expect((await ledger.takeTurn(newer, 'tok-1', 5000)).outcome).toBe('acquired');
    await ledger.markDone('evt_u_newer', { turn: newer, owner: 'tok-1' });
    const unreadable = { key: 'res_u', createdMs: undefined, type: 'resource.updated' };
    expect((await ledger.takeTurn(unreadable, 'tok-2', 5000)).outcome).toBe('acquired');
    await ledger.markDone('evt_u_unreadable', { turn: unreadable, owner: 'tok-2' });
    expect(await client.hget(resourceStateKey('res_u'), 'newest')).toBe(String(T + 9000));
  });

  it('answers each of many turns taken at once', async () => {
    const turns = Array.from({ length: 50 }, (_, i) => turn(`res_many_${i % 10}`, i));
    const results = await Promise.all(turns.map((t, i) => ledger.takeTurn(t, `tok-${i}`, 5000)));
    const acquired = results.filter((result) => result.outcome === 'acquired');
    // One winner per resource, whoever came first.
    expect(acquired).toHaveLength(10);
    expect(results.slice(0, 10).every((result) => result.outcome === 'acquired')).toBe(true);
  });
});
