// A worker process with ARCHIVE_DATABASE_URL runs the archiver: its migrations, the history
// streams drained into PostgreSQL, the backlog metric. (Recording deliveries and attempts from the
// ingest and the worker themselves is issue 17's phase 2.)
import { readdirSync, readFileSync } from 'node:fs';
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
      // The row is visible once its batch commits; the entries leave the streams (the backlog)
      // a round trip later, and the archiver runs at a low priority: a busy machine delays it.
      await waitFor(
        async () => {
          const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
          return (
            /^groq_history_backlog_entries\{[^}]*\} 0$/m.test(text) &&
            /^groq_history_archived_total\{[^}]*\} 2$/m.test(text)
          );
        },
        { timeoutMs: 10_000, description: 'backlog 0 and archived total 2 in the metrics' },
      );

      // The archiver is a process of its own, at a lower CPU priority than the worker.
      const [archiver] = archiverProcesses(worker.pid);
      expect(archiver).toBeDefined();
      expect(niceness(archiver as number) - niceness(worker.pid)).toBe(10);
      // Killed, it is started again, and what was appended meanwhile is archived.
      process.kill(archiver as number, 'SIGKILL');
      await worker.waitForOutput('History archiver process exited');
      await writer.append([
        {
          kind: 'attempt',
          eventId: 'evt_w1',
          type: 'resource.created',
          attempt: 2,
          startedAt: Date.now(),
          endedAt: Date.now() + 3,
          worker: 'groq-worker-1',
          outcome: 'skipped',
        },
      ]);
      await waitFor(async () => (await store.show('evt_w1'))?.attempts === 2, {
        timeoutMs: 20_000,
      });
      const again = archiverProcesses(worker.pid);
      expect(again).toHaveLength(1);
      expect(again[0]).not.toBe(archiver);
      await waitFor(
        async () => {
          const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
          return /^groq_history_archived_total\{[^}]*\} 3$/m.test(text);
        },
        { timeoutMs: 10_000, description: 'archived total counted over the restart' },
      );
    } finally {
      await pool.end();
    }
    const [archiver] = archiverProcesses(worker.pid);
    await worker.stop('SIGTERM', 15_000);
    expect(await worker.exited).toBe(0);
    expect(alive(archiver as number)).toBe(false);
  }, 60_000);

  it('the archiver process ends when its worker is SIGKILLed', async () => {
    const url = await postgres.createDatabase('groq_worker_kill');
    const worker = startProcess('node', [MAIN], {
      env: { REDIS_URL: redis.url, ARCHIVE_DATABASE_URL: url, WORKER_METRICS_PORT: '0' },
    });
    await worker.waitForOutput('"history":"on"');
    const [archiver] = archiverProcesses(worker.pid);
    expect(archiver).toBeDefined();
    await worker.kill();
    await waitFor(() => !alive(archiver as number), {
      timeoutMs: 10_000,
      description: 'archiver gone with its worker',
    });
  }, 60_000);

  it('the archiver process ends when its worker is SIGKILLed while Redis is gone', async () => {
    const url = await postgres.createDatabase('groq_worker_gone');
    const own = await startRedis();
    let archiver: number | undefined;
    try {
      const worker = startProcess('node', [MAIN], {
        env: { REDIS_URL: own.url, ARCHIVE_DATABASE_URL: url, WORKER_METRICS_PORT: '0' },
      });
      await worker.waitForOutput('Event history on');
      [archiver] = archiverProcesses(worker.pid);
      expect(archiver).toBeDefined();
      await own.cleanup();
      await worker.kill();
      // Its clients would reconnect forever; the stop's deadline (5 s) ends it.
      await waitFor(() => !alive(archiver as number), {
        timeoutMs: 15_000,
        description: 'archiver gone with its worker, Redis down',
      });
    } finally {
      if (archiver !== undefined && alive(archiver)) process.kill(archiver, 'SIGKILL');
      await own.cleanup();
    }
  }, 60_000);
});

/** Live child processes of `parent` running the archiver. */
function archiverProcesses(parent: number): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) !== parent || fields[0] === 'Z') continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('archiver-main')) {
        found.push(Number(entry));
      }
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

/** A process's nice value (field 19 of /proc/<pid>/stat). */
function niceness(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}
