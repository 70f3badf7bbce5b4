import type { Envelope } from '@groq-webhooks/core';
import { startRedis, type TestRedis, waitFor } from '@groq-webhooks/testing';
import { type Job, Worker } from 'bullmq';
import { Packr } from 'msgpackr';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closeRedis, createRedis, type RedisClient } from './connection.js';
import { claimedAtFetch, JobFinisher, optionsAsJson } from './finish-script.js';
import { backoffDelay } from './job-options.js';
import { idempotencyKey, jobIdFor } from './naming.js';
import { type EventJobData, openQueue } from './queues.js';

// The worker's finish script folds the claim of the next job and the done-marker of the
// finished one into BullMQ's moveToFinished. These tests hold it to BullMQ's own behaviour
// for everything else, and to the two writes it adds.

const settings = { queuePrefix: '{groq}', queueShards: 1, jobAttempts: 3, backoffBaseMs: 250 };
const TTL_SECONDS = 3600;
/** MessagePack as BullMQ packs its script options. */
const bullmqPackr = new Packr({ useRecords: false, encodeUndefinedAsNil: true });
const LOCK_MS = 20_000;

function data(id: string): EventJobData {
  const event: Envelope = { id, type: 'resource.created', data: { id: 'res_1' }, created: 'x' };
  return { event, receivedAt: '2026-11-28T10:00:01.000Z', keyIndex: 0 };
}

describe('JobFinisher', { timeout: 30_000 }, () => {
  let redis: TestRedis;
  let client: RedisClient;
  const cleanups: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    client = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'admin');
    await waitFor(() => client.status === 'ready');
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  afterAll(async () => {
    await closeRedis(client);
    await redis.cleanup();
  });

  async function fill(queueName: string, ids: string[]): Promise<void> {
    const queue = openQueue(client, { index: 0, name: queueName, prefix: '{groq}' }, settings);
    await queue.addBulk(
      ids.map((id) => ({
        name: 'resource.created',
        data: data(id),
        opts: { jobId: jobIdFor(id) },
      })),
    );
    await queue.close();
  }

  /** Runs a worker (with a finisher unless `plain`) whose processor is `process`. */
  async function run(
    queueName: string,
    process: (job: Job<EventJobData>, token: string, finisher: JobFinisher) => Promise<void>,
    options: { plain?: boolean; concurrency?: number; packedOptions?: boolean } = {},
  ) {
    const connection = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'worker');
    const finisher = new JobFinisher({ doneTtlSeconds: TTL_SECONDS });
    const worker = new Worker<EventJobData>(
      queueName,
      (job, token) => process(job, token ?? '', finisher),
      {
        connection,
        prefix: '{groq}',
        autorun: false,
        name: 'test-worker',
        concurrency: options.concurrency ?? 1,
        lockDuration: LOCK_MS,
        settings: { backoffStrategy: (attemptsMade: number) => backoffDelay(attemptsMade, 50) },
      },
    );
    await worker.waitUntilReady();
    if (options.plain !== true) finisher.install(connection);
    if (options.packedOptions === true) {
      // Sends the options the way BullMQ packed them: the script's MessagePack branch.
      const target = connection as unknown as Record<string, (args: unknown[]) => unknown>;
      const finish = target.groqFinishJob?.bind(connection);
      target.groqFinishJob = (args: unknown[]) => {
        const json = args[14 + 7];
        expect(typeof json).toBe('string');
        return finish?.(
          args.map((arg, i) => (i === 21 ? bullmqPackr.pack(JSON.parse(String(json))) : arg)),
        );
      };
    }
    void worker.run();
    cleanups.push(async () => {
      await worker.close();
      await closeRedis(connection);
    });
    return { worker, finisher };
  }

  /** A finished queue's keys with times left out: what BullMQ wrote. */
  async function snapshot(queueName: string): Promise<Record<string, unknown>> {
    const prefix = `{groq}:${queueName}:`;
    const out: Record<string, unknown> = {};
    for (const key of (await client.keys(`${prefix}*`)).sort()) {
      const name = key.slice(prefix.length);
      const type = await client.type(key);
      if (type === 'hash') {
        const { timestamp, processedOn, finishedOn, ...rest } = await client.hgetall(key);
        out[name] = { ...rest, times: [timestamp, processedOn, finishedOn].map(Boolean) };
      } else if (type === 'list') {
        out[name] = await client.lrange(key, 0, -1);
      } else if (type === 'zset') {
        out[name] = (await client.zrange(key, '0', '-1')).sort();
      } else if (type === 'stream') {
        const entries = await client.xrange(key, '-', '+');
        out[name] = entries.map(([, fields]) => fields.map(time)).sort();
      } else {
        out[name] = time((await client.get(key)) ?? '');
      }
    }
    return out;
  }

  /** A millisecond time (a delay's due time, the stall checker's guard) made comparable. */
  function time(value: string): string {
    return /^1\d{12}$/.test(value) ? '<time>' : value;
  }

  it('finishes jobs exactly as BullMQ does, and marks done only the events it was told to', async () => {
    const ids = Array.from({ length: 12 }, (_, i) => `evt_same_${i}`);
    let seen = 0;
    for (const [queueName, plain, packedOptions] of [
      ['finish-plain', true, false],
      ['finish-fused', false, false],
      ['finish-packed', false, true],
    ] as const) {
      await fill(queueName, ids);
      await client.del(...ids.map(idempotencyKey));
      await run(
        queueName,
        async (job, _token, finisher) => {
          seen += 1;
          const index = Number(job.data.event.id.split('_').at(-1));
          if (!plain && index % 2 === 0) finisher.markDoneOnFinish(job.id ?? '', job.data.event.id);
          if (index === 5 && job.attemptsMade === 0) throw new Error('fails once');
        },
        { plain, packedOptions },
      );
      const queue = openQueue(client, { index: 0, name: queueName, prefix: '{groq}' }, settings);
      cleanups.push(() => queue.close());
      await waitFor(async () => (await queue.getCompletedCount()) === 12, { timeoutMs: 15_000 });
    }
    expect(seen).toBe(39);
    expect(await snapshot('finish-fused')).toEqual(await snapshot('finish-plain'));
    expect(await snapshot('finish-packed')).toEqual(await snapshot('finish-plain'));
    for (const [i, id] of ids.entries()) {
      const marker = await client.get(idempotencyKey(id));
      // Events the plain run left no record of; odd ones the fused run claimed at fetch only.
      if (i % 2 === 0) {
        expect(marker).toBe('done');
        expect(await client.ttl(idempotencyKey(id))).toBeGreaterThan(TTL_SECONDS - 60);
      } else {
        expect(marker === null || marker.startsWith('processing:')).toBe(true);
      }
    }
  });

  it('claims the next job’s event for the slot’s lock token when it fetches it', async () => {
    // Ids that need escaping in job ids, one already done, one claimed by another worker.
    const ids = ['evt_first', 'evt:colon', 'evt%percent', 'evt_done', 'evt_busy', 'evt_last'];
    await client.set(idempotencyKey('evt_done'), 'done');
    await client.set(idempotencyKey('evt_busy'), 'processing:someone-else');
    await fill('claims', ids);
    // Then a job whose data is an empty object: it keeps it (its claim is then found the usual way).
    const queue = openQueue(client, { index: 0, name: 'claims', prefix: '{groq}' }, settings);
    cleanups.push(() => queue.close());
    await queue.add('resource.created', {} as EventJobData, { jobId: jobIdFor('evt_empty') });
    let emptyData: unknown;
    const views: { id: string; claimed: boolean; record: string | null; pttl: number }[] = [];
    await run('claims', async (job, token) => {
      if (job.id === jobIdFor('evt_empty')) {
        emptyData = job.data;
        return;
      }
      const id = job.data.event.id;
      views.push({
        id,
        claimed: claimedAtFetch(job.data, token),
        record: await client.get(idempotencyKey(id)),
        pttl: await client.pttl(idempotencyKey(id)),
      });
      if (claimedAtFetch(job.data, token)) {
        expect(job.data.fetchClaim).toBe(token);
        expect(await client.get(idempotencyKey(id))).toBe(`processing:${token}`);
      }
    });
    await waitFor(() => views.length === ids.length && emptyData !== undefined);
    expect(emptyData).toEqual({});
    expect(await client.get(idempotencyKey('evt_empty'))).toMatch(/^processing:/);
    expect(views.map((view) => [view.id, view.claimed])).toEqual([
      // The first job of a slot comes from BullMQ's moveToActive, which claims nothing.
      ['evt_first', false],
      ['evt:colon', true],
      ['evt%percent', true],
      ['evt_done', false],
      ['evt_busy', false],
      ['evt_last', true],
    ]);
    for (const view of views.filter((v) => v.claimed)) {
      expect(view.pttl).toBeGreaterThan(LOCK_MS - 5000);
      expect(view.pttl).toBeLessThanOrEqual(LOCK_MS);
    }
    expect(views.find((v) => v.id === 'evt_done')?.record).toBe('done');
    expect(views.find((v) => v.id === 'evt_busy')?.record).toBe('processing:someone-else');
    // The claim lives only in the reply: the stored job data is what the producer wrote.
    const stored = await client.hget(`{groq}:claims:${jobIdFor('evt_last')}`, 'data');
    expect(JSON.parse(stored ?? '')).toEqual(data('evt_last'));
  });

  it('while Redis refuses writes, the job is not finished without its marker; then both land', async () => {
    await fill('refused', ['evt_refused']);
    const maxmemory = (await client.config('GET', 'maxmemory')) as string[];
    let handled = false;
    await run('refused', async (job, _token, finisher) => {
      // Redis starts refusing writes right after the handler's work.
      await client.config('SET', 'maxmemory', '1');
      handled = true;
      finisher.markDoneOnFinish(job.id ?? '', job.data.event.id);
    });
    const queue = openQueue(client, { index: 0, name: 'refused', prefix: '{groq}' }, settings);
    cleanups.push(() => queue.close());
    try {
      await waitFor(() => handled);
      await waitFor(async () => (await rejectedFinishes()) > 0);
      expect(await client.get(idempotencyKey('evt_refused'))).toBeNull();
      expect(await queue.getJobState(jobIdFor('evt_refused'))).toBe('active');
    } finally {
      await client.config('SET', 'maxmemory', maxmemory[1] ?? '0');
    }
    await waitFor(async () => (await queue.getCompletedCount()) === 1);
    expect(await client.get(idempotencyKey('evt_refused'))).toBe('done');
  });

  async function rejectedFinishes(): Promise<number> {
    const stats = await client.info('commandstats');
    // A script is refused at its first write: Redis counts that as a failed call.
    const line = /cmdstat_evalsha:.*rejected_calls=(\d+),failed_calls=(\d+)/.exec(stats);
    return Number(line?.[1] ?? 0) + Number(line?.[2] ?? 0);
  }

  it('sends BullMQ’s options as JSON when they are plain values, else as they came', () => {
    const options = {
      token: 'tok:1',
      name: 'groq-worker-1',
      keepJobs: { count: 10_000, age: 3600 },
      limiter: undefined,
      lockDuration: 30_000,
      attempts: 8,
      maxMetricsSize: '',
      fpof: false,
    };
    const json = optionsAsJson(bullmqPackr.pack(options));
    expect(typeof json).toBe('string');
    // Absent values are left out, as a nil decodes to a missing key in Lua.
    const { limiter: _absent, ...present } = options;
    expect(JSON.parse(String(json))).toEqual(present);
    for (const odd of [{ list: [1, null] }, { n: Number.POSITIVE_INFINITY }, { at: new Date(0) }]) {
      const packed = bullmqPackr.pack({ ...options, ...odd });
      expect(optionsAsJson(packed)).toBe(packed);
    }
    expect(optionsAsJson('already a string')).toBe('already a string');
  });

  it('hands back the events marked for a finish that never came, once', () => {
    const finisher = new JobFinisher({ doneTtlSeconds: TTL_SECONDS });
    finisher.markDoneOnFinish(jobIdFor('evt_a'), 'evt_a');
    finisher.markDoneOnFinish(jobIdFor('evt:b'), 'evt:b');
    expect(finisher.takeUnfinished().sort()).toEqual(['evt:b', 'evt_a']);
    expect(finisher.takeUnfinished()).toEqual([]);
  });

  it('refuses a Cluster connection, and a connection BullMQ has not set up yet', () => {
    const finisher = new JobFinisher({ doneTtlSeconds: TTL_SECONDS });
    const fresh = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'worker');
    cleanups.push(() => closeRedis(fresh));
    expect(() => finisher.install(fresh)).toThrow(/not defined moveToFinished:/);
    expect(() => finisher.install({ ...fresh, isCluster: true } as RedisClient)).toThrow(
      /single Redis only/,
    );
  });
});
