// A worker process with ARCHIVE_DATABASE_URL runs the archiver: its migrations, the history
// streams drained into PostgreSQL, the backlog metric. (Recording deliveries and attempts from the
// ingest and the worker themselves is issue 17's phase 2.)
import { fileURLToPath } from 'node:url';
import { HistoryStore, openHistoryPool } from '@groq-webhooks/archive';
import {
  closeRedis,
  createRedis,
  HistoryWriter,
  type RedisClient,
  waitForRedis,
} from '@groq-webhooks/queue';
import {
  freePort,
  startPostgres,
  startProcess,
  startRedis,
  type TestPostgres,
  type TestRedis,
  waitFor,
} from '@groq-webhooks/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const settings = { queueName: 'groq-events', queuePrefix: '{groq}', queueShards: 2 };

describe('worker process with the event history on', () => {
  let redis: TestRedis;
  let postgres: TestPostgres;
  let client: RedisClient;

  beforeAll(async () => {
    redis = await startRedis();
    postgres = await startPostgres();
    client = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'admin');
    await waitForRedis(client, 5000);
  }, 60_000);
  afterAll(async () => {
    if (client) await closeRedis(client);
    await redis?.cleanup();
    await postgres?.cleanup();
  });

  it('migrates the database, archives the history streams, reports the backlog, and stops cleanly', async () => {
    const url = await postgres.createDatabase('groq_worker');
    const writer = new HistoryWriter({ client, settings });
    // Appended before the worker exists: archived once it starts.
    await writer.append([
      {
        kind: 'delivery',
        eventId: 'evt_w1',
        type: 'resource.created',
        created: '2026-11-28T10:00:00Z',
        receivedAt: Date.now(),
        keyIndex: 0,
        outcome: 'received',
        payload:
          '{"id":"evt_w1","type":"resource.created","data":{},"created":"2026-11-28T10:00:00Z"}',
      },
    ]);
    const metricsPort = await freePort();
    const worker = startProcess('node', [MAIN], {
      env: {
        REDIS_URL: redis.url,
        QUEUE_SHARDS: '2',
        ARCHIVE_DATABASE_URL: url,
        WORKER_METRICS_PORT: String(metricsPort),
      },
    });
    await worker.waitForOutput('"history":"on"');
    const pool = openHistoryPool(url);
    try {
      const store = new HistoryStore(pool);
      await waitFor(async () => (await store.show('evt_w1'))?.status === 'received', {
        timeoutMs: 20_000,
      });
      await writer.append([
        {
          kind: 'attempt',
          eventId: 'evt_w1',
          type: 'resource.created',
          attempt: 1,
          startedAt: Date.now(),
          endedAt: Date.now() + 3,
          worker: 'groq-worker-1',
          outcome: 'completed',
        },
      ]);
      await waitFor(async () => (await store.show('evt_w1'))?.status === 'completed', {
        timeoutMs: 20_000,
      });
      const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      expect(metrics).toMatch(/^groq_history_backlog_entries\{[^}]*\} 0$/m);
      expect(metrics).toMatch(/^groq_history_archived_total\{[^}]*\} 2$/m);
    } finally {
      await pool.end();
    }
    await worker.stop('SIGTERM', 15_000);
    expect(await worker.exited).toBe(0);
  }, 60_000);
});
