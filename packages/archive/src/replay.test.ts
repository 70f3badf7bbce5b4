import {
  closeRedis,
  createRedis,
  type EventQueue,
  HistoryWriter,
  historyStreamKeys,
  openQueues,
  type RedisClient,
  replayJobIdFor,
  waitForRedis,
} from '@groq-webhooks/queue';
import { startRedis, type TestRedis } from '@groq-webhooks/testing';
import type { Pool } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attempt, BACKENDS, received, T0, type TestDatabase } from './__support__/backends.js';
import { parseFilters } from './filters.js';
import { migrate } from './migrations.js';
import { replayEvents } from './replay.js';
import { openHistoryPool } from './service.js';
import { HistoryStore, type StreamEntry } from './store.js';

const settings = {
  queueName: 'replay-events',
  queuePrefix: '{replay}',
  queueShards: 2,
  jobAttempts: 3,
  backoffBaseMs: 10,
};

describe.each(BACKENDS)('replayEvents from $name into real BullMQ queues', (backend) => {
  let redis: TestRedis;
  let client: RedisClient;
  let database: TestDatabase;
  let pool: Pool;
  let store: HistoryStore;
  let queues: EventQueue[];

  async function jobsOf(): Promise<{ id: string; replay: string | undefined; eventId: string }[]> {
    const all = await Promise.all(queues.map((q) => q.getJobs(['waiting'], 0, -1)));
    return all.flat().map((job) => ({
      id: job.id ?? '',
      replay: job.data.replay,
      eventId: job.data.event.id,
    }));
  }

  beforeAll(async () => {
    redis = await startRedis();
    client = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'admin');
    await waitForRedis(client, 5000);
    queues = openQueues(client, settings);
    database = await backend.start();
    pool = openHistoryPool(database.url);
    store = new HistoryStore(pool);
    await migrate(pool);
    // 30 events over three hours: types alternate, one an hour apart every 6 minutes.
    const entries: StreamEntry[] = [];
    for (let i = 0; i < 30; i++) {
      const id = `evt_${String(i).padStart(2, '0')}`;
      const type = i % 2 === 0 ? 'resource.updated' : 'resource.created';
      entries.push(
        { stream: 's', entryId: `1-${2 * i}`, record: received(id, type, T0 + i * 360_000) },
        { stream: 's', entryId: `1-${2 * i + 1}`, record: attempt(id, 1, 'completed') },
      );
    }
    await store.writeBatch(entries);
  }, 60_000);
  afterAll(async () => {
    await Promise.all((queues ?? []).map((q) => q.close()));
    if (client) await closeRedis(client);
    await pool?.end();
    await database?.close();
    await redis?.cleanup();
  });

  it('enqueues exactly the matching events once each, with the replay id, and a second replay makes new jobs', async () => {
    const writer = new HistoryWriter({ client, settings });
    // resource.updated between 10:00 and 11:00: events 0, 2, 4, 6, 8 (10:00 … 10:48).
    const filters = parseFilters({
      type: 'resource.updated',
      since: '2026-11-28T10:00:00Z',
      until: '2026-11-28T11:00:00Z',
    });
    const progress: [number, number][] = [];
    const first = await replayEvents(
      { store, queues, writer },
      { filters, onProgress: (done, total) => progress.push([done, total]) },
    );
    expect(first).toMatchObject({ matched: 5, enqueued: 5, skipped: 0 });
    expect(progress.at(0)).toEqual([0, 5]);
    expect(progress.at(-1)).toEqual([5, 5]);
    const jobs = await jobsOf();
    expect(jobs.map((j) => j.eventId).sort()).toEqual([
      'evt_00',
      'evt_02',
      'evt_04',
      'evt_06',
      'evt_08',
    ]);
    for (const job of jobs) {
      expect(job.replay).toBe(first.replayId);
      expect(job.id).toBe(replayJobIdFor(first.replayId, job.eventId));
    }
    // The job carries the archived payload, the original receipt time and key.
    const [one] = await Promise.all(
      queues.map((q) => q.getJob(replayJobIdFor(first.replayId, 'evt_04'))),
    ).then((found) => found.filter((job) => job !== undefined));
    expect(one?.name).toBe('resource.updated');
    expect(one?.data.event).toEqual(
      JSON.parse(received('evt_04', 'resource.updated').payload ?? ''),
    );
    expect(one?.data.receivedAt).toBe(new Date(T0 + 4 * 360_000).toISOString());

    const second = await replayEvents({ store, queues, writer }, { filters, limit: 3 });
    expect(second.replayId).not.toBe(first.replayId);
    expect(second).toMatchObject({ matched: 3, enqueued: 3 });
    const after = await jobsOf();
    expect(after).toHaveLength(8);
    expect(
      after
        .filter((j) => j.replay === second.replayId)
        .map((j) => j.eventId)
        .sort(),
    ).toEqual(['evt_00', 'evt_02', 'evt_04']);
    // Each replay left one record on shard 0's history stream for the archiver.
    const [stream0] = historyStreamKeys(settings);
    const records = (await client.xrange(stream0 as string, '-', '+')).map(([, fields]) =>
      fields.join(' '),
    );
    expect(records).toHaveLength(2);
    expect(records[0]).toContain(`kind replay replay ${first.replayId}`);
    expect(records[0]).toContain('count 5');
    expect(records[1]).toContain('"limit":3');
  });
});
