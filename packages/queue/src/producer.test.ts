import type { Envelope } from '@groq-webhooks/core';
import { startRedis, type TestRedis, waitFor } from '@groq-webhooks/testing';
import { UnrecoverableError, Worker } from 'bullmq';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closeRedis, createRedis, type RedisClient } from './connection.js';
import { DONE, IdempotencyStore, PROCESSING } from './idempotency.js';
import { idempotencyKey, jobIdFor } from './naming.js';
import { EventProducer, QueueUnavailableError } from './producer.js';
import { chooseQueuePath, type QueuePath, STOCK_PATH } from './queue-path.js';
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

// Both paths keep the same contract: every test runs on the stock and on the fast path.
describe.each(['stock', 'fast'] as const)(
  'EventProducer (%s path) against a real redis-server',
  (kind) => {
    let redis: TestRedis;
    let path: QueuePath;
    const clients: RedisClient[] = [];
    const producers: EventProducer[] = [];

    function producer(): { producer: EventProducer; client: RedisClient } {
      const client = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'producer');
      clients.push(client);
      const created = new EventProducer({ client, settings, path });
      producers.push(created);
      return { producer: created, client };
    }

    beforeAll(async () => {
      redis = await startRedis();
      path =
        kind === 'stock' ? STOCK_PATH : (await chooseQueuePath('on', { isCluster: false })).path;
      expect(path.kind).toBe(kind);
    });
    afterEach(async () => {
      await Promise.all(producers.splice(0).map((p) => p.close()));
      await Promise.all(clients.splice(0).map((c) => closeRedis(c)));
    });
    afterAll(async () => redis?.cleanup());

    it('enqueues a job named after the event type with a derived id, once', async () => {
      const { producer: p, client } = producer();
      await waitFor(() => client.status === 'ready');
      const data = { event: event('evt:1'), receivedAt: new Date().toISOString(), keyIndex: 0 };
      expect(await p.enqueue(data, 2000)).toBe('enqueued');
      expect(await p.enqueue(data, 2000)).toBe('duplicate');
      const queue = openQueue(
        client,
        { index: 0, name: 'groq-events', prefix: '{groq}' },
        settings,
      );
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
      const data = {
        event: event('evt_outage'),
        receivedAt: new Date().toISOString(),
        keyIndex: 0,
      };
      const started = Date.now();
      await expect(p.enqueue(data, 2000)).rejects.toBeInstanceOf(QueueUnavailableError);
      expect(Date.now() - started).toBeLessThan(2500);
      redis = await redis.restart();
      await waitFor(() => client.status === 'ready', { timeoutMs: 10_000 });
      expect(await p.enqueue(data, 2000)).toBe('enqueued');
    });

    it('starts before Redis exists and becomes usable when it appears', async () => {
      await redis.kill();
      const { producer: p, client } = producer();
      const data = { event: event('evt_late'), receivedAt: new Date().toISOString(), keyIndex: 0 };
      await expect(p.enqueue(data, 500)).rejects.toBeInstanceOf(QueueUnavailableError);
      redis = await redis.restart();
      await waitFor(() => client.status === 'ready', { timeoutMs: 10_000 });
      expect(await p.enqueue(data, 2000)).toBe('enqueued');
    });

    it('puts a permanently failed job back with a fresh attempt budget', async () => {
      const { producer: p, client } = producer();
      await waitFor(() => client.status === 'ready');
      const data = {
        event: event('evt_failed'),
        receivedAt: new Date().toISOString(),
        keyIndex: 0,
      };
      expect(await p.enqueue(data, 2000)).toBe('enqueued');
      const queue = openQueue(
        client,
        { index: 0, name: 'groq-events', prefix: '{groq}' },
        settings,
      );
      // Fail it for good with a real BullMQ worker.
      const connection = createRedis(
        { redisUrl: redis.url, redisClusterNodes: undefined },
        'worker',
      );
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

    describe('coalescing concurrent enqueues', () => {
      function data(id: string, receivedAt = new Date().toISOString()) {
        return { event: event(id), receivedAt, keyIndex: 0 };
      }

      it('looks every event up in one batch: done, claimed without a job, queued, failed, new', async () => {
        const { producer: p, client } = producer();
        await waitFor(() => client.status === 'ready');
        const queue = openQueue(
          client,
          { index: 0, name: 'groq-events', prefix: '{groq}' },
          settings,
        );
        await client.set(idempotencyKey('evt_done'), DONE);
        // A claim whose job is gone (removed by an operator): the event is not known to be handled.
        await client.set(idempotencyKey('evt_claimed'), `${PROCESSING}tok`);
        await queue.add('resource.created', data('evt_queued'), { jobId: jobIdFor('evt_queued') });
        await queue.add('resource.created', data('evt_failed'), { jobId: jobIdFor('evt_failed') });
        await client.zadd('{groq}:groq-events:failed', Date.now(), jobIdFor('evt_failed'));
        await queue.close();
        const ids = ['evt_done', 'evt_claimed', 'evt_queued', 'evt_failed', 'evt_new'];
        const outcomes = await Promise.all(ids.map((id) => p.enqueue(data(id), 2000)));
        expect(outcomes).toEqual(['duplicate', 'enqueued', 'duplicate', 'requeued', 'enqueued']);
        expect(await client.exists(`{groq}:groq-events:${jobIdFor('evt_done')}`)).toBe(0);
      });

      it('answers many concurrent enqueues with duplicates among them: one job per id, exact outcomes', async () => {
        const { producer: p, client } = producer();
        await waitFor(() => client.status === 'ready');
        await new IdempotencyStore(client).markDone('evt_c_done', 60);
        expect(await p.enqueue(data('evt_c_known'), 2000)).toBe('enqueued');
        const queue = openQueue(
          client,
          { index: 0, name: 'groq-events', prefix: '{groq}' },
          settings,
        );
        const waitingBefore = await queue.getWaitingCount();
        const ids = Array.from({ length: 300 }, (_, i) => `evt_c_${i % 100}`);
        ids.push('evt_c_done', 'evt_c_known');
        const outcomes = await Promise.all(ids.map((id) => p.enqueue(data(id), 5000)));
        const byId = new Map<string, string[]>();
        ids.forEach((id, index) => {
          byId.set(id, [...(byId.get(id) ?? []), outcomes[index] as string]);
        });
        for (let i = 0; i < 100; i++) {
          const seen = byId.get(`evt_c_${i}`)?.sort();
          expect(seen).toEqual(['duplicate', 'duplicate', 'enqueued']);
        }
        expect(byId.get('evt_c_done')).toEqual(['duplicate']);
        expect(byId.get('evt_c_known')).toEqual(['duplicate']);
        expect(await queue.getWaitingCount()).toBe(waitingBefore + 100);
        expect(await client.exists(`{groq}:groq-events:${jobIdFor('evt_c_done')}`)).toBe(0);
        const job = await queue.getJob(jobIdFor('evt_c_42'));
        expect(job?.data.event.id).toBe('evt_c_42');
        await queue.close();
      });

      it('answers 503 to the calls whose deadline passes mid-batch and 200 to the others', async () => {
        const { producer: p, client } = producer();
        await waitFor(() => client.status === 'ready');
        await p.enqueue(data('evt_dl_warm'), 2000);
        // Every command waits while Redis is paused: the batch is in flight the whole time.
        await redis.command('CLIENT', 'PAUSE', '700', 'ALL');
        const short = ['evt_dl_1', 'evt_dl_2', 'evt_dl_3'].map((id) => p.enqueue(data(id), 200));
        const long = ['evt_dl_4', 'evt_dl_5', 'evt_dl_6'].map((id) => p.enqueue(data(id), 5000));
        const settled = await Promise.allSettled([...short, ...long]);
        for (const result of settled.slice(0, 3)) {
          expect(result.status).toBe('rejected');
          expect((result as PromiseRejectedResult).reason).toBeInstanceOf(QueueUnavailableError);
        }
        expect(settled.slice(3).map((result) => result.status)).toEqual([
          'fulfilled',
          'fulfilled',
          'fulfilled',
        ]);
        for (const id of ['evt_dl_4', 'evt_dl_5', 'evt_dl_6']) {
          expect(await client.exists(`{groq}:groq-events:${jobIdFor(id)}`)).toBe(1);
        }
        // A 503 is safe to retry: the retry finds the job (or adds it) and answers 200.
        expect(['enqueued', 'duplicate']).toContain(await p.enqueue(data('evt_dl_1'), 2000));
      });

      it('rejects every waiting call when Redis dies mid-batch; none hangs until its deadline', async () => {
        const { producer: p, client } = producer();
        await waitFor(() => client.status === 'ready');
        await p.enqueue(data('evt_kill_warm'), 2000);
        await redis.command('CLIENT', 'PAUSE', '5000', 'ALL');
        const started = Date.now();
        const calls = Array.from({ length: 50 }, (_, i) =>
          p.enqueue(data(`evt_kill_${i}`), 30_000),
        );
        const settled = Promise.allSettled(calls);
        await redis.kill();
        const results = await settled;
        expect(Date.now() - started).toBeLessThan(10_000);
        for (const result of results) {
          expect(result.status).toBe('rejected');
          expect((result as PromiseRejectedResult).reason).toBeInstanceOf(QueueUnavailableError);
        }
        redis = await redis.restart();
        await waitFor(() => client.status === 'ready', { timeoutMs: 10_000 });
        expect(await p.enqueue(data('evt_kill_after'), 2000)).toBe('enqueued');
      });

      it('rejects calls still waiting for their batch when the producer closes', async () => {
        const { producer: p, client } = producer();
        await waitFor(() => client.status === 'ready');
        const pending = p.enqueue(data('evt_closed'), 5000);
        await p.close();
        await expect(pending).rejects.toBeInstanceOf(QueueUnavailableError);
        await expect(p.enqueue(data('evt_closed_2'), 5000)).rejects.toBeInstanceOf(
          QueueUnavailableError,
        );
      });
    });
  },
);
