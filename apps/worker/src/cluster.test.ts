import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import {
  closeRedis,
  createRedis,
  EventProducer,
  IdempotencyStore,
  idempotencyKey,
  type RedisClient,
  type RedisSettings,
  STOCK_PATH,
} from '@groq-webhooks/queue';
import { createLogger, createRegistry } from '@groq-webhooks/telemetry';
import { startRedisCluster, type TestCluster, waitFor } from '@groq-webhooks/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordingHandlers } from './__fixtures__/recording-handlers.js';
import { createWorker, type EventWorker } from './worker.js';

describe('createWorker on a Redis Cluster', () => {
  let cluster: TestCluster | undefined;
  let redis: RedisSettings;
  const clients: RedisClient[] = [];
  const workers: EventWorker[] = [];

  beforeAll(async () => {
    cluster = await startRedisCluster(3);
    const first = cluster.nodes[0];
    if (first === undefined) throw new Error('no cluster node');
    redis = {
      redisUrl: first.url,
      redisClusterNodes: cluster.nodes.map((node) => ({ host: '127.0.0.1', port: node.port })),
    };
  });

  afterAll(async () => {
    await Promise.all(workers.map((worker) => worker.close(500)));
    await Promise.all(clients.map((client) => closeRedis(client)));
    await cluster?.cleanup();
  });

  it('runs every event of every shard exactly once, with two workers', async () => {
    const settings = {
      queueName: 'groq-events',
      queuePrefix: '{groq}',
      queueShards: 3,
      jobAttempts: 3,
      backoffBaseMs: 40,
      concurrency: 5,
      handlerTimeoutMs: 5000,
      lockDurationMs: 2000,
      stalledIntervalMs: 1000,
      idempotencyTtlSeconds: 600,
    };
    const effects = createRedis(redis, 'worker', 'test-effects');
    const producerClient = createRedis(redis, 'producer', 'test-producer');
    clients.push(effects, producerClient);
    const quiet = new Writable({ write: (_chunk, _encoding, done) => done() });
    for (let i = 0; i < 2; i++) {
      const worker = createWorker({
        settings,
        connect: (name) => createRedis(redis, 'worker', name),
        path: STOCK_PATH,
        handlers: recordingHandlers(() => effects),
        logger: createLogger({ service: 'worker', destination: quiet }),
        registry: createRegistry('worker-cluster-test'),
      });
      workers.push(worker);
      await worker.start();
    }
    const producer = new EventProducer({ client: producerClient, settings, path: STOCK_PATH });
    await waitFor(() => producerClient.status === 'ready', { timeoutMs: 15_000 });
    const events = Array.from({ length: 60 }, () => ({
      id: `evt_${randomUUID()}`,
      type: 'resource.updated',
      data: { behaviour: 'slow', ms: 5 },
      created: new Date().toISOString(),
    }));
    for (const event of events) {
      await producer.enqueue({ event, receivedAt: new Date().toISOString(), keyIndex: 0 }, 5000);
    }
    await waitFor(
      async () => {
        const counts = await Promise.all(events.map((event) => effects.hget('effects', event.id)));
        return counts.every((count) => count === '1');
      },
      { timeoutMs: 30_000, description: '60 effects on the cluster' },
    );
    // Marked done in their slots' marker groups; the claims are gone.
    const store = new IdempotencyStore(effects);
    expect(await store.lookup(events.map((event) => event.id))).toEqual(events.map(() => true));
    for (const event of events.slice(0, 5)) {
      expect(await effects.exists(idempotencyKey(event.id))).toBe(0);
    }
    // Redelivered: duplicates.
    for (const event of events.slice(0, 5)) {
      expect(
        await producer.enqueue({ event, receivedAt: new Date().toISOString(), keyIndex: 0 }, 5000),
      ).toBe('duplicate');
    }
    expect(await effects.scard('overlaps')).toBe(0);
    await producer.close();
  });
});
