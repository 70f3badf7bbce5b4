import { startRedis, type TestRedis, testQueuePath, waitFor } from '@groq-webhooks/testing';
import { type Job, Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeRedis, createRedis, type RedisClient, waitForRedis } from './connection.js';
import { COMPLETED_RETENTION, jobOptions } from './job-options.js';
import { EventProducer } from './producer.js';
import { chooseQueuePath } from './queue-path.js';
import { type EventJobData, openQueue } from './queues.js';

const base = { jobAttempts: 3, backoffBaseMs: 10 };

describe('completed-job retention', () => {
  it('defaults to an hour and 10,000 jobs, and takes the configured values', () => {
    expect(jobOptions(base).removeOnComplete).toEqual({ age: 3600, count: 10_000 });
    expect(COMPLETED_RETENTION).toEqual({ age: 3600, count: 10_000 });
    expect(
      jobOptions({ ...base, completedRetentionSeconds: 60, completedRetentionCount: 0 })
        .removeOnComplete,
    ).toEqual({ age: 60, count: 0 });
  });

  it('keeps no completed job when the event history holds them, unless a count is set', () => {
    const history = { ...base, archiveDatabaseUrl: 'postgres://history' };
    expect(jobOptions(history).removeOnComplete).toEqual({ age: 3600, count: 0 });
    expect(jobOptions({ ...history, completedRetentionCount: 500 }).removeOnComplete).toEqual({
      age: 3600,
      count: 500,
    });
  });

  describe('against a real redis-server and a real BullMQ worker', () => {
    let redis: TestRedis;
    const clients: RedisClient[] = [];

    beforeAll(async () => {
      redis = await startRedis();
    });
    afterAll(async () => {
      await Promise.all(clients.map((client) => closeRedis(client)));
      await redis?.cleanup();
    });

    it('keeps at most COMPLETED_RETENTION_COUNT completed jobs, set by the producer', async () => {
      const client = (role: 'producer' | 'worker' | 'admin') => {
        const made = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, role);
        clients.push(made);
        return made;
      };
      const settings = {
        queueName: 'retention',
        queuePrefix: '{retention}',
        queueShards: 1,
        ...base,
        completedRetentionCount: 2,
      };
      const producerClient = client('producer');
      await waitForRedis(producerClient, 5000);
      const { path } = await chooseQueuePath(testQueuePath(), { isCluster: false });
      const producer = new EventProducer({ client: producerClient, settings, path });
      for (let i = 0; i < 5; i++) {
        const event = { id: `evt_${i}`, type: 'resource.created', data: {}, created: 'x' };
        await producer.enqueue({ event, receivedAt: 'x', keyIndex: 0 }, 2000);
      }
      await producer.close();
      let done = 0;
      const worker = new Worker<EventJobData, void, string>(
        'retention',
        async (_job: Job<EventJobData, void, string>) => {
          done += 1;
        },
        { connection: client('worker'), prefix: '{retention}' },
      );
      worker.on('error', () => {});
      const queue = openQueue(
        client('admin'),
        { index: 0, name: 'retention', prefix: '{retention}' },
        settings,
      );
      await waitFor(async () => done === 5 && (await queue.getWaitingCount()) === 0);
      await waitFor(async () => (await queue.getActiveCount()) === 0);
      await worker.close();
      expect(await queue.getCompletedCount()).toBe(2);
      await queue.close();
    });
  });
});
