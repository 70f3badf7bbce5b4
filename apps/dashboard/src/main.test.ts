import { fileURLToPath } from 'node:url';
import {
  freePort,
  type RunningProcess,
  startProcess,
  startRedis,
  type TestRedis,
} from '@groq-webhooks/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const TOKEN = 'process-test-token-abcdefghijkl';

describe('dashboard process (dist/main.js)', () => {
  let redis: TestRedis;
  const children: RunningProcess[] = [];

  function dashboard(env: Record<string, string | undefined>): RunningProcess {
    const child = startProcess('node', [MAIN], { env });
    children.push(child);
    return child;
  }

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterEach(async () => {
    // Only the dashboards: stopAllProcesses would take this file's redis-server with them.
    await Promise.all(children.splice(0).map((child) => child.kill()));
  });
  afterAll(async () => redis?.cleanup());

  it('refuses to start without ADMIN_TOKEN: one line, non-zero exit', async () => {
    const child = dashboard({
      ADMIN_TOKEN: undefined,
      REDIS_URL: redis.url,
      DASHBOARD_PORT: String(await freePort()),
    });
    const code = await child.exited;
    expect(code).not.toBe(0);
    expect(child.output()).toBe('Invalid configuration: ADMIN_TOKEN is required\n');
  });

  it('refuses a short ADMIN_TOKEN the same way', async () => {
    const child = dashboard({
      ADMIN_TOKEN: 'short',
      REDIS_URL: redis.url,
      DASHBOARD_PORT: String(await freePort()),
    });
    expect(await child.exited).not.toBe(0);
    expect(child.output().trim().split('\n')).toHaveLength(1);
    expect(child.output()).toContain('ADMIN_TOKEN');
    expect(child.output()).not.toContain('short');
  });

  it('serves on DASHBOARD_HOST:DASHBOARD_PORT, never logs the token, and exits 0 on SIGTERM', async () => {
    const port = await freePort();
    const child = dashboard({
      ADMIN_TOKEN: TOKEN,
      REDIS_URL: redis.url,
      DASHBOARD_PORT: String(port),
      DASHBOARD_HOST: '127.0.0.1',
      LOG_LEVEL: 'debug',
    });
    await child.waitForOutput('dashboard listening');
    const base = `http://127.0.0.1:${port}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/api/stats`)).status).toBe(401);
    const authorized = await fetch(`${base}/api/stats`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(authorized.status).toBe(200);
    expect(((await authorized.json()) as { counts: { failed: number } }).counts.failed).toBe(0);
    expect(await child.stop('SIGTERM')).toBe(0);
    expect(child.output()).not.toContain(TOKEN);
    expect(child.output()).toContain('dashboard stopped');
  });
});
