import {
  closeRedis,
  createRedis,
  type HistoryRecord,
  HistoryWriter,
  historyShardOf,
  historyStreamKeys,
  queueShards,
  type RedisClient,
  waitForRedis,
} from '@groq-webhooks/queue';
import { createLogger } from '@groq-webhooks/telemetry';
import { startRedis, type TestRedis, waitFor } from '@groq-webhooks/testing';
import type { Pool } from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { attempt, BACKENDS, received, T0, type TestDatabase } from './__support__/backends.js';
import { ARCHIVER_GROUP, type ArchiveDeferral, Archiver } from './archiver.js';
import { migrate } from './migrations.js';
import { openHistoryPool } from './service.js';
import { HistoryStore } from './store.js';

const logger = createLogger({ service: 'archiver-test', level: process.env.TEST_LOG ?? 'silent' });
let queueCounter = 0;

describe.each(BACKENDS)('Archiver: Redis history streams into $name', (backend) => {
  let redis: TestRedis;
  let database: TestDatabase;
  let pool: Pool;
  let store: HistoryStore;
  let clients: RedisClient[] = [];
  let archivers: Archiver[] = [];
  let settings: { queueName: string; queuePrefix: string; queueShards: number };
  let writer: HistoryWriter;

  function client(): RedisClient {
    const created = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'worker');
    clients.push(created);
    return created;
  }

  function archiver(
    consumer: string,
    claimIdleMs = 60_000,
    deferral: ArchiveDeferral | false = false,
  ): Archiver {
    const created = new Archiver({
      client: client(),
      store,
      settings,
      logger,
      consumer,
      batchSize: 50,
      lingerMs: 20,
      deferral,
      blockMs: 200,
      claimIdleMs,
      backoffMs: 50,
      maxBackoffMs: 500,
    });
    archivers.push(created);
    return created;
  }

  async function count(sql: string): Promise<number> {
    const { rows } = await pool.query<{ n: number }>(sql);
    return rows[0]?.n ?? -1;
  }

  beforeAll(async () => {
    redis = await startRedis();
    database = await backend.start();
    pool = openHistoryPool(database.url, { statementTimeoutMs: 5000, connectTimeoutMs: 2000 });
    store = new HistoryStore(pool);
    await migrate(pool);
  }, 60_000);
  afterAll(async () => {
    await pool?.end();
    await database?.close();
    await redis?.cleanup();
  });
  beforeEach(async () => {
    queueCounter += 1;
    // Two shards: records of one event go to its shard's stream, replays to shard 0.
    settings = { queueName: `hist-${queueCounter}`, queuePrefix: '{hist}', queueShards: 2 };
    const writerClient = client();
    await waitForRedis(writerClient, 5000);
    writer = new HistoryWriter({ client: writerClient, settings });
    await pool.query('truncate groq_events, groq_deliveries, groq_attempts, groq_replays');
  });
  afterEach(async () => {
    await Promise.all(archivers.map((a) => a.stop()));
    archivers = [];
    await Promise.all(clients.map((c) => closeRedis(c)));
    clients = [];
  });

  it('lets a queue backlog be handled first, then archives what gathered', async () => {
    const deferral = { backlogJobs: 5, maxLagMs: 60_000, maxEntries: 1000, checkMs: 20 };
    const [shard] = queueShards(settings);
    const wait = `${shard?.prefix}:${shard?.name}:wait`;
    const admin = client();
    await admin.rpush(wait, ...Array.from({ length: 10 }, (_, i) => `job-${i}`));
    await writer.append([received('evt_later'), attempt('evt_later', 1, 'completed')]);
    const deferring = archiver('proc-a', 60_000, deferral);
    deferring.start();
    await waitFor(() => deferring.stats.deferrals === 1, { timeoutMs: 5000 });
    // While 10 jobs wait, nothing is read (checked over 20 looks).
    const until = Date.now() + 20 * deferral.checkMs;
    await waitFor(
      async () => {
        expect((await deferring.backlog()).entries).toBe(2);
        return Date.now() >= until;
      },
      { timeoutMs: 5000, intervalMs: deferral.checkMs },
    );
    expect(await count('select count(*)::int as n from groq_events')).toBe(0);
    await admin.del(wait);
    await waitFor(async () => (await store.show('evt_later'))?.status === 'completed', {
      timeoutMs: 5000,
    });
    expect(deferring.stats.deferrals).toBe(1);
  });

  it('waits no longer than the oldest record may lag, nor past a stream length', async () => {
    const [shard] = queueShards(settings);
    const admin = client();
    await admin.rpush(
      `${shard?.prefix}:${shard?.name}:wait`,
      ...Array.from({ length: 10 }, String),
    );
    // Lag: records older than 300 ms are archived although the backlog stays.
    await writer.append([received('evt_lag')]);
    archiver('proc-a', 60_000, {
      backlogJobs: 5,
      maxLagMs: 300,
      maxEntries: 1000,
      checkMs: 20,
    }).start();
    await waitFor(async () => (await store.show('evt_lag')) !== undefined, { timeoutMs: 5000 });
    // Length: a stream holding 5 records is archived at once, whatever their age.
    const [first] = archivers.splice(0);
    await first?.stop();
    const full = archiver('proc-b', 60_000, {
      backlogJobs: 5,
      maxLagMs: 60_000,
      maxEntries: 5,
      checkMs: 20,
    });
    const ids = Array.from({ length: 40 }, (_, i) => `evt_s${i}`);
    const sameShard = ids.filter((id) => historyShardOf(received(id), 2) === 0).slice(0, 5);
    await writer.append(sameShard.map((id) => received(id)));
    full.start();
    await waitFor(async () => (await full.backlog()).entries === 0, { timeoutMs: 5000 });
  });

  it('turns every record into rows once, through two archivers sharing the group, and empties the streams', async () => {
    const records: HistoryRecord[] = [];
    for (let i = 0; i < 60; i++) {
      const id = `evt_${i}`;
      records.push(received(id, i % 10 === 0 ? 'resource.exploded' : 'resource.created', T0 + i));
      if (i % 10 === 0) records.push(attempt(id, 1, 'unhandled'));
      else if (i % 3 === 0) {
        records.push(attempt(id, 1, 'retrying'), attempt(id, 2, 'failed'));
      } else records.push(attempt(id, 1, 'completed'));
      if (i % 4 === 0) records.push(received(id, 'resource.created', T0 + 5000, 'duplicate'));
    }
    records.push({
      kind: 'replay',
      replayId: 'rpl_x',
      filters: '{}',
      count: 0,
      requestedAt: T0,
    });
    // A writer that got the format wrong must not stall the archive.
    const [firstStream] = historyStreamKeys(settings);
    await clients[0]?.xadd(firstStream as string, '*', 'v', '1', 'kind', 'nonsense');
    // Half before the archivers start, half while they run.
    await writer.append(records.slice(0, 100));
    const first = archiver('proc-a');
    const second = archiver('proc-b');
    first.start();
    second.start();
    await writer.append(records.slice(100));

    await waitFor(async () => (await first.backlog()).entries === 0, { timeoutMs: 20_000 });
    expect(await count('select count(*)::int as n from groq_events')).toBe(60);
    expect(await count('select count(*)::int as n from groq_deliveries')).toBe(75);
    expect(await count('select count(*)::int as n from groq_attempts')).toBe(
      records.filter((r) => r.kind === 'attempt').length,
    );
    expect(await count('select count(*)::int as n from groq_replays')).toBe(1);
    expect((await store.show('evt_0'))?.status).toBe('unhandled');
    expect(await store.show('evt_3')).toMatchObject({
      status: 'failed',
      attempts: 2,
      lastError: 'boom 2',
    });
    expect(await store.show('evt_4')).toMatchObject({
      status: 'completed',
      deliveries: 2,
      duplicates: 1,
    });
    expect(first.stats.archived + second.stats.archived).toBe(records.length);
    expect(first.stats.malformed + second.stats.malformed).toBe(1);
    // Acknowledged and deleted: nothing pending, nothing left.
    for (const stream of historyStreamKeys(settings)) {
      expect(await clients[0]?.xlen(stream)).toBe(0);
    }
    expect(await first.backlog()).toEqual({ entries: 0, pending: 0 });
  }, 30_000);

  it('takes over the entries a dead archiver read but never acknowledged', async () => {
    await writer.append([received('evt_orphan'), attempt('evt_orphan', 1, 'completed')]);
    const raw = client();
    for (const stream of historyStreamKeys(settings)) {
      await raw.call('XGROUP', 'CREATE', stream, ARCHIVER_GROUP, '0', 'MKSTREAM');
      // A consumer that reads and then dies: the entries stay pending under its name.
      await raw.call('XREADGROUP', 'GROUP', ARCHIVER_GROUP, 'dead', 'STREAMS', stream, '>');
    }
    const live = archiver('proc-live', 300);
    expect((await live.backlog()).pending).toBe(2);
    live.start();
    await waitFor(async () => (await store.show('evt_orphan'))?.status === 'completed', {
      timeoutMs: 10_000,
    });
    await waitFor(async () => (await live.backlog()).entries === 0, { timeoutMs: 5000 });
  }, 20_000);

  // Needs a server the test can stop and a second session: not the embedded store.
  if (backend.name === 'PostgreSQL') {
    it('keeps records in Redis while PostgreSQL is down and archives each exactly once when it is back', async () => {
      const server = database.server;
      if (server === undefined) throw new Error('needs a throwaway server');
      // One shard: the archiver's reads block on the stream (several shards are polled).
      settings = { ...settings, queueShards: 1 };
      writer = new HistoryWriter({ client: clients[0] as RedisClient, settings });
      const running = archiver('proc-outage');
      running.start();
      const sent: string[] = [];
      const send = async (n: number) => {
        const batch: HistoryRecord[] = [];
        for (let i = 0; i < n; i++) {
          const id = `evt_out_${sent.length}`;
          sent.push(id);
          batch.push(
            received(id, 'resource.created', T0 + sent.length),
            attempt(id, 1, 'completed'),
          );
        }
        await writer.append(batch);
      };
      await send(50);
      await waitFor(async () => (await store.count({})) === 50, { timeoutMs: 10_000 });

      await server.stop();
      // Records keep arriving while the database is away: they wait in Redis.
      for (let round = 0; round < 10; round++) await send(30);
      await waitFor(async () => running.stats.failures >= 2, { timeoutMs: 10_000 });
      const backlog = await running.backlog();
      expect(backlog.entries).toBe(600);
      expect(await clients[0]?.xlen(historyStreamKeys(settings)[0] as string)).toBe(600);

      await server.start();
      await waitFor(async () => (await running.backlog()).entries === 0, { timeoutMs: 30_000 });
      expect(await store.count({})).toBe(350);
      const rows = await pool.query<{ event_id: string; deliveries: number; attempts: number }>(
        'select event_id, deliveries, attempts from groq_events',
      );
      expect(rows.rows.map((r) => r.event_id).sort()).toEqual([...sent].sort());
      expect(rows.rows.every((r) => r.deliveries === 1 && r.attempts === 1)).toBe(true);
      expect(await count('select count(*)::int as n from groq_deliveries')).toBe(350);
    }, 60_000);
  }
});
