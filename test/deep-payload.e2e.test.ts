// Deeply nested events against real processes: the ingest refuses what no operator tool could
// show, and every operator tool (CLI, JSON API, Bull Board in a real browser) survives the jobs
// stored before that limit existed.
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  chooseQueuePath,
  closeRedis,
  createRedis,
  EventProducer,
  jobIdFor,
  type RedisClient,
  waitForRedis,
} from '@groq-webhooks/queue';
import { sign } from '@groq-webhooks/signature';
import {
  freePort,
  type RunningProcess,
  startProcess,
  startRedis,
  type TestRedis,
  waitFor,
} from '@groq-webhooks/testing';
import { type BrowserContext, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliResult, runCli } from './support/cli.js';
import { ENTRY, ROOT } from './support/paths.js';

const SECRET = 'whsec_deep_payload_e2e_secret_0123456789';
const TOKEN = 'deep-payload-e2e-admin-token-0123456789';
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const SCREENSHOT = join(ROOT, 'test-artifacts', 'dashboard-deep-payload.png');
const SIXTY = 'evt_sixty_levels';
const STORED_DEEP = 'evt_stored_100k_levels';

/** `data` nested `levels` objects deep below its own level, failing in the demo handlers. */
function nestedData(levels: number): Record<string, unknown> {
  const data: Record<string, unknown> = { demo_fail: true };
  let cursor = data;
  for (let i = 1; i < levels; i++) {
    const inner: Record<string, unknown> = {};
    cursor.next = inner;
    cursor = inner;
  }
  return data;
}

describe('deeply nested events: refused at the door, and survived by every operator tool', () => {
  let redis: TestRedis;
  let ingest: RunningProcess;
  let worker: RunningProcess;
  let dashboard: RunningProcess;
  let ingestUrl: string;
  let dashboardUrl: string;
  let context: BrowserContext | undefined;
  const clients: RedisClient[] = [];
  const profile = mkdtempSync(join(tmpdir(), 'groq-chromium-deep-'));

  function cli(args: string[]): Promise<CliResult> {
    return runCli(args, { REDIS_URL: redis.url, GROQ_WEBHOOK_SECRET: SECRET });
  }

  async function post(body: string): Promise<{ status: number; json: unknown }> {
    const response = await fetch(`${ingestUrl}/webhooks/groq`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...sign({ secret: SECRET, body }) },
      body,
    });
    return { status: response.status, json: await response.json() };
  }

  async function failedIds(): Promise<string[]> {
    const list = await cli(['failed', 'list', '--json']);
    expect(list.code, list.stderr).toBe(0);
    return (JSON.parse(list.stdout) as { events: { eventId: string }[] }).events.map(
      (event) => event.eventId,
    );
  }

  beforeAll(async () => {
    redis = await startRedis();
    const [port, dashboardPort] = [await freePort(), await freePort()];
    ingestUrl = `http://127.0.0.1:${port}`;
    dashboardUrl = `http://127.0.0.1:${dashboardPort}`;
    const shared = { REDIS_URL: redis.url, LOG_LEVEL: 'info' };
    ingest = startProcess('node', [ENTRY.ingest], {
      env: { ...shared, GROQ_WEBHOOK_SECRET: SECRET, PORT: String(port), HOST: '127.0.0.1' },
    });
    // The built-in example handlers: data.demo_fail fails an event for good at once.
    worker = startProcess('node', [ENTRY.worker], {
      env: { ...shared, HANDLERS_MODULE: '', WORKER_METRICS_PORT: '0' },
    });
    dashboard = startProcess('node', [ENTRY.dashboard], {
      env: { ...shared, ADMIN_TOKEN: TOKEN, DASHBOARD_PORT: String(dashboardPort) },
    });
    await Promise.all([
      ingest.waitForOutput('ingest listening', 20_000),
      worker.waitForOutput('Worker ready', 20_000),
      dashboard.waitForOutput('dashboard listening', 20_000),
    ]);
    await waitFor(async () => (await fetch(`${ingestUrl}/readyz`)).status === 200);
  }, 60_000);

  afterAll(async () => {
    await context?.close();
    await Promise.all([ingest?.stop(), worker?.stop(), dashboard?.stop()]);
    await Promise.all(clients.map((client) => closeRedis(client)));
    await redis?.cleanup();
    rmSync(profile, { recursive: true, force: true });
  }, 30_000);

  it('refuses a signed event nested 10,000 levels with 400 invalid_payload, queuing nothing', async () => {
    const levels = 10_000;
    const body = `{"id":"evt_10k","type":"resource.created","data":${'{"a":'.repeat(levels)}{}${'}'.repeat(levels)},"created":"2026-11-28T10:00:00Z"}`;
    expect(body.length).toBeLessThan(1_048_576);
    const refused = await post(body);
    expect(refused).toEqual({
      status: 400,
      json: {
        error: 'Invalid payload: JSON nested deeper than 64 levels',
        code: 'invalid_payload',
      },
    });
    expect(await redis.command('KEYS', '*evt_10k*')).toBe('*0\r\n');
  });

  it('a 60-level event that fails in its handler shows in failed list, failed show and /api/failed/:id', async () => {
    const body = JSON.stringify({
      id: SIXTY,
      type: 'resource.created',
      data: nestedData(60),
      created: '2026-11-28T10:00:00Z',
    });
    expect(await post(body)).toEqual({ status: 200, json: { received: true } });
    await waitFor(async () => (await failedIds()).includes(SIXTY), {
      timeoutMs: 20_000,
      description: `${SIXTY} in failed list`,
    });
    const human = await cli(['failed', 'list']);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(
      new RegExp(
        `^${SIXTY}\\s+resource\\.created\\s+1\\s+\\S+\\s+demo failure: the event asked for it`,
        'm',
      ),
    );
    const shown = await cli(['failed', 'show', SIXTY]);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stderr).toBe('');
    expect(shown.stdout).toMatch(/^state\s+failed$/m);
    expect(shown.stdout.match(/"next": \{/g)).toHaveLength(59);
    const api = await fetch(`${dashboardUrl}/api/failed/${SIXTY}`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(api.status).toBe(200);
    const detail = (await api.json()) as { payload: { data: unknown }; state: string };
    expect(detail.state).toBe('failed');
    expect(detail.payload.data).toEqual(nestedData(60));
  }, 60_000);

  it('a job nested 100,000 levels stored before the limit: the CLI and API show it as such, and work on', async () => {
    // As the ingest stored bodies before MAX_JSON_DEPTH: the text as received, via the producer.
    const client = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'producer');
    clients.push(client);
    await waitForRedis(client, 5000);
    // The fast path stores the body's text as given, as the ingest does.
    const { path } = await chooseQueuePath('auto', client);
    const producer = new EventProducer({
      client,
      path,
      settings: {
        queueName: 'groq-events',
        queuePrefix: '{groq}',
        queueShards: 1,
        jobAttempts: 8,
        backoffBaseMs: 1000,
      },
    });
    const levels = 100_000;
    const text = `{"id":"${STORED_DEEP}","type":"resource.created","data":{"demo_fail":true,"deep":${'['.repeat(levels)}${']'.repeat(levels)}},"created":"2026-11-28T10:00:00Z"}`;
    const stand = {
      id: STORED_DEEP,
      type: 'resource.created',
      data: { demo_fail: true },
      created: 'x',
    };
    expect(
      await producer.enqueue(
        { event: stand, receivedAt: new Date().toISOString(), keyIndex: 0 },
        2000,
        text,
      ),
    ).toBe('enqueued');
    await producer.close();
    await waitFor(async () => (await failedIds()).includes(STORED_DEEP), {
      timeoutMs: 20_000,
      description: `${STORED_DEEP} in failed list`,
    });
    expect(await redis.command('EXISTS', `{groq}:groq-events:${jobIdFor(STORED_DEEP)}`)).toBe(
      ':1\r\n',
    );

    const shown = await cli(['failed', 'show', STORED_DEEP]);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toContain(
      'payload:\n  (cannot be shown: payload nested more than 1000 levels deep: too deep to show)',
    );
    expect(shown.stdout).toContain('attempt 1: NonRetryableError: demo failure');
    const json = await cli(['failed', 'show', STORED_DEEP, '--json']);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ payload: null, state: 'failed' });
    const api = await fetch(`${dashboardUrl}/api/failed/${STORED_DEEP}`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(api.status).toBe(200);
    expect(await api.json()).toMatchObject({
      payload: null,
      payloadProblem: 'payload nested more than 1000 levels deep: too deep to show',
    });
    await waitFor(() =>
      dashboard.logLines().some((line) => line.msg === 'failed event shown without its payload'),
    );
  }, 60_000);

  it("Bull Board's Failed and Latest tabs in Chromium list both jobs, the stored one as a placeholder, without an error", async () => {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
      httpCredentials: { username: 'admin', password: TOKEN },
      viewport: { width: 1400, height: 1200 },
    });
    const page = context.pages()[0] ?? (await context.newPage());
    const apiStatuses: number[] = [];
    page.on('response', (response) => {
      if (new URL(response.url()).pathname.startsWith('/api/')) apiStatuses.push(response.status());
    });
    for (const status of ['failed', 'latest']) {
      const response = await page.goto(`${dashboardUrl}/queue/groq-events?status=${status}`);
      expect(response?.status()).toBe(200);
      await page.getByText(`evt-${SIXTY}`).first().waitFor({ timeout: 20_000 });
      await page.getByText(`evt-${STORED_DEEP}`).first().waitFor({ timeout: 20_000 });
      await page.getByText('demo failure: the event asked for it').first().waitFor();
      expect(await page.content()).not.toContain('Maximum call stack');
    }
    // The stored job's Data tab shows the placeholder instead of the payload.
    const card = (id: string) =>
      page
        .locator('[class*="card-"]')
        .filter({ has: page.getByText(`evt-${id}`, { exact: true }) })
        .last();
    await card(STORED_DEEP).getByRole('tab', { name: 'Data' }).click();
    await card(STORED_DEEP)
      .getByText('data nested more than 1000 levels deep: too deep to show')
      .waitFor({ timeout: 10_000 });
    // The healthy job's payload is all there.
    await card(SIXTY).getByRole('tab', { name: 'Data' }).click();
    await card(SIXTY).getByText(SIXTY).nth(1).waitFor({ timeout: 10_000 });
    mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(statSync(SCREENSHOT).size).toBeGreaterThan(10_000);
    expect(apiStatuses.length).toBeGreaterThan(0);
    expect(apiStatuses.filter((status) => status >= 500)).toEqual([]);
    expect(dashboard.logLines().filter((line) => line.level === 'error')).toEqual([]);
  }, 90_000);
});
