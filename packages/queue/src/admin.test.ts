import type { Envelope } from '@groq-webhooks/core';
import { startRedis, type TestRedis, waitFor } from '@groq-webhooks/testing';
import { type Job, Worker } from 'bullmq';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FailedEvents } from './admin.js';
import { closeRedis, createRedis, type RedisClient, waitForRedis } from './connection.js';
import { jobIdFor, queueShards, shardOf } from './naming.js';
import { EventProducer } from './producer.js';
import { chooseQueuePath, STOCK_PATH } from './queue-path.js';
import type { EventJobData } from './queues.js';

// Two shards, so every lookup has to find the event's own shard.
const settings = {
  queueName: 'admin-events',
  queuePrefix: '{admin}',
  queueShards: 2,
  jobAttempts: 2,
  backoffBaseMs: 1,
};

function event(id: string, data: Record<string, unknown> = {}): Envelope {
  return { id, type: 'resource.updated', data, created: '2026-11-28T10:00:00Z' };
}

describe('FailedEvents against a real redis-server and real BullMQ workers', () => {
  let redis: TestRedis;
  let clients: RedisClient[] = [];
  let workers: Worker[] = [];
  let admin: FailedEvents;
  let producer: EventProducer;
  /** Event ids whose handler has been "fixed": they succeed from now on. */
  let fixed: Set<string>;
  /** Attempts seen by the processor, per event id. */
  let runs: Map<string, number[]>;

  function client(role: 'producer' | 'worker' | 'admin'): RedisClient {
    const created = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, role);
    clients.push(created);
    return created;
  }

  /** Real BullMQ workers, one per shard, failing events whose data says so (until fixed). */
  function startWorkers(): void {
    for (const shard of queueShards(settings)) {
      const worker = new Worker<EventJobData, void, string>(
        shard.name,
        async (job: Job<EventJobData, void, string>) => {
          const id = job.data.event.id;
          runs.set(id, [...(runs.get(id) ?? []), job.attemptsMade + 1]);
          if (job.data.event.data.fail === true && !fixed.has(id)) {
            throw new Error(`boom ${id} attempt ${job.attemptsMade + 1}`);
          }
        },
        {
          connection: client('worker'),
          prefix: shard.prefix,
          settings: { backoffStrategy: () => 1 },
        },
      );
      worker.on('error', () => {});
      workers.push(worker);
    }
  }

  async function stopWorkers(): Promise<void> {
    await Promise.all(workers.splice(0).map((worker) => worker.close()));
  }

  async function send(id: string, data: Record<string, unknown> = {}): Promise<void> {
    const outcome = await producer.enqueue(
      { event: event(id, data), receivedAt: new Date().toISOString(), keyIndex: 0 },
      2000,
    );
    expect(outcome).toBe('enqueued');
  }

  async function failedCount(): Promise<number> {
    return (await admin.stats()).counts.failed;
  }

  beforeAll(async () => {
    redis = await startRedis();
  });
  beforeEach(async () => {
    await redis.command('FLUSHALL');
    fixed = new Set();
    runs = new Map();
    const adminClient = client('admin');
    expect(await waitForRedis(adminClient, 5000)).toBe(true);
    admin = new FailedEvents({ client: adminClient, settings });
    const producerClient = client('producer');
    await waitForRedis(producerClient, 5000);
    producer = new EventProducer({ client: producerClient, settings, path: STOCK_PATH });
  });
  afterEach(async () => {
    await stopWorkers();
    await producer.close();
    await admin.close();
    await Promise.all(clients.map((c) => closeRedis(c)));
    clients = [];
    workers = [];
  });
  afterAll(async () => redis?.cleanup());

  it('lists failed events over all shards with type, attempts, last error and time', async () => {
    const ids = ['evt_a', 'evt_b', 'evt_c', 'evt_d', 'evt:e'];
    // The ids land on both shards, or the test proves nothing about shards.
    expect(new Set(ids.map((id) => shardOf(id, 2))).size).toBe(2);
    startWorkers();
    for (const id of ids) await send(id, { fail: true });
    await send('evt_ok');
    await waitFor(async () => (await failedCount()) === ids.length, { timeoutMs: 15_000 });
    await waitFor(async () => (await admin.stats()).counts.completed === 1);

    const listed = await admin.list({ limit: 100 });
    expect(listed.total).toBe(5);
    expect(listed.events.map((e) => e.eventId).sort()).toEqual([...ids].sort());
    const e = listed.events.find((item) => item.eventId === 'evt:e');
    expect(e).toMatchObject({
      type: 'resource.updated',
      attempts: 2,
      lastError: 'boom evt:e attempt 2',
      shard: shardOf('evt:e', 2),
    });
    expect(Date.parse(e?.failedAt ?? '')).toBeGreaterThan(Date.now() - 60_000);
    // Newest first.
    const times = listed.events.map((item) => item.failedAt ?? '');
    expect([...times].sort().reverse()).toEqual(times);

    const limited = await admin.list({ limit: 2 });
    expect(limited.total).toBe(5);
    expect(limited.events).toHaveLength(2);
    expect(limited.events).toEqual(listed.events.slice(0, 2));
  });

  it('shows the payload and every attempt error with its stack; undefined when unknown', async () => {
    startWorkers();
    await send('evt_show', { fail: true, resource: 'r-42' });
    await waitFor(async () => (await admin.show('evt_show'))?.state === 'failed', {
      timeoutMs: 15_000,
    });
    const detail = await admin.show('evt_show');
    expect(detail?.payload).toEqual(event('evt_show', { fail: true, resource: 'r-42' }));
    expect(detail?.attempts).toBe(2);
    expect(detail?.maxAttempts).toBe(2);
    expect(detail?.failures.map((f) => f.error)).toEqual([
      'Error: boom evt_show attempt 1',
      'Error: boom evt_show attempt 2',
    ]);
    for (const failure of detail?.failures ?? []) expect(failure.stack).toMatch(/\n\s+at /);
    expect(await admin.show('evt_nope')).toBeUndefined();
  });

  it('shows a failed event nested too deeply to serialise without its payload, naming why', async () => {
    startWorkers();
    // Stored as text, as the ingest stores a body: 100,000 levels, far past what JSON.stringify
    // survives. The worker parses it fine (JSON.parse does not recurse) and fails it.
    const deepId = 'evt_deep';
    const levels = 100_000;
    const eventJson = `{"id":"${deepId}","type":"resource.updated","data":{"fail":true,"deep":${'['.repeat(levels)}${']'.repeat(levels)}},"created":"2026-11-28T10:00:00Z"}`;
    const stand = event(deepId, { fail: true });
    // The fast path stores the body's text as given, as the ingest does.
    const { path: fast } = await chooseQueuePath('on', { isCluster: false });
    const textClient = client('producer');
    await waitForRedis(textClient, 5000);
    const textProducer = new EventProducer({ client: textClient, settings, path: fast });
    expect(
      await textProducer.enqueue(
        { event: stand, receivedAt: new Date().toISOString(), keyIndex: 0 },
        2000,
        eventJson,
      ),
    ).toBe('enqueued');
    await textProducer.close();
    const nested: Record<string, unknown> = { fail: true };
    let cursor = nested;
    for (let i = 0; i < 60; i++) {
      const inner: Record<string, unknown> = {};
      cursor.next = inner;
      cursor = inner;
    }
    await send('evt_sixty', nested);
    await waitFor(async () => (await failedCount()) === 2, { timeoutMs: 15_000 });

    const list = await admin.list({ limit: 10 });
    expect(list.events.map((e) => e.eventId).sort()).toEqual(['evt_deep', 'evt_sixty']);
    const deep = await admin.show(deepId);
    expect(deep).toMatchObject({
      eventId: deepId,
      state: 'failed',
      payload: null,
      payloadProblem: 'payload nested more than 1000 levels deep: too deep to show',
      lastError: `boom ${deepId} attempt 2`,
    });
    expect(() => JSON.stringify(deep)).not.toThrow();
    const sixty = await admin.show('evt_sixty');
    expect(sixty?.payload?.data).toEqual(nested);
    expect(sixty?.payloadProblem).toBeUndefined();
  });

  it('retries a failed event with a fresh attempt budget, and it runs again', async () => {
    startWorkers();
    await send('evt_retry', { fail: true });
    await waitFor(async () => (await admin.show('evt_retry'))?.state === 'failed', {
      timeoutMs: 15_000,
    });
    await stopWorkers();
    expect(await admin.retry('evt_retry')).toBe('ok');
    const waiting = await admin.show('evt_retry');
    expect(waiting?.state).toBe('waiting');
    expect(waiting?.attempts).toBe(0);
    expect(waiting?.attemptsStarted).toBe(0);
    // Still failing: it gets the whole budget again (attempts 1 and 2, not 3).
    startWorkers();
    await waitFor(async () => (await admin.show('evt_retry'))?.state === 'failed', {
      timeoutMs: 15_000,
    });
    expect(runs.get('evt_retry')).toEqual([1, 2, 1, 2]);
    // Fixed: a retry completes it.
    fixed.add('evt_retry');
    expect(await admin.retry('evt_retry')).toBe('ok');
    await waitFor(async () => (await admin.show('evt_retry'))?.state === 'completed', {
      timeoutMs: 15_000,
    });
    expect(runs.get('evt_retry')).toEqual([1, 2, 1, 2, 1]);
    expect(await admin.retry('evt_retry')).toBe('not_failed');
    expect(await admin.retry('evt_unknown')).toBe('not_found');
  });

  it('removes a failed event and leaves other states alone', async () => {
    startWorkers();
    await send('evt_remove', { fail: true });
    await send('evt_done');
    await waitFor(async () => (await admin.show('evt_remove'))?.state === 'failed', {
      timeoutMs: 15_000,
    });
    await waitFor(async () => (await admin.show('evt_done'))?.state === 'completed');
    expect(await admin.remove('evt_remove')).toBe('ok');
    expect(await admin.show('evt_remove')).toBeUndefined();
    expect((await admin.list({ limit: 10 })).total).toBe(0);
    expect(await admin.remove('evt_remove')).toBe('not_found');
    expect(await admin.remove('evt_done')).toBe('not_failed');
    expect((await admin.show('evt_done'))?.state).toBe('completed');
  });

  it('retries all and removes all failed events, reporting progress', async () => {
    startWorkers();
    const ids = Array.from({ length: 12 }, (_, i) => `evt_bulk_${i}`);
    for (const id of ids) await send(id, { fail: true });
    await waitFor(async () => (await failedCount()) === 12, { timeoutMs: 20_000 });
    await stopWorkers();

    const progress: [number, number][] = [];
    const retried = await admin.retryAll((done, total) => progress.push([done, total]));
    expect(retried).toEqual({ total: 12, done: 12, skipped: 0 });
    expect(progress[0]).toEqual([0, 12]);
    expect(progress.at(-1)).toEqual([12, 12]);
    const afterRetry = await admin.stats();
    expect(afterRetry.counts.failed).toBe(0);
    expect(afterRetry.counts.waiting).toBe(12);
    expect((await admin.show('evt_bulk_3'))?.attempts).toBe(0);

    startWorkers();
    await waitFor(async () => (await failedCount()) === 12, { timeoutMs: 20_000 });
    await stopWorkers();
    const removed = await admin.removeAll();
    expect(removed).toEqual({ total: 12, done: 12, skipped: 0 });
    const afterRemove = await admin.stats();
    expect(afterRemove.counts.failed).toBe(0);
    expect(await admin.show('evt_bulk_3')).toBeUndefined();
    expect(await admin.retryAll()).toEqual({ total: 0, done: 0, skipped: 0 });
  });

  it('counts jobs per state over all shards and the oldest waiting age', async () => {
    const adminClient = client('admin');
    await waitForRedis(adminClient, 5000);
    let now = Date.now();
    const clocked = new FailedEvents({ client: adminClient, settings, now: () => now });
    try {
      const empty = await clocked.stats();
      expect(empty.oldestWaitingSeconds).toBeNull();
      expect(empty.counts).toEqual({
        waiting: 0,
        active: 0,
        delayed: 0,
        prioritized: 0,
        'waiting-children': 0,
        completed: 0,
        failed: 0,
      });
      // Created at known times, oldest added first: in a BullMQ wait list it sits at the tail,
      // so reading the wrong end would report a younger job.
      const base = Date.now();
      const ids = ['evt_w1', 'evt_w2', 'evt_w3', 'evt_w4', 'evt_w5'];
      const ages = [100, 40, 30, 20, 10];
      const sameShard = ids.filter((id) => shardOf(id, 2) === shardOf('evt_w1', 2));
      expect(sameShard.length).toBeGreaterThan(1);
      for (const [i, id] of ids.entries()) {
        const queue = clocked.queues[shardOf(id, 2)];
        await queue?.add(
          'resource.updated',
          { event: event(id), receivedAt: new Date().toISOString(), keyIndex: 0 },
          { jobId: jobIdFor(id), timestamp: base - (ages[i] ?? 0) * 1000 },
        );
      }
      now = base;
      const stats = await clocked.stats();
      expect(stats.counts.waiting).toBe(5);
      expect(stats.shards.map((s) => s.counts.waiting).reduce((a, b) => a + b)).toBe(5);
      expect(stats.shards.map((s) => s.name)).toEqual(['admin-events-0', 'admin-events-1']);
      expect(stats.oldestWaitingSeconds).toBe(100);
      expect(stats.pausedShards).toEqual([]);
      await clocked.queues[1]?.pause();
      const paused = await clocked.stats();
      expect(paused.pausedShards).toEqual([1]);
      expect(paused.shards.map((s) => s.paused)).toEqual([false, true]);
      await clocked.queues[1]?.resume();

      startWorkers();
      await send('evt_f', { fail: true });
      await waitFor(async () => {
        const c = (await clocked.stats()).counts;
        return c.completed === 5 && c.failed === 1 && c.waiting === 0 && c.active === 0;
      });
      expect((await clocked.stats()).oldestWaitingSeconds).toBeNull();
    } finally {
      await clocked.close();
    }
  });

  it('reports an unreachable Redis as not ready within the deadline', async () => {
    const dead = createRedis(
      { redisUrl: 'redis://127.0.0.1:1', redisClusterNodes: undefined },
      'admin',
    );
    clients.push(dead);
    const started = Date.now();
    expect(await waitForRedis(dead, 300)).toBe(false);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
