import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HistoryStore, migrate, openHistoryPool, type StreamEntry } from '@groq-webhooks/archive';
import {
  closeRedis,
  createRedis,
  type HistoryRecord,
  openQueues,
  type RedisClient,
  waitForRedis,
} from '@groq-webhooks/queue';
import {
  freePort,
  startPostgres,
  startRedis,
  type TestPostgres,
  type TestRedis,
} from '@groq-webhooks/testing';
import type { Pool } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { capture } from './__fixtures__/capture.js';
import { HISTORY_OFF } from './events.js';
import { run } from './program.js';

const T0 = Date.parse('2026-11-28T14:00:00Z');

function delivery(id: string, type: string, at: number): HistoryRecord {
  const payload = `{"id":${JSON.stringify(id)},"type":${JSON.stringify(type)},"data":{"id":"res_1"},"created":"2026-11-28T13:59:00Z"}`;
  return {
    kind: 'delivery',
    eventId: id,
    type,
    created: '2026-11-28T13:59:00Z',
    receivedAt: at,
    keyIndex: 1,
    outcome: 'received',
    payload,
  };
}

function attemptRecord(
  id: string,
  n: number,
  outcome: 'failed' | 'retrying' | 'completed',
): HistoryRecord {
  return {
    kind: 'attempt',
    eventId: id,
    type: 'resource.updated',
    attempt: n,
    startedAt: T0 + n * 1000,
    endedAt: T0 + n * 1000 + 12,
    worker: 'groq-worker-7',
    outcome,
    ...(outcome === 'completed' ? {} : { error: `downstream said no (${n})`, errorType: 'Error' }),
  };
}

describe('groq-webhooks events against a real PostgreSQL and Redis', () => {
  let postgres: TestPostgres;
  let redis: TestRedis;
  let url: string;
  let pool: Pool;
  let client: RedisClient;
  let env: Record<string, string>;
  const emptyLocal = mkdtempSync(join(tmpdir(), 'groq-cli-local-'));

  async function cli(args: string[], extraEnv: Record<string, string | undefined> = env) {
    const captured = capture(extraEnv);
    const code = await run(args, captured.io);
    return { code, out: captured.out(), err: captured.err() };
  }

  async function jobCount(): Promise<number> {
    const queues = openQueues(client, { ...settings, jobAttempts: 8, backoffBaseMs: 1000 });
    const counts = await Promise.all(queues.map((q) => q.getWaitingCount()));
    await Promise.all(queues.map((q) => q.close()));
    return counts.reduce((a, b) => a + b, 0);
  }

  const settings = { queueName: 'cli-events', queuePrefix: '{cli}', queueShards: 2 };

  beforeAll(async () => {
    postgres = await startPostgres();
    url = await postgres.createDatabase('groq_cli');
    redis = await startRedis();
    client = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'admin');
    await waitForRedis(client, 5000);
    env = {
      ARCHIVE_DATABASE_URL: url,
      REDIS_URL: redis.url,
      QUEUE_NAME: settings.queueName,
      QUEUE_PREFIX: settings.queuePrefix,
      QUEUE_SHARDS: String(settings.queueShards),
      GROQ_LOCAL_DIR: emptyLocal,
    };
    pool = openHistoryPool(url);
    await migrate(pool);
    const records: HistoryRecord[] = [];
    for (let i = 0; i < 12; i++) {
      const type = i % 3 === 0 ? 'resource.updated' : 'resource.created';
      records.push(delivery(`evt_${String(i).padStart(2, '0')}`, type, T0 + i * 600_000));
    }
    records.push(
      attemptRecord('evt_00', 1, 'retrying'),
      attemptRecord('evt_00', 2, 'failed'),
      attemptRecord('evt_03', 1, 'completed'),
    );
    const entries: StreamEntry[] = records.map((record, i) => ({
      stream: 'seed',
      entryId: `0-${i}`,
      record,
    }));
    await new HistoryStore(pool).writeBatch(entries);
  }, 60_000);
  afterAll(async () => {
    await pool?.end();
    if (client) await closeRedis(client);
    await redis?.cleanup();
    await postgres?.cleanup();
    rmSync(emptyLocal, { recursive: true, force: true });
  });

  it('without ARCHIVE_DATABASE_URL: one line saying history is off, exit 1', async () => {
    for (const args of [
      ['events', 'list'],
      ['events', 'show', 'evt_00'],
      ['events', 'replay', '--yes'],
    ]) {
      const result = await cli(args, { GROQ_LOCAL_DIR: emptyLocal });
      expect(result.code).toBe(1);
      expect(result.err).toBe(`error: ${HISTORY_OFF}\n`);
    }
  });

  it('uses the local history database pnpm start noted in .local/archive-url', async () => {
    const local = mkdtempSync(join(tmpdir(), 'groq-cli-local-'));
    try {
      writeFileSync(join(local, 'archive-url'), `${url}\n`);
      const result = await cli(['events', 'list', '--id-prefix', 'evt_11'], {
        GROQ_LOCAL_DIR: local,
      });
      expect(result.code).toBe(0);
      expect(result.out).toContain('evt_11');
    } finally {
      rmSync(local, { recursive: true, force: true });
    }
  });

  it('lists with filters, newest first, as a table or JSON', async () => {
    const table = await cli(['events', 'list', '--type', 'resource.updated']);
    expect(table.code).toBe(0);
    const lines = table.out.trim().split('\n');
    expect(lines[0]).toMatch(
      /^EVENT ID\s+TYPE\s+STATUS\s+ATTEMPTS\s+DELIVERIES\s+RECEIVED\s+LAST ERROR$/,
    );
    expect(lines.slice(1, 5).map((line) => line.split(/\s+/)[0])).toEqual([
      'evt_09',
      'evt_06',
      'evt_03',
      'evt_00',
    ]);
    expect(lines[4]).toContain('failed');
    expect(lines[4]).toContain('downstream said no (2)');
    expect(lines.at(-1)).toBe('4 events');

    const json = await cli([
      'events',
      'list',
      '--since',
      '2026-11-28T14:00:00Z',
      '--until',
      '2026-11-28T15:00:00Z',
      '--status',
      'received',
      '--limit',
      '2',
      '--json',
    ]);
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.out) as { events: { eventId: string }[]; more: boolean };
    expect(parsed.events.map((e) => e.eventId)).toEqual(['evt_05', 'evt_04']);
    expect(parsed.more).toBe(true);
  });

  it('refuses bad filters with one line naming the flag, exit 2', async () => {
    const since = await cli(['events', 'list', '--since', 'yesterday']);
    expect(since.code).toBe(2);
    expect(since.err).toBe('error: --since must be an ISO-8601 time, e.g. 2026-11-28T14:00:00Z\n');
    const status = await cli(['events', 'replay', '--status', 'done', '--dry-run']);
    expect(status.code).toBe(2);
    expect(status.err).toContain('--status must be one of received, retrying, completed');
  });

  it('shows one event: payload as received, deliveries, every attempt; JSON too; unknown: exit 1', async () => {
    const shown = await cli(['events', 'show', 'evt_00']);
    expect(shown.code).toBe(0);
    expect(shown.out).toContain('status      failed');
    expect(shown.out).toContain('"id": "res_1"');
    expect(shown.out).toContain('2026-11-28T14:00:00.000Z  received, key 1');
    expect(shown.out).toMatch(
      /#1 {2}2026-11-28T14:00:01.000Z {2}12 ms {2}retrying {2}groq-worker-7/,
    );
    expect(shown.out).toContain('Error: downstream said no (2)');
    const json = await cli(['events', 'show', 'evt_00', '--json']);
    const event = JSON.parse(json.out) as { payload: string; attemptList: unknown[] };
    expect(event.payload).toBe(
      (delivery('evt_00', 'resource.updated', T0) as { payload: string }).payload,
    );
    expect(event.attemptList).toHaveLength(2);
    const unknown = await cli(['events', 'show', 'evt_nope']);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toBe('error: event evt_nope is not in the history (unknown, or pruned)\n');
  });

  it('replay: --dry-run changes nothing; without a terminal it needs --yes; each replay enqueues the matching events once', async () => {
    const filters = ['--type', 'resource.created', '--since', '2026-11-28T15:00:00Z'];
    const dry = await cli(['events', 'replay', ...filters, '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.out).toContain(
      'dry run: 4 events match (type=resource.created, since=2026-11-28T15:00:00.000Z)',
    );
    expect(dry.out).toContain('  evt_07  resource.created  2026-11-28T15:10:00.000Z');
    expect(await jobCount()).toBe(0);

    const refused = await cli(['events', 'replay', ...filters]);
    expect(refused.code).toBe(2);
    expect(refused.err).toBe(
      'error: refusing to replay 4 events without --yes (no terminal to confirm on)\n',
    );
    expect(await jobCount()).toBe(0);

    const first = await cli(['events', 'replay', ...filters, '--yes']);
    expect(first.code).toBe(0);
    expect(first.out).toMatch(
      /^replayed 4 of 4 events as rpl_[0-9a-z]+ in ([0-9]+ ms|[0-9]+\.[0-9] s) \([0-9,]+ events\/s\)\n$/,
    );
    expect(await jobCount()).toBe(4);
    const second = await cli(['events', 'replay', ...filters, '--yes', '--limit', '2']);
    expect(second.out).toMatch(/^replayed 2 of 2 events/);
    expect(await jobCount()).toBe(6);
    const none = await cli(['events', 'replay', '--id-prefix', 'nothing_', '--yes']);
    expect(none.out).toBe('no events match (idPrefix=nothing_)\n');
  });

  it('an unreachable history database: one line naming where, exit 1', async () => {
    const port = await freePort();
    const result = await cli(['events', 'list'], {
      ...env,
      ARCHIVE_DATABASE_URL: `postgres://someone:hunter2@127.0.0.1:${port}/history`,
    });
    expect(result.code).toBe(1);
    expect(result.err).toMatch(
      new RegExp(`^error: history database not usable at 127.0.0.1:${port}/history: .+\\n$`),
    );
    expect(result.err).not.toContain('hunter2');
  });
});
