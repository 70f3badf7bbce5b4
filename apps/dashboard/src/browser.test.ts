import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
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
import {
  freePort,
  type RunningProcess,
  startProcess,
  startRedis,
  stopAllProcesses,
  type TestRedis,
  waitFor,
} from '@groq-webhooks/testing';
import { type BrowserContext, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const SCREENSHOT = join(ROOT, 'test-artifacts', 'dashboard-failed.png');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const TOKEN = 'browser-test-token-0123456789abcdef';
const EVENT_ID = 'evt_browser_failed_42';
const settings = {
  queueName: 'groq-events',
  queuePrefix: '{groq}',
  queueShards: 1,
  jobAttempts: 2,
  backoffBaseMs: 1,
};

describe('dashboard in a real browser (Chromium via playwright-core)', () => {
  let redis: TestRedis;
  let dashboard: RunningProcess;
  let base: string;
  const clients: RedisClient[] = [];
  let worker: Worker | undefined;
  let context: BrowserContext | undefined;
  let events: FailedEvents;
  const profile = mkdtempSync(join(tmpdir(), 'groq-chromium-'));

  beforeAll(async () => {
    redis = await startRedis();
    const client = (role: 'producer' | 'worker' | 'admin'): RedisClient => {
      const created = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, role);
      clients.push(created);
      return created;
    };
    // One real failed event: enqueued by the producer, failed by a real BullMQ worker.
    const producerClient = client('producer');
    await waitForRedis(producerClient, 5000);
    const producer = new EventProducer({ client: producerClient, settings, path: STOCK_PATH });
    await producer.enqueue(
      {
        event: {
          id: EVENT_ID,
          type: 'resource.updated',
          data: { id: 'res_9' },
          created: '2026-11-28T10:00:00Z',
        },
        receivedAt: new Date().toISOString(),
        keyIndex: 0,
      },
      2000,
    );
    await producer.close();
    worker = new Worker<EventJobData, void, string>(
      'groq-events',
      async (job: Job<EventJobData, void, string>) => {
        throw new Error(`downstream API refused ${job.data.event.id}`);
      },
      { connection: client('worker'), prefix: '{groq}', settings: { backoffStrategy: () => 1 } },
    );
    worker.on('error', () => {});
    events = new FailedEvents({ client: client('admin'), settings });
    await waitFor(async () => (await events.show(EVENT_ID))?.state === 'failed', {
      timeoutMs: 15_000,
    });
    await worker.close();

    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    dashboard = startProcess('node', [MAIN], {
      env: { ADMIN_TOKEN: TOKEN, REDIS_URL: redis.url, DASHBOARD_PORT: String(port) },
      cwd: ROOT,
    });
    await dashboard.waitForOutput('dashboard listening');
  });
  afterAll(async () => {
    await context?.close();
    await events?.close();
    await stopAllProcesses();
    await Promise.all(clients.map((c) => closeRedis(c)));
    await redis?.cleanup();
    rmSync(profile, { recursive: true, force: true });
  });

  it('logs in with HTTP credentials, sees the failed event in the failed list, and retries it', async () => {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      httpCredentials: { username: 'admin', password: TOKEN },
      viewport: { width: 1400, height: 900 },
    });
    const page = context.pages()[0] ?? (await context.newPage());
    const response = await page.goto(`${base}/queue/groq-events?status=failed`);
    expect(response?.status()).toBe(200);
    await page.getByText(EVENT_ID).first().waitFor({ timeout: 20_000 });
    await page.getByText(`downstream API refused ${EVENT_ID}`).first().waitFor({ timeout: 20_000 });
    mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(statSync(SCREENSHOT).size).toBeGreaterThan(10_000);

    // A same-origin action from the board passes the cross-site check and resets the budget.
    await page.getByRole('button', { name: 'Retry all' }).click();
    const retried = page.waitForResponse(
      (r) =>
        r.request().method() === 'PUT' && r.url().endsWith('/api/queues/groq-events/retry/failed'),
    );
    await page.getByRole('button', { name: 'Confirm' }).click();
    expect((await retried).status()).toBe(200);
    const detail = await events.show(EVENT_ID);
    expect(detail?.state).toBe('waiting');
    expect(detail?.attempts).toBe(0);
  }, 60_000);

  it('without credentials the browser is refused (401 challenge it cannot answer)', async () => {
    const anonymous = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    });
    try {
      const page = await anonymous.newPage();
      // Headless Chromium cannot show the login prompt, so the navigation fails outright.
      await expect(page.goto(`${base}/queue/groq-events?status=failed`)).rejects.toThrow(
        /ERR_INVALID_AUTH_CREDENTIALS/,
      );
    } finally {
      await anonymous.close();
    }
  }, 60_000);
});
