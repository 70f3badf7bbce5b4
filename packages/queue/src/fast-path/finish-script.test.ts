import type { Envelope } from '@groq-webhooks/core';
import { dumpKeys, startRedis, type TestRedis, waitFor } from '@groq-webhooks/testing';
import { createRedisBackend, type Job, Worker } from 'bullmq';
import { Packr } from 'msgpackr';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closeRedis, createRedis, type RedisClient } from '../connection.js';
import { backoffDelay } from '../job-options.js';
import { idempotencyKey, jobIdFor, resourceStateKey } from '../naming.js';
import { type EventJobData, openQueue } from '../queues.js';
import { fusedFinishBackend } from './backend.js';
import { fusedFinishScript, optionsAsJson } from './finish-script.js';
import { FastLedger } from './ledger.js';
import { checkReviewedScripts } from './reviewed-scripts.js';

// The fast path's backend folds the claim of the next job and the done-marker of the finished
// one into BullMQ's moveToFinished. These tests hold it to BullMQ's own behaviour for
// everything else, and to the two writes it adds.

const settings = { queuePrefix: '{groq}', queueShards: 1, jobAttempts: 3, backoffBaseMs: 250 };
const TTL_SECONDS = 3600;
/** MessagePack as BullMQ packs its script options. */
const bullmqPackr = new Packr({ useRecords: false, encodeUndefinedAsNil: true });
const LOCK_MS = 20_000;

function data(id: string): EventJobData {
  const event: Envelope = { id, type: 'resource.created', data: { id: 'res_1' }, created: 'x' };
  return { event, receivedAt: '2026-11-28T10:00:01.000Z', keyIndex: 0 };
}

/** How a test worker finishes its jobs. */
type FinishMode = 'stock' | 'fused' | 'fused-packed';

describe('the fused finish backend', { timeout: 30_000 }, () => {
  let redis: TestRedis;
  let client: RedisClient;
  let script: string;
  const cleanups: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    client = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'admin');
    await waitFor(() => client.status === 'ready');
    const check = await checkReviewedScripts();
    if (!check.ok) throw new Error(check.reason);
    script = fusedFinishScript(check.scripts.moveToFinished);
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

  /** Runs a BullMQ worker over `mode`'s backend whose processor is `process`. */
  async function run(
    queueName: string,
    process: (job: Job<EventJobData>, token: string, ledger: FastLedger) => Promise<void>,
    options: { mode?: FinishMode; concurrency?: number } = {},
  ) {
    const mode = options.mode ?? 'fused';
    const connection = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'worker');
    const ledger = new FastLedger(connection, {
      doneTtlSeconds: TTL_SECONDS,
      finishScript: script,
    });
    const backendFactory =
      mode === 'stock'
        ? createRedisBackend
        : mode === 'fused'
          ? ledger.backendFactory
          : // Sends the options as BullMQ packed them: the script's MessagePack branch.
            fusedFinishBackend({ book: ledger, script, encodeOptions: (packed) => packed });
    const worker = new Worker<EventJobData>(
      queueName,
      (job, token) => process(job, token ?? '', ledger),
      {
        connection,
        prefix: '{groq}',
        autorun: false,
        name: 'test-worker',
        concurrency: options.concurrency ?? 1,
        lockDuration: LOCK_MS,
        settings: { backoffStrategy: (attemptsMade: number) => backoffDelay(attemptsMade, 50) },
      },
      backendFactory,
    );
    await worker.waitUntilReady();
    void worker.run();
    cleanups.push(async () => {
      await worker.close();
      await closeRedis(connection);
    });
    return { worker, ledger };
  }

  /** A finished queue's keys with times left out: what BullMQ wrote. */
  async function snapshot(queueName: string): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {};
    for (const [name, { type, value }] of Object.entries(
      await dumpKeys(client, `{groq}:${queueName}:`),
    )) {
      if (type === 'hash') {
        const { timestamp, processedOn, finishedOn, ...rest } = value as Record<string, string>;
        out[name] = { ...rest, times: [timestamp, processedOn, finishedOn].map(Boolean) };
      } else if (type === 'zset') {
        out[name] = (value as [string, string][]).map(([member]) => member).sort();
      } else if (type === 'stream') {
        out[name] = (value as string[][]).map((fields) => fields.map(time)).sort();
      } else if (type === 'string') {
        out[name] = time((value as string | null) ?? '');
      } else {
        out[name] = value;
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
    for (const [queueName, mode] of [
      ['finish-stock', 'stock'],
      ['finish-fused', 'fused'],
      ['finish-packed', 'fused-packed'],
    ] as const) {
      await fill(queueName, ids);
      await client.del(...ids.map(idempotencyKey));
      await run(
        queueName,
        async (job, _token, ledger) => {
          seen += 1;
          const index = Number(job.data.event.id.split('_').at(-1));
          if (mode !== 'stock' && index % 2 === 0) {
            await ledger.markHandled(job.data.event.id, job.id ?? '');
          }
          if (index === 5 && job.attemptsMade === 0) throw new Error('fails once');
        },
        { mode },
      );
      const queue = openQueue(client, { index: 0, name: queueName, prefix: '{groq}' }, settings);
      cleanups.push(() => queue.close());
      await waitFor(async () => (await queue.getCompletedCount()) === 12, { timeoutMs: 15_000 });
    }
    expect(seen).toBe(39);
    expect(await snapshot('finish-fused')).toEqual(await snapshot('finish-stock'));
    expect(await snapshot('finish-packed')).toEqual(await snapshot('finish-stock'));
    for (const [i, id] of ids.entries()) {
      const marker = await client.get(idempotencyKey(id));
      // Events the stock run left no record of; odd ones the fused runs claimed at fetch only.
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
    const views: { id: string; record: string | null; pttl: number; claim: string }[] = [];
    await run('claims', async (job, token, ledger) => {
      const id = job.data.event.id;
      const record = await client.get(idempotencyKey(id));
      const pttl = await client.pttl(idempotencyKey(id));
      const claim = await ledger.claim(id, job.id ?? '', token, LOCK_MS);
      views.push({ id, record: record === `processing:${token}` ? 'ours' : record, pttl, claim });
      if (claim === 'claimed') await ledger.release(id, token);
    });
    await waitFor(() => views.length === ids.length);
    expect(views.map((view) => [view.id, view.record, view.claim])).toEqual([
      // The first job of a slot comes from BullMQ's moveToActive, which claims nothing.
      ['evt_first', null, 'claimed'],
      ['evt:colon', 'ours', 'claimed'],
      ['evt%percent', 'ours', 'claimed'],
      ['evt_done', 'done', 'done'],
      ['evt_busy', 'processing:someone-else', 'busy'],
      ['evt_last', 'ours', 'claimed'],
    ]);
    for (const view of views.filter((v) => v.record === 'ours')) {
      expect(view.pttl).toBeGreaterThan(LOCK_MS - 5000);
      expect(view.pttl).toBeLessThanOrEqual(LOCK_MS);
    }
    // The claim lives only in Redis and in the ledger: the stored job data is the producer's.
    const stored = await client.hget(`{groq}:claims:${jobIdFor('evt_last')}`, 'data');
    expect(JSON.parse(stored ?? '')).toEqual(data('evt_last'));
  });

  it('ends the handled event’s resource turn with its done-marker, in the same finish', async () => {
    await fill('turns', ['evt_turn_1']);
    const created = Date.parse('2026-11-28T10:00:00Z');
    await run('turns', async (job, token, ledger) => {
      const turn = { key: 'res_turn', createdMs: created, type: 'resource.deleted' };
      expect((await ledger.takeTurn(turn, token, LOCK_MS)).outcome).toBe('acquired');
      await ledger.markHandled(job.data.event.id, job.id ?? '', { turn, owner: token });
      // Nothing is written before the job's finish.
      expect(await client.hget(resourceStateKey('res_turn'), 'owner')).toBe(token);
    });
    await waitFor(async () => (await client.get(idempotencyKey('evt_turn_1'))) === 'done');
    expect(await client.hgetall(resourceStateKey('res_turn'))).toEqual({
      newest: String(created),
      deleted: '1',
    });
  });

  it('gives back a claim the fetch took when the attempt ends before its handler', async () => {
    await fill('give-back', ['evt_gb_first', 'evt_gb_second']);
    const records: (string | null)[] = [];
    await run('give-back', async (job, token, ledger) => {
      const id = job.data.event.id;
      await ledger.giveBack(id, job.id ?? '', token);
      records.push(await client.get(idempotencyKey(id)));
    });
    await waitFor(() => records.length === 2);
    // The second was claimed at fetch and given back; the first was never claimed.
    expect(records).toEqual([null, null]);
  });

  it('while Redis refuses writes, the job is not finished without its marker; then both land', async () => {
    await fill('refused', ['evt_refused']);
    const maxmemory = (await client.config('GET', 'maxmemory')) as string[];
    let handled = false;
    await run('refused', async (job, _token, ledger) => {
      // Redis starts refusing writes right after the handler's work.
      await client.config('SET', 'maxmemory', '1');
      handled = true;
      await ledger.markHandled(job.data.event.id, job.id ?? '');
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

  it('marks done, at close, the handled events whose job completion never came', async () => {
    const connection = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'worker');
    cleanups.push(() => closeRedis(connection));
    const ledger = new FastLedger(connection, {
      doneTtlSeconds: TTL_SECONDS,
      finishScript: script,
    });
    await ledger.markHandled('evt_unfinished_a', jobIdFor('evt_unfinished_a'));
    await ledger.markHandled('evt:unfinished', jobIdFor('evt:unfinished'));
    expect(await ledger.markUnfinishedDone()).toBe(0);
    expect(await client.get(idempotencyKey('evt_unfinished_a'))).toBe('done');
    expect(await client.get(idempotencyKey('evt:unfinished'))).toBe('done');
    // Once: a job completion that comes after all carries no marker any more.
    expect(ledger.takeDoneMark(jobIdFor('evt_unfinished_a'))).toBeUndefined();
  });
});
