import type { Envelope } from '@groq-webhooks/core';
import { dumpKeys, startRedis, type TestRedis, waitFor } from '@groq-webhooks/testing';
import { Worker } from 'bullmq';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closeRedis, createRedis, type RedisClient } from '../connection.js';
import { jobIdFor } from '../naming.js';
import { EventProducer } from '../producer.js';
import { chooseQueuePath, type QueuePath } from '../queue-path.js';
import { type EventJobData, openQueue } from '../queues.js';

// The ingest's batch script writes jobs as BullMQ's addStandardJob Lua does, batched, instead of
// Queue.add: these tests hold it to leaving exactly the keys Queue.add leaves.

const settings = { queuePrefix: '{groq}', queueShards: 1, jobAttempts: 5, backoffBaseMs: 250 };

function data(id: string): EventJobData {
  const event: Envelope = {
    id,
    type: 'resource.created',
    data: { id: 'res_1', nested: { list: [1, 'two', null], unicode: 'é✓😀' } },
    created: '2026-11-28T10:00:00Z',
  };
  return { event, receivedAt: '2026-11-28T10:00:01.000Z', keyIndex: 1 };
}

describe('the batch enqueue script writes what Queue.add writes', () => {
  let redis: TestRedis;
  let client: RedisClient;
  let fast: QueuePath;
  const producers: EventProducer[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    client = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'admin');
    await waitFor(() => client.status === 'ready');
    ({ path: fast } = await chooseQueuePath('on', client));
  });
  afterEach(async () => {
    await Promise.all(producers.splice(0).map((p) => p.close()));
  });
  afterAll(async () => {
    if (client) await closeRedis(client);
    await redis?.cleanup();
  });

  function producerFor(queueName: string, extra: { maxBatch?: number; maxInFlight?: number } = {}) {
    const created = new EventProducer({
      client,
      settings: { ...settings, queueName },
      path: fast,
      ...extra,
    });
    producers.push(created);
    return created;
  }

  const since = Date.now();

  /**
   * Every key of a queue with its content: stream ids cut, and a job's timestamp replaced by
   * whether it is a millisecond time from this test run.
   */
  async function snapshot(queueName: string): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {};
    for (const [name, { type, value }] of Object.entries(
      await dumpKeys(client, `{groq}:${queueName}:`),
    )) {
      if (type === 'hash') {
        const hash: Record<string, unknown> = { ...(value as Record<string, string>) };
        if (hash.timestamp !== undefined) {
          const time = Number(hash.timestamp);
          hash.timestamp = time >= since && time <= Date.now() ? '<now>' : hash.timestamp;
        }
        if (typeof hash.opts === 'string') hash.opts = JSON.parse(hash.opts);
        out[name] = hash;
      } else if (type === 'zset') {
        out[name] = (value as [string, string][]).flat();
      } else {
        out[name] = value;
      }
    }
    return out;
  }

  it('for new events: job hash, options, wait list, marker, events stream and counters', async () => {
    const viaQueue = openQueue(client, { index: 0, name: 'by-queue', prefix: '{groq}' }, settings);
    for (const id of ['evt_a', 'evt:b', 'evt_c']) {
      await viaQueue.add('resource.created', data(id), { jobId: jobIdFor(id) });
    }
    await viaQueue.close();
    const producer = producerFor('by-script');
    const outcomes = await Promise.all(
      ['evt_a', 'evt:b', 'evt_c'].map((id) => producer.enqueue(data(id), 2000)),
    );
    expect(outcomes).toEqual(['enqueued', 'enqueued', 'enqueued']);

    const expected = await snapshot('by-queue');
    expect(Object.keys(expected)).toEqual(
      expect.arrayContaining([
        'evt-evt_a',
        'evt-evt%3Ab',
        'events',
        'id',
        'marker',
        'meta',
        'wait',
      ]),
    );
    expect(await snapshot('by-script')).toEqual(expected);
    const job = expected['evt-evt_a'] as Record<string, unknown>;
    expect(JSON.parse(job.data as string)).toEqual(data('evt_a'));
    expect(job.opts).toMatchObject({ attempts: 5, jobId: 'evt-evt_a' });
  });

  it('on a paused queue: the job waits without waking a worker, as with Queue.add', async () => {
    for (const name of ['paused-queue', 'paused-script']) {
      const queue = openQueue(client, { index: 0, name, prefix: '{groq}' }, settings);
      await queue.pause();
      if (name === 'paused-queue') {
        await queue.add('resource.created', data('evt_p'), { jobId: jobIdFor('evt_p') });
      } else {
        expect(await producerFor(name).enqueue(data('evt_p'), 2000)).toBe('enqueued');
      }
      await queue.close();
    }
    expect(await snapshot('paused-script')).toEqual(await snapshot('paused-queue'));
  });

  it.each([
    ['at its global concurrency: no worker is woken', 1],
    ['under its global concurrency: a worker is woken', 2],
  ] as const)('on a queue %s, as with Queue.add', async (_case, concurrency) => {
    const [byQueueName, byScriptName] = [
      `maxed-queue-${concurrency}`,
      `maxed-script-${concurrency}`,
    ];
    for (const name of [byQueueName, byScriptName]) {
      const queue = openQueue(client, { index: 0, name, prefix: '{groq}' }, settings);
      await queue.setGlobalConcurrency(concurrency);
      // One job running: the limit counts the active list.
      await client.lpush(`{groq}:${name}:active`, 'evt-running');
      if (name === byQueueName) {
        await queue.add('resource.created', data('evt_m'), { jobId: jobIdFor('evt_m') });
      } else {
        expect(await producerFor(name).enqueue(data('evt_m'), 2000)).toBe('enqueued');
      }
      await queue.close();
    }
    const [byQueue, byScript] = [await snapshot(byQueueName), await snapshot(byScriptName)];
    expect(byQueue.marker === undefined).toBe(concurrency === 1);
    expect(byScript).toEqual(byQueue);
  });

  it('a BullMQ worker runs the jobs it added with their data and options', async () => {
    const producer = producerFor('run-script');
    const ids = Array.from({ length: 20 }, (_, i) => `evt_run_${i}`);
    await Promise.all(ids.map((id) => producer.enqueue(data(id), 2000)));
    const connection = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'worker');
    const seen: { id: string; name: string; data: unknown; attempts: unknown }[] = [];
    const worker = new Worker(
      'run-script',
      async (job) => {
        seen.push({
          id: job.id ?? '',
          name: job.name,
          data: job.data,
          attempts: job.opts.attempts,
        });
      },
      { connection, prefix: '{groq}', concurrency: 5 },
    );
    try {
      await waitFor(() => seen.length === ids.length);
    } finally {
      await worker.close();
      await closeRedis(connection);
    }
    expect(seen.map((job) => job.id).sort()).toEqual(ids.map(jobIdFor).sort());
    for (const job of seen) {
      expect(job.name).toBe('resource.created');
      expect(job.attempts).toBe(5);
      expect(job.data).toEqual(data(`evt_${job.id.slice('evt-evt_'.length)}`));
    }
  });

  it('carries many events in few round trips', async () => {
    const producer = producerFor('round-trips');
    await producer.enqueue(data('evt_rt_warm'), 2000);
    const before = await commandCount(client);
    const ids = Array.from({ length: 200 }, (_, i) => `evt_rt_${i}`);
    const outcomes = await Promise.all(ids.map((id) => producer.enqueue(data(id), 5000)));
    expect(outcomes.every((outcome) => outcome === 'enqueued')).toBe(true);
    // Redis runs at least 4 commands per event (done-marker, job lookup, BullMQ's add writes
    // inside the batch script), so count client round trips through INFO instead.
    const after = await commandCount(client);
    expect(after.calls - before.calls).toBeGreaterThanOrEqual(800);
    expect(after.batches - before.batches).toBeLessThan(40);
  });

  it('one job per event when the same event is in several batches in flight at once', async () => {
    const producer = producerFor('race-script', { maxBatch: 1, maxInFlight: 8 });
    const outcomes = await Promise.all(
      Array.from({ length: 24 }, () => producer.enqueue(data('evt_race'), 2000)),
    );
    expect(outcomes.filter((outcome) => outcome === 'enqueued')).toHaveLength(1);
    expect(outcomes.filter((outcome) => outcome === 'duplicate')).toHaveLength(23);
    expect(await client.llen('{groq}:race-script:wait')).toBe(1);
  });
});

/** Commands run and client writes seen by the server: calls from INFO commandstats. */
async function commandCount(client: RedisClient): Promise<{ calls: number; batches: number }> {
  const info = (await client.info('all')) as string;
  let calls = 0;
  for (const match of info.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)) {
    if (match[1] !== 'info') calls += Number(match[2]);
  }
  const reads = /^total_reads_processed:(\d+)/m.exec(info);
  return { calls, batches: Number(reads?.[1] ?? Number.NaN) };
}
