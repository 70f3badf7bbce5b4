import { ConfigError } from '@groq-webhooks/config';
import { closeRedis, createRedis, jobIdFor, openQueue } from '@groq-webhooks/queue';
import { computeSignature } from '@groq-webhooks/signature';
import { freePort, startRedis, type TestRedis, waitFor } from '@groq-webhooks/testing';
import { Hono } from 'hono';
import { afterAll, describe, expect, it } from 'vitest';
import { createIngest, type Ingest } from './create-ingest.js';

const SECRET = 'whsec_MountedReceiverSecret0123456789';
const opened: Ingest[] = [];
let redis: TestRedis | undefined;

afterAll(async () => {
  await Promise.all(opened.map((ingest) => ingest.close()));
  await redis?.cleanup();
});

function signed(body: string, secret = SECRET): Record<string, string> {
  const timestamp = String(Math.floor(Date.now() / 1000));
  return {
    'content-type': 'application/json',
    'x-groq-timestamp': timestamp,
    'x-groq-signature': computeSignature(secret, timestamp, body),
  };
}

function event(id: string): string {
  return JSON.stringify({ id, type: 'resource.created', data: { id: 'res_1' }, created: '2026' });
}

/** A user's server: its own routes, and the receiver mounted beside them. */
function userServer(ingest: Ingest): Hono {
  const app = new Hono();
  app.get('/', (c) => c.text('home'));
  app.post('/api/orders', (c) => c.json({ created: true }, 201));
  app.route('/hooks/groq', ingest.app);
  return app;
}

describe('createIngest, mounted in a user Hono app', () => {
  it('starts while Redis is down (503 with Retry-After), then enqueues once it answers', async () => {
    const port = await freePort();
    const queueName = 'mounted-events';
    const ingest = await createIngest({
      secrets: [SECRET],
      redisUrl: `redis://127.0.0.1:${port}`,
      queueName,
      enqueueTimeoutMs: 300,
      logLevel: 'silent',
    });
    opened.push(ingest);
    const app = userServer(ingest);
    expect(await ingest.isReady()).toBe(false);

    const down = await app.request('/hooks/groq', {
      method: 'POST',
      body: event('evt_mounted_1'),
      headers: signed(event('evt_mounted_1')),
    });
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toBe('5');
    expect(await down.json()).toEqual({ error: 'Queue unavailable', code: 'queue_unavailable' });

    redis = await startRedis({ port });
    await waitFor(() => ingest.isReady(), { timeoutMs: 10_000, description: 'ingest ready' });
    const up = await app.request('/hooks/groq', {
      method: 'POST',
      body: event('evt_mounted_1'),
      headers: signed(event('evt_mounted_1')),
    });
    expect(up.status).toBe(200);
    expect(await up.json()).toEqual({ received: true });
    const client = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'admin');
    const queue = openQueue(
      client,
      { index: 0, name: queueName, prefix: '{groq}' },
      { jobAttempts: 8, backoffBaseMs: 1000 },
    );
    try {
      const job = await queue.getJob(jobIdFor('evt_mounted_1'));
      expect(job?.data.event.id).toBe('evt_mounted_1');
    } finally {
      await queue.close();
      await closeRedis(client);
    }
    expect(await ingest.registry.metrics()).toMatch(
      /groq_webhook_requests_total\{code="received",service="ingest"\} 1/,
    );

    // The user's own routes are untouched.
    expect(await (await app.request('/')).text()).toBe('home');
    expect((await app.request('/api/orders', { method: 'POST' })).status).toBe(201);
  });

  it('keeps the contract under its mount point: 401, 400, 405, 413 also when streamed', async () => {
    const ingest = await createIngest({
      secrets: SECRET,
      redisUrl: 'redis://127.0.0.1:1',
      maxBodyBytes: 200,
      logLevel: 'silent',
    });
    opened.push(ingest);
    const app = userServer(ingest);
    const body = event('evt_x');
    const wrong = await app.request('/hooks/groq', {
      method: 'POST',
      body,
      headers: signed(body, 'whsec_someone_else'),
    });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toEqual({ error: 'Invalid signature', code: 'invalid_signature' });
    const notJson = await app.request('/hooks/groq', {
      method: 'POST',
      body: 'nope',
      headers: signed('nope'),
    });
    expect(notJson.status).toBe(400);
    const get = await app.request('/hooks/groq');
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    const big = 'x'.repeat(201);
    expect((await app.request('/hooks/groq', { method: 'POST', body: big })).status).toBe(413);
    const streamed = await app.request('/hooks/groq', {
      method: 'POST',
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode(big));
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(streamed.status).toBe(413);
    expect(await streamed.json()).toMatchObject({ code: 'payload_too_large' });
  });

  it('refuses bad settings with a ConfigError naming the setting and its variable', async () => {
    const error = await createIngest({ secrets: [SECRET], maxBodyBytes: 0 }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toBe(
      'Invalid configuration: maxBodyBytes (MAX_BODY_BYTES) must be a whole number from 1 to 104857600, got "0"',
    );
    const missing = await createIngest({ secrets: [] }).catch((e: unknown) => e);
    expect((missing as Error).message).toBe(
      'Invalid configuration: secrets (GROQ_WEBHOOK_SECRET) is required (a secret, or several separated by commas)',
    );
  });
});
