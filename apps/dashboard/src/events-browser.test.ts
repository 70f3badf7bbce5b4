import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HistoryStore, migrate, openHistoryPool, type StreamEntry } from '@groq-webhooks/archive';
import type { HistoryRecord } from '@groq-webhooks/queue';
import {
  freePort,
  type RunningProcess,
  startPostgres,
  startProcess,
  startRedis,
  type TestPostgres,
  type TestRedis,
} from '@groq-webhooks/testing';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventRecords } from './__fixtures__/history.js';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const SCREENSHOT = join(ROOT, 'test-artifacts', 'dashboard-events.png');
const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'events-browser-token-0123456789';
const ARGS = ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'];

/** Twenty events over the last twenty minutes; evt_page_7 failed after three attempts. */
function records(now: number): HistoryRecord[] {
  return Array.from({ length: 20 }, (_, i) => {
    const id = `evt_page_${i}`;
    const failing = (n: number, last: boolean) => ({
      outcome: last ? ('failed' as const) : ('retrying' as const),
      error: `billing API 502 (try ${n})`,
      errorType: 'Error',
    });
    return eventRecords(
      id,
      i % 4 === 3 ? 'resource.updated' : 'resource.created',
      now - (20 - i) * 60_000,
      { id: `res_${i}`, note: '<b>not html</b>' },
      i === 7
        ? [failing(1, false), failing(2, false), failing(3, true)]
        : [{ outcome: 'completed' }],
    );
  }).flat();
}

describe('Events page in a real browser (Chromium via playwright-core)', () => {
  let postgres: TestPostgres;
  let redis: TestRedis;
  let dashboard: RunningProcess;
  let base: string;
  let browser: Browser | undefined;
  const profile = mkdtempSync(join(tmpdir(), 'groq-chromium-events-'));

  beforeAll(async () => {
    postgres = await startPostgres();
    const url = await postgres.createDatabase('groq_events_page');
    redis = await startRedis();
    const pool = openHistoryPool(url);
    try {
      await migrate(pool);
      const entries: StreamEntry[] = records(Date.now()).map((record, i) => ({
        stream: 'seed',
        entryId: `0-${i}`,
        record,
      }));
      await new HistoryStore(pool).writeBatch(entries);
    } finally {
      await pool.end();
    }
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    dashboard = startProcess('node', [MAIN], {
      env: {
        ADMIN_TOKEN: TOKEN,
        REDIS_URL: redis.url,
        DASHBOARD_PORT: String(port),
        ARCHIVE_DATABASE_URL: url,
      },
      cwd: ROOT,
    });
    await dashboard.waitForOutput('dashboard listening');
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await dashboard?.stop('SIGTERM', 10_000);
    await redis?.cleanup();
    await postgres?.cleanup();
    rmSync(profile, { recursive: true, force: true });
  });

  it('filters by type, opens an event and shows its attempts', async () => {
    const context = await (browser as Browser).newContext({
      httpCredentials: { username: 'admin', password: TOKEN },
      viewport: { width: 1400, height: 1000 },
    });
    try {
      const page = await context.newPage();
      const response = await page.goto(`${base}/events`);
      expect(response?.status()).toBe(200);
      // The default range is the last hour: every seeded event is in it.
      await page.getByText('20 event(s)').waitFor({ timeout: 20_000 });
      expect(await page.locator('svg rect').count()).toBeGreaterThan(0);

      await page.fill('#type', 'resource.updated');
      await page.click('button[type=submit]');
      await page.getByText('5 event(s)').waitFor({ timeout: 20_000 });
      const ids = await page.locator('#rows tr td:first-child').allTextContents();
      expect(ids).toEqual([
        'evt_page_19',
        'evt_page_15',
        'evt_page_11',
        'evt_page_7',
        'evt_page_3',
      ]);

      await page.getByRole('link', { name: 'evt_page_7' }).click();
      await page.getByRole('heading', { name: 'Attempts (3)' }).waitFor({ timeout: 20_000 });
      const attempts = await page.locator('#attempts tr').allTextContents();
      expect(attempts).toHaveLength(3);
      expect(attempts[0]).toContain('retrying');
      expect(attempts[2]).toContain('failed');
      expect(attempts[2]).toContain('Error: billing API 502 (try 3)');
      expect(attempts[2]).toContain('groq-worker-42');
      // The payload is shown as text, never as markup.
      expect(await page.locator('#payload').textContent()).toContain('"note": "<b>not html</b>"');
      expect(await page.locator('#detail b').count()).toBe(0);

      mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      expect(statSync(SCREENSHOT).size).toBeGreaterThan(10_000);
    } finally {
      await context.close();
    }
  }, 60_000);

  it('without the token: 401 (the page and its API)', async () => {
    const context = await (browser as Browser).newContext();
    try {
      const page = await context.newPage();
      await expect(page.goto(`${base}/events`)).rejects.toThrow(/ERR_INVALID_AUTH_CREDENTIALS/);
      const api = await context.request.get(`${base}/api/events`);
      expect(api.status()).toBe(401);
    } finally {
      await context.close();
    }
  }, 60_000);
});
