import { HistoryStore, migrate, openHistoryPool, type StreamEntry } from '@groq-webhooks/archive';
import {
  closeRedis,
  createRedis,
  FailedEvents,
  type HistoryRecord,
  type RedisClient,
  waitForRedis,
} from '@groq-webhooks/queue';
import {
  startPostgres,
  startRedis,
  type TestPostgres,
  type TestRedis,
} from '@groq-webhooks/testing';
import type { Hono } from 'hono';
import type { Pool } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventRecords } from './__fixtures__/history.js';
import { createApp } from './app.js';
import { openDashboardHistory } from './history.js';

const TOKEN = 'events-api-token-0123456789';
const HOST = 'dashboard.test:3001';
const settings = {
  queueName: 'dash-history',
  queuePrefix: '{dashhist}',
  queueShards: 1,
  jobAttempts: 3,
  backoffBaseMs: 10,
};
const NOW = Date.now();

function records(): HistoryRecord[] {
  return Array.from({ length: 6 }, (_, i) =>
    eventRecords(
      `evt_api_${i}`,
      i % 2 === 0 ? 'resource.created' : 'resource.deleted',
      NOW - (10 - i) * 60_000,
      { n: i },
      [
        i === 1
          ? { outcome: 'failed', error: 'no such resource', errorType: 'NonRetryableError' }
          : { outcome: 'completed' },
      ],
    ),
  ).flat();
}

describe('dashboard history API (in-process) over a real PostgreSQL and Redis', () => {
  let postgres: TestPostgres;
  let redis: TestRedis;
  let client: RedisClient;
  let pool: Pool;
  let events: FailedEvents;
  let history: ReturnType<typeof openDashboardHistory>;
  let on: Hono;
  let off: Hono;

  const request = (app: Hono, path: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    headers.set('host', HOST);
    if (!headers.has('authorization')) headers.set('authorization', `Bearer ${TOKEN}`);
    return Promise.resolve(app.request(`http://${HOST}${path}`, { ...init, headers }));
  };

  beforeAll(async () => {
    postgres = await startPostgres();
    const url = await postgres.createDatabase('groq_dash');
    redis = await startRedis();
    client = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'admin');
    await waitForRedis(client, 5000);
    events = new FailedEvents({ client, settings });
    pool = openHistoryPool(url);
    await migrate(pool);
    const entries: StreamEntry[] = records().map((record, i) => ({
      stream: 'seed',
      entryId: `0-${i}`,
      record,
    }));
    await new HistoryStore(pool).writeBatch(entries);
    history = openDashboardHistory({ databaseUrl: url, client, queues: events.queues, settings });
    const common = { events, adminToken: TOKEN, isRedisReady: () => client.status === 'ready' };
    on = createApp({ ...common, history });
    off = createApp(common);
  }, 60_000);
  afterAll(async () => {
    await history?.close();
    await events?.close();
    await pool?.end();
    if (client) await closeRedis(client);
    await redis?.cleanup();
    await postgres?.cleanup();
  });

  it('without a history: 501 history_disabled on its routes, a message on the page, the rest unchanged', async () => {
    for (const [path, method] of [
      ['/api/events', 'GET'],
      ['/api/events/evt_api_1', 'GET'],
      ['/api/event-counts', 'GET'],
      ['/api/events/replay', 'POST'],
    ] as const) {
      const response = await request(off, path, { method });
      expect(response.status).toBe(501);
      expect(await response.json()).toEqual({
        error: 'Event history is off: set ARCHIVE_DATABASE_URL',
        code: 'history_disabled',
      });
    }
    const page = await request(off, '/events');
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('Event history is off');
    expect((await request(off, '/api/failed')).status).toBe(200);
  });

  it('needs the admin token like every other route', async () => {
    for (const path of ['/events', '/api/events', '/api/events/evt_api_1']) {
      const response = await request(on, path, { headers: { authorization: 'Bearer wrong' } });
      expect(response.status).toBe(401);
    }
  });

  it('lists, filters, shows and counts', async () => {
    const list = await request(on, '/api/events?type=resource.deleted&limit=2');
    expect(list.status).toBe(200);
    const body = (await list.json()) as { events: { eventId: string }[]; more: boolean };
    expect(body.events.map((e) => e.eventId)).toEqual(['evt_api_5', 'evt_api_3']);
    expect(body.more).toBe(true);
    const failed = (await (await request(on, '/api/events?status=failed')).json()) as {
      events: { eventId: string; lastError: string }[];
    };
    expect(failed.events).toMatchObject([{ eventId: 'evt_api_1', lastError: 'no such resource' }]);

    const bad = await request(on, '/api/events?since=last-tuesday');
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({
      error: 'since must be an ISO-8601 time, e.g. 2026-11-28T14:00:00Z',
      code: 'invalid_request',
    });
    expect((await request(on, '/api/events?limit=0')).status).toBe(400);

    const shown = await request(on, '/api/events/evt_api_1');
    expect(shown.status).toBe(200);
    expect(await shown.json()).toMatchObject({
      eventId: 'evt_api_1',
      status: 'failed',
      payload:
        '{"id":"evt_api_1","type":"resource.deleted","data":{"n":1},"created":"2026-11-28T10:00:00Z"}',
      attemptList: [{ attempt: 1, errorType: 'NonRetryableError', durationMs: 40 }],
    });
    expect((await request(on, '/api/events/evt_nope')).status).toBe(404);

    const counts = (await (await request(on, '/api/event-counts')).json()) as {
      bucketSeconds: number;
      buckets: { counts: Record<string, number> }[];
    };
    expect(counts.bucketSeconds).toBe(60);
    const total = counts.buckets.flatMap((b) => Object.values(b.counts)).reduce((a, b) => a + b, 0);
    expect(total).toBe(6);
  });

  it('replays: a dry run changes nothing, a replay enqueues the matching events', async () => {
    const post = (body: unknown) =>
      request(on, '/api/events/replay', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const dry = await post({ type: 'resource.created', dryRun: true });
    expect(await dry.json()).toEqual({
      dryRun: true,
      matched: 3,
      first: ['evt_api_0', 'evt_api_2', 'evt_api_4'],
    });
    expect(await events.queues[0]?.getWaitingCount()).toBe(0);
    const done = await post({ type: 'resource.created' });
    expect(done.status).toBe(200);
    expect(await done.json()).toMatchObject({ matched: 3, enqueued: 3, skipped: 0 });
    expect(await events.queues[0]?.getWaitingCount()).toBe(3);
    expect((await post({ limit: 'ten' })).status).toBe(400);
    expect((await post([1])).status).toBe(400);
    // A browser on another site may not trigger one.
    const cross = await request(on, '/api/events/replay', {
      method: 'POST',
      headers: { origin: 'https://evil.example', 'content-type': 'application/json' },
      body: '{}',
    });
    expect(cross.status).toBe(403);
  });
});
