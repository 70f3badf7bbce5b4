import type { Envelope } from '@groq-webhooks/core';
import { rawCommand, startRedisCluster, type TestCluster, waitFor } from '@groq-webhooks/testing';
import { Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeRedis, createRedis, type RedisClient } from './connection.js';
import { rememberedEvents } from './done-stats.js';
import { DoneSweeper } from './done-sweeper.js';
import { IdempotencyStore } from './idempotency.js';
import { doneGroupKey, idempotencyKey, jobIdFor, keySlot, queueShards } from './naming.js';
import { EventProducer } from './producer.js';
import { STOCK_PATH } from './queue-path.js';

const settings = {
  queueName: 'groq-events',
  queuePrefix: '{groq}',
  queueShards: 3,
  jobAttempts: 3,
  backoffBaseMs: 100,
};

function event(id: string): Envelope {
  return { id, type: 'resource.created', data: {}, created: '2026-11-28T10:00:00Z' };
}

describe('on a real 3-master Redis Cluster', () => {
  let cluster: TestCluster;
  const clients: RedisClient[] = [];
  const connect = (role: 'producer' | 'worker' | 'admin') => {
    const client = createRedis(
      { redisUrl: 'redis://127.0.0.1:6379', redisClusterNodes: nodes() },
      role,
    );
    clients.push(client);
    return client;
  };
  const nodes = () => cluster.nodes.map((node) => ({ host: '127.0.0.1', port: node.port }));

  beforeAll(async () => {
    cluster = await startRedisCluster(3);
  }, 60_000);
  afterAll(async () => {
    await Promise.all(clients.map((client) => closeRedis(client)));
    await cluster?.cleanup();
  });

  it('puts each of 3 queue shards on its own master', async () => {
    const admin = connect('admin');
    await waitFor(() => admin.status === 'ready', { timeoutMs: 10_000 });
    const owners = new Set<string>();
    for (const shard of queueShards(settings)) {
      const key = `${shard.prefix}:${shard.name}:wait`;
      const slot = Number(
        (await rawCommand(cluster.nodes[0]!.port, ['CLUSTER', 'KEYSLOT', key])).slice(1),
      );
      const ranges = await (
        admin as unknown as { cluster(sub: 'SLOTS'): Promise<[number, number, [string, number]][]> }
      ).cluster('SLOTS');
      const owner = ranges.find(([low, high]) => slot >= low && slot <= high);
      owners.add(String(owner?.[2][1]));
    }
    expect(owners.size).toBe(3);
  });

  it('enqueues over 3 shards, and workers run every event once with idempotency across slots', async () => {
    const producerClient = connect('producer');
    await waitFor(() => producerClient.status === 'ready', { timeoutMs: 10_000 });
    const producer = new EventProducer({ client: producerClient, settings, path: STOCK_PATH });
    const ids = Array.from({ length: 60 }, (_, i) => `evt_cluster_${i}`);
    for (const id of ids) {
      expect(
        await producer.enqueue(
          { event: event(id), receivedAt: new Date().toISOString(), keyIndex: 0 },
          2000,
        ),
      ).toBe('enqueued');
    }
    expect(
      await producer.enqueue({ event: event(ids[0]!), receivedAt: '', keyIndex: 0 }, 2000),
    ).toBe('duplicate');

    const store = new IdempotencyStore(connect('admin'));
    const seen = new Map<string, number>();
    const workers = queueShards(settings).map(
      (shard) =>
        new Worker(
          shard.name,
          async (job, token) => {
            const id = job.data.event.id;
            const claim = await store.claim(id, token ?? 'none', 5000);
            if (claim !== 'claimed') return;
            seen.set(id, (seen.get(id) ?? 0) + 1);
            await store.markDone(id, 60);
          },
          { connection: connect('worker'), prefix: shard.prefix, concurrency: 5 },
        ),
    );
    await waitFor(() => seen.size === ids.length, {
      timeoutMs: 20_000,
      description: 'all cluster events handled',
    });
    await Promise.all(workers.map((worker) => worker.close()));
    expect([...seen.values()].every((count) => count === 1)).toBe(true);
    expect(await store.isDone(ids[59]!)).toBe(true);
    expect(
      await producer.enqueue({ event: event(ids[59]!), receivedAt: '', keyIndex: 0 }, 2000),
    ).toBe('duplicate');
    await producer.close();
  }, 60_000);

  it('coalesces concurrent enqueues over 3 shards: one job per id, duplicates answered as such', async () => {
    const producerClient = connect('producer');
    await waitFor(() => producerClient.status === 'ready', { timeoutMs: 10_000 });
    const producer = new EventProducer({ client: producerClient, settings, path: STOCK_PATH });
    await new IdempotencyStore(producerClient).markDone('evt_batch_done', 60);
    const ids = Array.from({ length: 90 }, (_, i) => `evt_batch_${i % 30}`);
    ids.push('evt_batch_done');
    const outcomes = await Promise.all(
      ids.map((id) =>
        producer.enqueue(
          { event: event(id), receivedAt: new Date().toISOString(), keyIndex: 0 },
          5000,
        ),
      ),
    );
    const enqueued = ids.filter((_, index) => outcomes[index] === 'enqueued');
    expect(enqueued.sort()).toEqual(Array.from({ length: 30 }, (_, i) => `evt_batch_${i}`).sort());
    expect(outcomes.filter((outcome) => outcome === 'duplicate')).toHaveLength(61);
    const admin = connect('admin');
    await waitFor(() => admin.status === 'ready', { timeoutMs: 10_000 });
    let jobs = 0;
    for (const shard of queueShards(settings)) {
      for (let i = 0; i < 30; i++) {
        jobs += await admin.exists(`${shard.prefix}:${shard.name}:${jobIdFor(`evt_batch_${i}`)}`);
      }
      expect(
        await admin.exists(`${shard.prefix}:${shard.name}:${jobIdFor('evt_batch_done')}`),
      ).toBe(0);
    }
    expect(jobs).toBe(30);
    await producer.close();
  }, 60_000);

  it('keeps done-markers in one group per slot: marked, honoured in both layouts, counted, swept', async () => {
    const admin = connect('admin');
    await waitFor(() => admin.status === 'ready', { timeoutMs: 10_000 });
    const store = new IdempotencyStore(admin);
    const before = (await rememberedEvents(admin)).events;
    // Ids over many slots, one with a hash tag of its own.
    const ids = [...Array.from({ length: 40 }, (_, i) => `evt_slot_${i}`), 'evt_{tagged}_1'];
    for (const id of ids) {
      expect(await store.claim(id, 'owner', 5000)).toBe('claimed');
      await store.markDone(id, 2);
    }
    // Each marker lives in the group of its claim key's slot (CLUSTER KEYSLOT agrees).
    for (const id of ['evt_slot_0', 'evt_{tagged}_1']) {
      const group = doneGroupKey(id, true);
      const port = cluster.nodes[0]!.port;
      const slotOf = async (key: string) =>
        Number((await rawCommand(port, ['CLUSTER', 'KEYSLOT', key])).slice(1));
      expect(await slotOf(group)).toBe(await slotOf(idempotencyKey(id)));
      expect(await slotOf(`${group}:0`)).toBe(keySlot(idempotencyKey(id)));
    }
    expect(await store.lookup(ids)).toEqual(ids.map(() => true));
    expect(await store.claim('evt_slot_3', 'other', 5000)).toBe('done');
    // A marker of the previous layout is honoured too.
    await admin.set(idempotencyKey('evt_old_layout'), 'done', 'EX', 60);
    expect(await store.lookup(['evt_old_layout', 'evt_never'])).toEqual([true, false]);
    expect(await store.claim('evt_old_layout', 'owner', 5000)).toBe('done');
    expect((await rememberedEvents(admin)).events).toBe(before + ids.length);

    // Past their 2 s TTL they are new again, and the sweeper's walk over the groups drops them.
    await waitFor(async () => !(await store.isDone(ids[0]!)), { timeoutMs: 5000 });
    const slot = keySlot(idempotencyKey(ids[0]!));
    const sweeper = new DoneSweeper(admin, { random: () => slot / 16_384 });
    const [step] = await sweeper.step();
    expect(step).toMatchObject({ group: doneGroupKey(ids[0]!, true), skipped: false });
    expect(step?.removed).toBeGreaterThanOrEqual(1);
    expect((await rememberedEvents(admin)).events).toBe(before + ids.length - (step?.removed ?? 0));
    expect(await store.claim(ids[0]!, 'owner', 5000)).toBe('claimed');
  }, 60_000);
});
