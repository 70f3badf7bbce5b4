import type { Envelope } from '@groq-webhooks/core';
import { startRedis, type TestRedis, waitFor } from '@groq-webhooks/testing';
import { UnrecoverableError, Worker } from 'bullmq';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closeRedis, createRedis, type RedisClient } from './connection.js';
import { IdempotencyStore } from './idempotency.js';
import { jobIdFor } from './naming.js';
import { EventProducer, QueueUnavailableError } from './producer.js';
import { openQueue } from './queues.js';

const settings = {
  queueName: 'groq-events',
  queuePrefix: '{groq}',
  queueShards: 1,
  jobAttempts: 3,
  backoffBaseMs: 1000,
};

function event(id: string): Envelope {
  return { id, type: 'resource.created', data: { id: 'r1' }, created: '2026-11-28T10:00:00Z' };
}

describe('EventProducer against a real redis-server', () => {
  let redis: TestRedis;
  const clients: RedisClient[] = [];
  const producers: EventProducer[] = [];

  function producer(): { producer: EventProducer; client: RedisClient } {
    const client = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'producer');
    clients.push(client);
    const created = new EventProducer({ client, settings });
    producers.push(created);
    return { producer: created, client };
  }

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterEach(async () => {
    await Promise.all(producers.splice(0).map((p) => p.close()));
    await Promise.all(clients.splice(0).map((c) => closeRedis(c)));
  });
  afterAll(async () => redis.cleanup());

  it('enqueues a job named after the event type with a derived id, once', async () => {
    const { producer: p, client } = producer();
    await waitFor(() => client.status === 'ready');
    const data = { event: event('evt:1'), receivedAt: new Date().toISOString(), keyIndex: 0 };
    expect(await p.enqueue(data, 2000)).toBe('enqueued');
    expect(await p.enqueue(data, 2000)).toBe('duplicate');
    const queue = openQueue(client, { index: 0, name: 'groq-events', prefix: '{groq}' }, settings);
    const job = await queue.getJob(jobIdFor('evt:1'));
    expect(job?.name).toBe('resource.created');
    expect(job?.data).toEqual(data);
    expect(job?.opts.attempts).toBe(3);
    expect(await queue.getWaitingCount()).toBe(1);
    await queue.close();
  });

  it('answers duplicate for an event already marked done, enqueuing nothing', async () => {
    const { producer: p, client } = producer();
    await waitFor(() => client.status === 'ready');
    await new IdempotencyStore(client).markDone('evt_done', 60);
    const data = { event: event('evt_done'), receivedAt: new Date().toISOString(), keyIndex: 0 };
    expect(await p.enqueue(data, 2000)).toBe('duplicate');
    expect(await client.exists(`{groq}:groq-events:${jobIdFor('evt_done')}`)).toBe(0);
  });

  it('fails fast while Redis is down and works again once it is back, without a new producer', async () => {
    const { producer: p, client } = producer();
    await waitFor(() => client.status === 'ready');
    await redis.kill();
    await waitFor(() => client.status !== 'ready');
    const data = { event: event('evt_outage'), receivedAt: new Date().toISOString(), keyIndex: 0 };
    const started = Date.now();
    await expect(p.enqueue(data, 2000)).rejects.toBeInstanceOf(QueueUnavailableError);
    expect(Date.now() - started).toBeLessThan(2500);
    redis = await redis.restart();
    await waitFor(() => client.status === 'ready', { timeoutMs: 10_000 });
    expect(await p.enqueue(data, 2000)).toBe('enqueued');
  });

  it('starts before Redis exists and becomes usable when it appears', async () => {
    const port = redis.port;
    await redis.kill();
    const { producer: p, client } = producer();
    const data = { event: event('evt_late'), receivedAt: new Date().toISOString(), keyIndex: 0 };
    await expect(p.enqueue(data, 500)).rejects.toBeInstanceOf(QueueUnavailableError);
    redis = await startRedis({ port, dir: redis.dir });
    await waitFor(() => client.status === 'ready', { timeoutMs: 10_000 });
    expect(await p.enqueue(data, 2000)).toBe('enqueued');
  });

  it('puts a permanently failed job back with a fresh attempt budget', async () => {
    const { producer: p, client } = producer();
    await waitFor(() => client.status === 'ready');
    const data = { event: event('evt_failed'), receivedAt: new Date().toISOString(), keyIndex: 0 };
    expect(await p.enqueue(data, 2000)).toBe('enqueued');
    const queue = openQueue(client, { index: 0, name: 'groq-events', prefix: '{groq}' }, settings);
    // Fail it for good with a real BullMQ worker.
    const connection = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'worker');
    clients.push(connection);
    const worker = new Worker(
      'groq-events',
      async () => {
        throw new UnrecoverableError('boom');
      },
      { connection, prefix: '{groq}' },
    );
    await waitFor(
      async () => (await queue.getJob(jobIdFor('evt_failed')))?.finishedOn !== undefined,
    );
    await worker.close();
    const job = await queue.getJob(jobIdFor('evt_failed'));
    expect(await job?.getState()).toBe('failed');
    expect(job?.attemptsMade).toBe(1);
    expect(await p.enqueue(data, 2000)).toBe('requeued');
    const again = await queue.getJob(jobIdFor('evt_failed'));
    expect(await again?.getState()).toBe('waiting');
    expect(again?.attemptsMade).toBe(0);
    await queue.close();
  });
});
