import {
  chooseQueuePath,
  closeRedis,
  createRedis,
  type EventJobData,
  EventProducer,
  FailedEvents,
  type Job,
  type RedisClient,
  STOCK_PATH,
  Worker,
  waitForRedis,
} from '@groq-webhooks/queue';
import { createLogger } from '@groq-webhooks/telemetry';
import { captureLines, startRedis, type TestRedis, waitFor } from '@groq-webhooks/testing';
import type { Hono } from 'hono';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createApp } from './app.js';

const TOKEN = 'dashboard-test-token-0123456789';
const settings = {
  queueName: 'dash-events',
  queuePrefix: '{dash}',
  queueShards: 1,
  jobAttempts: 2,
  backoffBaseMs: 1,
};
const HOST = 'dashboard.test:3001';
type Envelope = EventJobData['event'];
const bearer = { authorization: `Bearer ${TOKEN}` };
const basic = (user: string, password: string) => ({
  authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
});

function event(id: string, data: Record<string, unknown>): Envelope {
  return { id, type: 'resource.created', data, created: '2026-11-28T10:00:00Z' };
}

describe('dashboard app (in-process) over a real redis-server', () => {
  let redis: TestRedis;
  const clients: RedisClient[] = [];
  let events: FailedEvents;
  let producer: EventProducer;
  let worker: Worker | undefined;
  let app: Hono;
  let adminClient: RedisClient;
  let asset: string;

  function client(role: 'producer' | 'worker' | 'admin'): RedisClient {
    const created = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, role);
    clients.push(created);
    return created;
  }

  function request(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (!headers.has('host')) headers.set('host', HOST);
    return Promise.resolve(app.request(`http://${HOST}${path}`, { ...init, headers }));
  }

  /** Enqueues events through the real producer and lets a real BullMQ worker fail them. */
  async function failEvents(ids: string[]): Promise<void> {
    for (const id of ids) {
      await producer.enqueue(
        { event: event(id, { fail: true }), receivedAt: new Date().toISOString(), keyIndex: 0 },
        2000,
      );
    }
    await waitFor(
      async () => {
        const states = await Promise.all(ids.map(async (id) => (await events.show(id))?.state));
        return states.every((state) => state === 'failed');
      },
      { timeoutMs: 15_000 },
    );
  }

  beforeAll(async () => {
    redis = await startRedis();
    adminClient = client('admin');
    expect(await waitForRedis(adminClient, 5000)).toBe(true);
    events = new FailedEvents({ client: adminClient, settings });
    const producerClient = client('producer');
    await waitForRedis(producerClient, 5000);
    producer = new EventProducer({ client: producerClient, settings, path: STOCK_PATH });
    worker = new Worker<{ event: Envelope }, void, string>(
      'dash-events',
      async (job: Job<{ event: Envelope }, void, string>) => {
        if (job.data.event.data.fail === true)
          throw new Error(`handler broke on ${job.data.event.id}`);
      },
      { connection: client('worker'), prefix: '{dash}', settings: { backoffStrategy: () => 1 } },
    );
    worker.on('error', () => {});
    app = createApp({
      events,
      adminToken: TOKEN,
      isRedisReady: () => adminClient.status === 'ready',
    });
    const page = await request('/', { headers: bearer });
    const match = /href="(static\/css\/[^"]+\.css)"/.exec(await page.text());
    expect(match?.[1]).toBeDefined();
    asset = `/${match?.[1]}`;
  });
  beforeEach(async () => {
    await events.removeAll();
  });
  afterAll(async () => {
    await worker?.close();
    await producer?.close();
    await events?.close();
    await Promise.all(clients.map((c) => closeRedis(c)));
    await redis?.cleanup();
  });

  const guarded: [string, string][] = [
    ['GET', '/'],
    ['GET', '/queue/dash-events'],
    ['GET', '/api/queues'],
    ['PUT', '/api/queues/dash-events/retry/failed'],
    ['GET', '/api/failed'],
    ['GET', '/api/failed/evt_x'],
    ['DELETE', '/api/failed/evt_x'],
    ['POST', '/api/failed/evt_x/retry'],
    ['POST', '/api/failed/retry-all'],
    ['POST', '/api/failed/remove-all'],
    ['GET', '/api/stats'],
    ['GET', '/nope'],
  ];
  const wrong: [string, Record<string, string>][] = [
    ['no credentials', {}],
    ['a wrong bearer token', { authorization: 'Bearer wrong-token-0123456789012' }],
    ['the token minus its last character', { authorization: `Bearer ${TOKEN.slice(0, -1)}` }],
    ['the token plus a character', { authorization: `Bearer ${TOKEN}x` }],
    ['Basic with a wrong password', basic('admin', 'wrong')],
    ['Basic with the token as user name', basic(TOKEN, '')],
    ['another scheme', { authorization: `Token ${TOKEN}` }],
  ];

  it('answers 401 with a Basic challenge on every route, the page and a static asset', async () => {
    for (const [method, path] of [...guarded, ['GET', asset] as [string, string]]) {
      for (const [, headers] of wrong) {
        const response = await request(path, { method, headers });
        expect(response.status, `${method} ${path}`).toBe(401);
        expect(response.headers.get('www-authenticate')).toBe(
          'Basic realm="groq-webhooks", charset="UTF-8"',
        );
        expect(await response.json()).toEqual({ error: 'Unauthorized', code: 'unauthorized' });
      }
    }
  });

  it('lets the token in as Bearer and as Basic password with any user', async () => {
    for (const headers of [bearer, basic('admin', TOKEN), basic('', TOKEN)]) {
      const page = await request('/', { headers });
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<title>groq-webhooks</title>');
      const css = await request(asset, { headers });
      expect(css.status).toBe(200);
      expect(css.headers.get('content-type')).toContain('text/css');
      expect((await request('/api/failed', { headers })).status).toBe(200);
      expect((await request('/api/stats', { headers })).status).toBe(200);
      expect((await request('/api/queues', { headers })).status).toBe(200);
    }
  });

  it('serves /healthz without credentials and says nothing but ok', async () => {
    const response = await request('/healthz');
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('ok');
  });

  it('lists, shows, retries and removes a real failed job through the API', async () => {
    await failEvents(['evt_api_1', 'evt:api/2']);
    const list = (await (await request('/api/failed', { headers: bearer })).json()) as {
      total: number;
      events: { eventId: string; lastError: string; attempts: number }[];
    };
    expect(list.total).toBe(2);
    expect(list.events.find((e) => e.eventId === 'evt_api_1')).toMatchObject({
      attempts: 2,
      lastError: 'handler broke on evt_api_1',
    });
    expect((await request('/api/failed?limit=0', { headers: bearer })).status).toBe(400);

    // Ids with ':' and '/' travel percent-encoded.
    const odd = encodeURIComponent('evt:api/2');
    const shown = await request(`/api/failed/${odd}`, { headers: bearer });
    expect(shown.status).toBe(200);
    const detail = (await shown.json()) as {
      payload: Envelope;
      failures: { error: string; stack: string }[];
    };
    expect(detail.payload).toEqual(event('evt:api/2', { fail: true }));
    expect(detail.failures.map((f) => f.error)).toEqual([
      'Error: handler broke on evt:api/2',
      'Error: handler broke on evt:api/2',
    ]);

    const retried = await request('/api/failed/evt_api_1/retry', {
      method: 'POST',
      headers: bearer,
    });
    expect(retried.status).toBe(200);
    expect(await retried.json()).toEqual({ retried: true });
    // It ran again with a fresh budget: two more attempts, failed again.
    await waitFor(async () => {
      const d = await events.show('evt_api_1');
      return d?.state === 'failed' && d.failures.length === 4 && d.attempts === 2;
    });

    const removed = await request(`/api/failed/${odd}`, { method: 'DELETE', headers: bearer });
    expect(removed.status).toBe(200);
    expect(await removed.json()).toEqual({ removed: true });
    expect((await request(`/api/failed/${odd}`, { headers: bearer })).status).toBe(404);
    const again = await request(`/api/failed/${odd}`, { method: 'DELETE', headers: bearer });
    expect(again.status).toBe(404);
    expect(await again.json()).toEqual({ error: 'Unknown event', code: 'not_found' });
  });

  it('retries all and removes all through the API', async () => {
    await failEvents(['evt_all_1', 'evt_all_2', 'evt_all_3']);
    await worker?.pause();
    try {
      const retried = await request('/api/failed/retry-all', { method: 'POST', headers: bearer });
      expect(await retried.json()).toEqual({ total: 3, done: 3, skipped: 0 });
      const stats = (await (await request('/api/stats', { headers: bearer })).json()) as {
        counts: Record<string, number>;
        remembered: { events: number; bytes: number };
      };
      expect(stats.counts.waiting).toBe(3);
      expect(stats.counts.failed).toBe(0);
      // The events remembered as done (none of these: they failed) and their memory.
      expect(stats.remembered).toMatchObject({
        events: expect.any(Number),
        bytes: expect.any(Number),
      });
    } finally {
      worker?.resume();
    }
    await waitFor(async () => (await events.stats()).counts.failed === 3, { timeoutMs: 15_000 });
    const removed = await request('/api/failed/remove-all', { method: 'POST', headers: bearer });
    expect(await removed.json()).toEqual({ total: 3, done: 3, skipped: 0 });
    expect((await events.list({ limit: 10 })).total).toBe(0);
  });

  it("gives Bull Board's own Retry a fresh attempt budget too", async () => {
    await failEvents(['evt_board']);
    await worker?.pause();
    try {
      const jobId = (await events.show('evt_board'))?.jobId ?? '';
      const response = await request(`/api/queues/dash-events/${jobId}/retry`, {
        method: 'PUT',
        headers: bearer,
      });
      expect(response.status).toBe(204);
      const detail = await events.show('evt_board');
      expect(detail?.state).toBe('waiting');
      expect(detail?.attempts).toBe(0);
    } finally {
      worker?.resume();
    }
  });

  it('survives a stored job nested 100,000 levels: API, Bull Board pages and job view answer, healthy jobs shown, logged once', async () => {
    const { lines, destination } = captureLines();
    const logger = createLogger({ service: 'dashboard', destination });
    const logged = createApp({
      events,
      adminToken: TOKEN,
      isRedisReady: () => adminClient.status === 'ready',
      logger,
    });
    const ask = (path: string) =>
      Promise.resolve(
        logged.request(`http://${HOST}${path}`, { headers: { ...bearer, host: HOST } }),
      );
    // Stored as the ingest stored bodies before it refused deep ones: the text as received.
    const levels = 100_000;
    const deepJson = `{"id":"evt_deep","type":"resource.created","data":{"fail":true,"deep":${'['.repeat(levels)}${']'.repeat(levels)}},"created":"2026-11-28T10:00:00Z"}`;
    // The fast path stores the body's text as given, as the ingest does.
    const { path: fast } = await chooseQueuePath('on', { isCluster: false });
    const textClient = client('producer');
    await waitForRedis(textClient, 5000);
    const textProducer = new EventProducer({ client: textClient, settings, path: fast });
    await textProducer.enqueue(
      {
        event: event('evt_deep', { fail: true }),
        receivedAt: new Date().toISOString(),
        keyIndex: 0,
      },
      2000,
      deepJson,
    );
    await textProducer.close();
    await failEvents(['evt_deep', 'evt_healthy']);

    const detail = await ask('/api/failed/evt_deep');
    expect(detail.status).toBe(200);
    expect(await detail.json()).toMatchObject({
      eventId: 'evt_deep',
      state: 'failed',
      payload: null,
      payloadProblem: 'payload nested more than 1000 levels deep: too deep to show',
    });
    for (const status of ['failed', 'latest']) {
      for (let poll = 0; poll < 2; poll++) {
        const page = await ask(`/api/queues?activeQueue=dash-events&status=${status}&page=1`);
        expect(page.status).toBe(200);
        const body = (await page.json()) as { queues: { jobs: { id: string; data: unknown }[] }[] };
        const jobs = body.queues[0]?.jobs ?? [];
        expect(jobs.find((job) => job.id === 'evt-evt_deep')?.data).toEqual({
          unrenderable: 'data nested more than 1000 levels deep: too deep to show',
        });
        expect(jobs.find((job) => job.id === 'evt-evt_healthy')?.data).toMatchObject({
          event: { id: 'evt_healthy', data: { fail: true } },
        });
      }
    }
    const single = await ask('/api/queues/dash-events/evt-evt_deep');
    expect(single.status).toBe(200);
    const warnings = lines.filter((line) => line.level === 'warn');
    expect(warnings).toEqual([
      expect.objectContaining({
        msg: 'failed event shown without its payload',
        eventId: 'evt_deep',
      }),
      expect.objectContaining({
        msg: 'job data nested more than 1000 levels deep: too deep to show: shown as a placeholder',
        eventId: 'evt_deep',
        field: 'data',
      }),
    ]);
    expect(lines.filter((line) => line.level === 'error')).toEqual([]);
  });

  it('refuses cross-site state changes (403) and allows same-origin ones', async () => {
    await failEvents(['evt_csrf']);
    const crossSite: Record<string, string>[] = [
      { origin: 'https://evil.example' },
      { origin: 'null' },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site', origin: 'http://other.dashboard.test:3001' },
      { 'sec-fetch-site': 'same-origin', origin: 'https://evil.example' },
    ];
    const actions: [string, string][] = [
      ['POST', '/api/failed/evt_csrf/retry'],
      ['DELETE', '/api/failed/evt_csrf'],
      ['POST', '/api/failed/remove-all'],
      ['PUT', '/api/queues/dash-events/retry/failed'],
    ];
    for (const [method, path] of actions) {
      for (const headers of crossSite) {
        const response = await request(path, { method, headers: { ...bearer, ...headers } });
        expect(response.status, `${method} ${path} ${JSON.stringify(headers)}`).toBe(403);
        expect(await response.json()).toEqual({
          error: 'Cross-site request refused',
          code: 'cross_site_request',
        });
      }
    }
    expect((await events.show('evt_csrf'))?.state).toBe('failed');
    const sameOrigin = await request('/api/failed/evt_csrf', {
      method: 'DELETE',
      headers: { ...bearer, origin: `http://${HOST}`, 'sec-fetch-site': 'same-origin' },
    });
    expect(sameOrigin.status).toBe(200);
    // Reading cross-site is harmless (the browser keeps the answer from the other site).
    const read = await request('/api/stats', {
      headers: { ...bearer, origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' },
    });
    expect(read.status).toBe(200);
  });

  it('answers 503 while Redis is unreachable', async () => {
    const deadClient = createRedis(
      { redisUrl: 'redis://127.0.0.1:1', redisClusterNodes: undefined },
      'admin',
    );
    clients.push(deadClient);
    const deadEvents = new FailedEvents({ client: deadClient, settings });
    const deadApp = createApp({
      events: deadEvents,
      adminToken: TOKEN,
      isRedisReady: () => deadClient.status === 'ready',
      waitForRedis: (timeoutMs) => waitForRedis(deadClient, timeoutMs),
    });
    const started = Date.now();
    const response = await deadApp.request('/api/stats', { headers: bearer });
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('5');
    expect(Date.now() - started).toBeLessThan(4000);
    // Board pages need no Redis and still render; their data calls get the same 503.
    expect((await deadApp.request('/', { headers: bearer })).status).toBe(200);
    expect((await deadApp.request('/api/queues', { headers: bearer })).status).toBe(503);
    expect(await response.json()).toEqual({
      error: 'Queue unavailable',
      code: 'queue_unavailable',
    });
    await deadEvents.close().catch(() => {});
  });
});
