import type { Envelope } from '@groq-webhooks/core';
import { dumpKeys, startRedis, type TestRedis, waitFor } from '@groq-webhooks/testing';
import { createRedisBackend, type Job, Worker } from 'bullmq';
import { Packr } from 'msgpackr';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closeRedis, createRedis, type RedisClient } from '../connection.js';
import { IdempotencyStore } from '../idempotency.js';
import { backoffDelay } from '../job-options.js';
import { idempotencyKey, jobIdFor, resourceStateKey } from '../naming.js';
import { type EventJobData, jobTurn, openQueue } from '../queues.js';
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
  let store: IdempotencyStore;
  const cleanups: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    client = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'admin');
    await waitFor(() => client.status === 'ready');
    const check = await checkReviewedScripts();
    if (!check.ok) throw new Error(check.reason);
    script = fusedFinishScript(check.scripts.moveToFinished);
    store = new IdempotencyStore(client);
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  afterAll(async () => {
    if (client) await closeRedis(client);
    await redis?.cleanup();
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
    options: {
      mode?: FinishMode;
      concurrency?: number;
      shadowUntil?: number;
      turnsAtFetch?: boolean;
    } = {},
  ) {
    const mode = options.mode ?? 'fused';
    const connection = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'worker');
    const ledger = new FastLedger(connection, {
      doneTtlSeconds: TTL_SECONDS,
      finishScript: script,
      markers: { layout: 'buckets', shadowUntil: options.shadowUntil ?? 0 },
      turnsAtFetch: options.turnsAtFetch,
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
    const now = Number((await client.time())[0]);
    for (const [i, id] of ids.entries()) {
      const claim = await client.get(idempotencyKey(id));
      // Events the stock run left no record of; odd ones the fused runs claimed at fetch only.
      if (i % 2 === 0) {
        expect(await store.doneUntil(id)).toBeGreaterThan(now + TTL_SECONDS - 60);
        expect(claim).toBeNull();
      } else {
        expect(await store.isDone(id)).toBe(false);
        expect(claim === null || claim.startsWith('processing:')).toBe(true);
      }
    }
  });

  it('appends the attempt’s history record with the job’s finish, and hands it back when the finish fails', async () => {
    const stream = '{groq}:finish-record:history';
    const record = (id: string) => ({ stream, fields: ['v', '1', 'kind', 'attempt', 'id', id] });
    const handedBack: string[] = [];
    await fill('finish-record', ['evt_rec_0', 'evt_rec_1', 'evt_rec_2']);
    const { worker } = await run('finish-record', async (job, _token, ledger) => {
      const id = job.data.event.id;
      expect(
        ledger.recordAtFinish(job.id ?? '', record(id), (r) =>
          handedBack.push(r.fields[5] as string),
        ),
      ).toBe(true);
      // The third job's lock is gone before it finishes: BullMQ's part refuses the finish.
      if (id === 'evt_rec_2') await client.del(`{groq}:finish-record:${job.id}:lock`);
    });
    worker.on('error', () => {});
    const queue = openQueue(
      client,
      { index: 0, name: 'finish-record', prefix: '{groq}' },
      settings,
    );
    cleanups.push(() => queue.close());
    await waitFor(async () => (await client.xlen(stream)) === 3, { timeoutMs: 15_000 });
    const entries = await client.xrange(stream, '-', '+');
    expect(entries.map(([, fields]) => fields)).toEqual(
      ['evt_rec_0', 'evt_rec_1', 'evt_rec_2'].map((id) => record(id).fields),
    );
    expect(await queue.getCompletedCount()).toBe(2);
    // The script ran although BullMQ's part refused the finish: the record is in, none handed back.
    expect(handedBack).toEqual([]);

    // A finish Redis refuses (maxmemory) hands its record back, to be appended another way.
    await fill('finish-record-oom', ['evt_rec_3']);
    const maxmemory = (await client.config('GET', 'maxmemory')) as string[];
    try {
      const refused = await run('finish-record-oom', async (job, _token, ledger) => {
        ledger.recordAtFinish(job.id ?? '', record(job.data.event.id), (r) =>
          handedBack.push(r.fields[5] as string),
        );
        await client.config('SET', 'maxmemory', '1');
      });
      refused.worker.on('error', () => {});
      await waitFor(() => handedBack.length === 1, { timeoutMs: 15_000 });
      expect(handedBack).toEqual(['evt_rec_3']);
    } finally {
      await client.config('SET', 'maxmemory', maxmemory[1] ?? '0');
    }
    expect(await client.xlen(stream)).toBe(3);
    await worker.close();
  });

  it('claims the next job’s event for the slot’s lock token when it fetches it', async () => {
    // Ids that need escaping in job ids, one done (in each layout), one claimed by another worker.
    const ids = [
      'evt_first',
      'evt:colon',
      'evt%percent',
      'evt_done',
      'evt_marked',
      'evt_busy',
      'evt_last',
    ];
    await client.set(idempotencyKey('evt_done'), 'done');
    await store.markDone('evt_marked', 600);
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
      // Done in the compact layout: a second job of a done event is not claimed at fetch.
      ['evt_marked', null, 'done'],
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
    await waitFor(() => store.isDone('evt_turn_1'));
    expect(await client.hgetall(resourceStateKey('res_turn'))).toEqual({
      newest: String(created),
      deleted: '1',
    });
  });

  /** Jobs as the ingest makes them: each about `resource`, its turn leading the job's data. */
  async function fillTurns(queueName: string, events: [string, string, string][]): Promise<void> {
    const queue = openQueue(client, { index: 0, name: queueName, prefix: '{groq}' }, settings);
    await queue.addBulk(
      events.map(([id, resource, created]) => {
        const event: Envelope = { id, type: 'resource.updated', data: { id: resource }, created };
        return {
          name: event.type,
          data: { turn: jobTurn(event), event, receivedAt: created, keyIndex: 0 },
          opts: { jobId: jobIdFor(id) },
        };
      }),
    );
    await queue.close();
  }

  /**
   * Runs `events` through a worker that takes each job's turn through the ledger, as the worker's
   * order step does, and reports per job: who held the resource before the processor asked, and
   * the answer it got. `meddle` runs before the ledger is asked.
   */
  async function turnsOf(
    queueName: string,
    events: [string, string, string][],
    turnsAtFetch: boolean,
    meddle: (id: string) => Promise<unknown> = async () => {},
  ) {
    await fillTurns(queueName, events);
    const seen: { id: string; heldBy: string | null; outcome: string }[] = [];
    await run(
      queueName,
      async (job, token, ledger) => {
        const { event } = job.data;
        const resource = String(event.data.id);
        const heldBy = await client.hget(resourceStateKey(resource), 'owner');
        await meddle(event.id);
        const turn = { key: resource, createdMs: Date.parse(event.created), type: event.type };
        const taken = await ledger.takeTurn(turn, token, LOCK_MS, job.id);
        seen.push({
          id: event.id,
          heldBy: heldBy === token ? 'us' : heldBy,
          outcome: taken.outcome,
        });
        const ended = taken.outcome === 'acquired' ? { turn, owner: token } : undefined;
        await ledger.markHandled(event.id, job.id ?? '', ended);
      },
      { turnsAtFetch },
    );
    await waitFor(() => seen.length === events.length);
    return seen;
  }

  it('takes the fetched job’s turn with its claim, and the ledger answers from it', async () => {
    const at = (minute: number) => `2026-12-05T00:${String(minute).padStart(2, '0')}:00.000Z`;
    await client.hset(resourceStateKey('res_ft_busy'), 'owner', 'someone-else', 'until', 9e15);
    await client.hset(resourceStateKey('res_ft_stale'), 'newest', Date.parse(at(30)));
    await client.hset(resourceStateKey('res_ft_freed'), 'owner', 'someone-else', 'until', 9e15);
    const seen = await turnsOf(
      'fetch-turns',
      [
        ['evt_ft_first', 'res_ft_a', at(1)],
        ['evt_ft_next', 'res_ft_a', at(2)],
        ['evt_ft_busy', 'res_ft_busy', at(3)],
        ['evt_ft_stale', 'res_ft_stale', at(4)],
        // Freed between the fetch and the ledger's answer: the answer is the fetch's.
        ['evt_ft_freed', 'res_ft_freed', at(5)],
        // Not plain JSON text: the job carries no turn, and the ledger takes it itself.
        ['evt_ft_quote', 'res_"quoted"', at(6)],
      ],
      true,
      (id) =>
        id === 'evt_ft_freed' ? client.del(resourceStateKey('res_ft_freed')) : Promise.resolve(),
    );
    expect(seen).toEqual([
      // The first job of a slot comes from BullMQ's moveToActive, which takes nothing.
      { id: 'evt_ft_first', heldBy: null, outcome: 'acquired' },
      // Its finish ended res_ft_a's turn, then took it for the next job.
      { id: 'evt_ft_next', heldBy: 'us', outcome: 'acquired' },
      { id: 'evt_ft_busy', heldBy: 'someone-else', outcome: 'busy' },
      { id: 'evt_ft_stale', heldBy: null, outcome: 'stale' },
      { id: 'evt_ft_freed', heldBy: 'someone-else', outcome: 'busy' },
      { id: 'evt_ft_quote', heldBy: null, outcome: 'acquired' },
    ]);
    // Each acquired turn ended with its job, the resource moved on to the event's created.
    expect(await client.hgetall(resourceStateKey('res_ft_a'))).toEqual({
      newest: String(Date.parse(at(2))),
    });
    expect(await client.hget(resourceStateKey('res_"quoted"'), 'owner')).toBeNull();
    // A busy or stale answer changed nothing.
    expect(await client.hget(resourceStateKey('res_ft_busy'), 'owner')).toBe('someone-else');
    expect(await client.hget(resourceStateKey('res_ft_stale'), 'owner')).toBeNull();
  });

  it('takes no turn at fetch when the handlers do not order events', async () => {
    const seen = await turnsOf(
      'no-fetch-turns',
      [
        ['evt_nft_1', 'res_nft', '2026-12-05T00:01:00.000Z'],
        ['evt_nft_2', 'res_nft', '2026-12-05T00:02:00.000Z'],
      ],
      false,
    );
    expect(seen.map((view) => view.heldBy)).toEqual([null, null]);
    expect(seen.map((view) => view.outcome)).toEqual(['acquired', 'acquired']);
  });

  it('gives back a turn the fetch took when the job names another, or never asks', async () => {
    const created = '2026-12-05T00:01:00.000Z';
    await fillTurns('unused-turns', [
      ['evt_ut_first', 'res_ut_first', created],
      ['evt_ut_other', 'res_ut_data', created],
      ['evt_ut_unused', 'res_ut_unused', created],
    ]);
    const held: (string | null)[] = [];
    const owner = async (resource: string, token: string) => {
      const value = await client.hget(resourceStateKey(resource), 'owner');
      return value === token ? 'us' : value;
    };
    await run(
      'unused-turns',
      async (job, token, ledger) => {
        const id = job.data.event.id;
        if (id === 'evt_ut_other') {
          held.push(await owner('res_ut_data', token));
          // The event says res_ut_event; the job's data said res_ut_data.
          const turn = { key: 'res_ut_event', createdMs: Date.parse(created), type: 'x' };
          expect((await ledger.takeTurn(turn, token, LOCK_MS, job.id)).outcome).toBe('acquired');
          held.push(await owner('res_ut_data', token));
          await ledger.endTurn(turn, token);
        }
        if (id === 'evt_ut_unused') held.push(await owner('res_ut_unused', token));
        await ledger.markHandled(id, job.id ?? '');
      },
      { turnsAtFetch: true },
    );
    const queue = openQueue(client, { index: 0, name: 'unused-turns', prefix: '{groq}' }, settings);
    cleanups.push(() => queue.close());
    await waitFor(async () => (await queue.getCompletedCount()) === 3);
    // Taken at fetch, given back for the event's own; the unused one held until its job finished.
    expect(held).toEqual(['us', null, 'us']);
    await waitFor(
      async () => (await client.hget(resourceStateKey('res_ut_unused'), 'owner')) === null,
    );
  });

  it('leaves the previous layout’s marker too while the rollout window lasts', async () => {
    await fill('rollout', ['evt_rollout']);
    const shadowUntil = Number((await client.time())[0]) + 120;
    await run(
      'rollout',
      async (job, _token, ledger) => ledger.markHandled(job.data.event.id, job.id ?? ''),
      { shadowUntil },
    );
    await waitFor(() => store.isDone('evt_rollout'));
    // What a worker of the previous version reads: skipped there too.
    expect(await client.get(idempotencyKey('evt_rollout'))).toBe('done');
    const ttl = await client.ttl(idempotencyKey('evt_rollout'));
    expect(ttl).toBeGreaterThan(100);
    expect(ttl).toBeLessThanOrEqual(120);
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
      expect(await store.isDone('evt_refused')).toBe(false);
      expect(await queue.getJobState(jobIdFor('evt_refused'))).toBe('active');
    } finally {
      await client.config('SET', 'maxmemory', maxmemory[1] ?? '0');
    }
    await waitFor(async () => (await queue.getCompletedCount()) === 1);
    expect(await store.isDone('evt_refused')).toBe(true);
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
    expect(await store.isDone('evt_unfinished_a')).toBe(true);
    expect(await store.isDone('evt:unfinished')).toBe(true);
    // Once: a job completion that comes after all carries no marker any more.
    expect(ledger.takeDoneMark(jobIdFor('evt_unfinished_a'))).toBeUndefined();
  });
});
