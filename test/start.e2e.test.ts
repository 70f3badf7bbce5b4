import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  freePort,
  type RunningProcess,
  rawCommand,
  startProcess,
  stopAllProcesses,
  waitFor,
} from '@groq-webhooks/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { ENTRY, ROOT } from './support/paths.js';
import { isAlive } from './support/project.js';

const LOCAL = join(ROOT, 'apps/local/dist/main.js');

/** The environment of a fresh machine: nothing of ours configured. */
function bareEnv(extra: Record<string, string>): Record<string, string | undefined> {
  return {
    REDIS_URL: undefined,
    REDIS_CLUSTER_NODES: undefined,
    GROQ_WEBHOOK_SECRET: undefined,
    ADMIN_TOKEN: undefined,
    HANDLERS_MODULE: undefined,
    ARCHIVE_DATABASE_URL: undefined,
    ...extra,
  };
}

/** A fresh state directory and free ports: everything a run needs to be its own. */
async function freshEnv(state: string): Promise<Record<string, string | undefined>> {
  return bareEnv({
    GROQ_LOCAL_DIR: state,
    PORT: String(await freePort()),
    DASHBOARD_PORT: String(await freePort()),
    WORKER_METRICS_PORT: String(await freePort()),
    START_REDIS_PORT: String(await freePort()),
    START_POSTGRES_PORT: String(await freePort()),
  });
}

/**
 * Waits until the runner says it is running; the port of its throwaway Redis and the pids of
 * the processes it started (every pid its JSON lines name).
 */
async function running(runner: RunningProcess): Promise<{ redisPort: number; pids: number[] }> {
  await runner.waitForOutput('groq-webhooks is running', 90_000);
  const redisLine = await runner.waitForOutput(/Redis: redis:\/\/127\.0\.0\.1:[0-9]+ \(throwaway/);
  const redisPort = Number(/127\.0\.0\.1:([0-9]+)/.exec(redisLine)?.[1]);
  const pids = await waitFor(() => {
    const found = new Set(
      runner
        .logLines()
        .filter((line) => typeof line.pid === 'number' && typeof line.service === 'string')
        .map((line) => line.pid as number),
    );
    return found.size >= 3 ? [...found] : undefined;
  });
  return { redisPort, pids };
}

describe('pnpm start', () => {
  const dirs: string[] = [];
  /** `pnpm start`s, stopped as a user would when a test fails early: they remove their Redis. */
  const starts: RunningProcess[] = [];
  afterAll(async () => {
    await Promise.all(starts.map((start) => start.stop('SIGTERM', 30_000)));
    await stopAllProcesses();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('starts its own Redis, delivers a flag-less trigger end to end and leaves nothing behind', async () => {
    const state = mkdtempSync(join(tmpdir(), 'groq-start-'));
    dirs.push(state);
    const [port, dashboardPort, metricsPort, probePort] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const env = bareEnv({
      GROQ_LOCAL_DIR: state,
      PORT: String(port),
      DASHBOARD_PORT: String(dashboardPort),
      WORKER_METRICS_PORT: String(metricsPort),
      // Nothing answers here, as on a machine without Redis running.
      START_REDIS_PORT: String(probePort),
      // Nor PostgreSQL: the embedded one is used (and the machine's is left alone).
      START_POSTGRES_PORT: String(await freePort()),
    });
    const local: RunningProcess = startProcess(process.execPath, [LOCAL], { env, cwd: ROOT });
    starts.push(local);
    const banner = await local.waitForOutput('groq-webhooks is running', 60_000);
    expect(banner).toBeDefined();
    const redisLine = await local.waitForOutput(/Redis: redis:\/\/127\.0\.0\.1:[0-9]+ \(throwaway/);
    const redisPort = Number(/127\.0\.0\.1:([0-9]+)/.exec(redisLine)?.[1]);
    expect(redisPort).not.toBe(6379);
    expect(local.output()).toContain(`http://127.0.0.1:${port}/webhooks/groq`);
    expect(local.output()).toContain(`http://127.0.0.1:${dashboardPort}/`);
    expect(readFileSync(join(state, 'dev-secret'), 'utf8')).toMatch(/^whsec_/);
    // Without HANDLERS_MODULE the worker runs this checkout's handlers package.
    expect(local.output()).toContain('Handlers:      packages/handlers/src/index.ts');
    expect(local.output()).toMatch(
      /History: embedded PostgreSQL \(PGlite\) on 127\.0\.0\.1:[0-9]+/,
    );
    expect(readFileSync(join(state, 'archive-url'), 'utf8')).toMatch(
      /^postgres:\/\/postgres@127\.0\.0\.1:/,
    );

    // The CLI finds the local secret by itself: no flags but the port this test moved.
    const trigger = startProcess(
      process.execPath,
      [ENTRY.cli, 'trigger', 'resource.created', '--id', 'evt_start_e2e'],
      {
        env: { ...env, GROQ_LOCAL_DIR: state },
        cwd: ROOT,
      },
    );
    expect(await trigger.exited).toBe(0);
    expect(trigger.output()).toContain('200');

    // The CLI finds the history database pnpm start set up, with no configuration either.
    const history = startProcess(process.execPath, [ENTRY.cli, 'events', 'list', '--json'], {
      env: { ...env, GROQ_LOCAL_DIR: state },
      cwd: ROOT,
    });
    expect(await history.exited).toBe(0);
    expect(JSON.parse(history.output())).toMatchObject({ more: false });

    await waitFor(
      () =>
        local
          .logLines()
          .find(
            (line) =>
              line.service === 'worker' &&
              line.eventId === 'evt_start_e2e' &&
              line.outcome === 'completed',
          ),
      { timeoutMs: 20_000, description: 'the worker to log evt_start_e2e processed' },
    );
    expect(
      local
        .logLines()
        .some(
          (line) =>
            line.service === 'worker' &&
            line.handlers === join(ROOT, 'packages/handlers/src/index.ts'),
        ),
    ).toBe(true);

    // The README's next step: the demo switch fails an event, and `failed list` shows it.
    const cli = (args: string[], extra: Record<string, string> = {}) =>
      startProcess(process.execPath, [ENTRY.cli, ...args], {
        env: { ...env, GROQ_LOCAL_DIR: state, ...extra },
        cwd: ROOT,
      });
    const failing = cli([
      'trigger',
      'resource.created',
      '--id',
      'evt_start_fail',
      '--data',
      '{"demo_fail":true}',
    ]);
    expect(await failing.exited).toBe(0);
    // The worker logs the outcome just before BullMQ moves the job: ask until it is listed.
    const listed = await waitFor(
      async () => {
        // Redis is not on 6379 here: the banner's command, with the REDIS_URL it printed.
        const failed = cli(['failed', 'list', '--json'], {
          REDIS_URL: `redis://127.0.0.1:${redisPort}`,
        });
        expect(await failed.exited).toBe(0);
        const list = JSON.parse(failed.output()) as {
          events: { eventId: string; lastError: string }[];
        };
        return list.events.length > 0 ? list : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 200, description: '`failed list` to show evt_start_fail' },
    );
    expect(listed.events.map((event) => event.eventId)).toEqual(['evt_start_fail']);
    expect(listed.events[0]?.lastError).toContain('demo failure');

    const pids = [
      ...new Set(
        local
          .logLines()
          .filter((line) => typeof line.pid === 'number' && line.service !== undefined)
          .map((line) => line.pid as number),
      ),
    ];
    expect(pids.length).toBeGreaterThanOrEqual(3);
    expect(await local.stop('SIGTERM', 30_000)).toBe(0);
    for (const pid of pids) expect(isAlive(pid), `pid ${pid} still running`).toBe(false);
    await expect(rawCommand(redisPort, ['PING'], 500)).rejects.toThrow();
    // The embedded database's port died with it: the CLI is not pointed at it any more.
    expect(existsSync(join(state, 'archive-url'))).toBe(false);
    // Nor is its Redis recorded as left behind.
    expect(existsSync(join(state, 'redis-server.json'))).toBe(false);
  }, 120_000);

  it('run as pnpm start, stops everything when pnpm itself gets SIGTERM', async () => {
    const state = mkdtempSync(join(tmpdir(), 'groq-start-pnpm-'));
    dirs.push(state);
    const pnpm = startProcess('pnpm', ['start'], { env: await freshEnv(state), cwd: ROOT });
    starts.push(pnpm);
    const { redisPort, pids } = await running(pnpm);
    try {
      await pnpm.stop('SIGTERM', 30_000);
      await waitFor(() => pids.every((pid) => !isAlive(pid)), {
        timeoutMs: 30_000,
        description: 'ingest, worker and dashboard to exit',
      });
      await waitFor(
        async () =>
          rawCommand(redisPort, ['PING'], 500).then(
            () => false,
            () => true,
          ),
        { timeoutMs: 10_000, description: 'the throwaway redis-server to stop' },
      );
    } finally {
      // Whatever happened above, leave nothing running.
      for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
      await rawCommand(redisPort, ['SHUTDOWN', 'NOSAVE'], 500).catch(() => {});
    }
  }, 150_000);

  it('SIGKILLed, its ingest, worker and dashboard stop by themselves; the next start adopts its Redis and stops it', async () => {
    const state = mkdtempSync(join(tmpdir(), 'groq-start-kill-'));
    dirs.push(state);
    const local = startProcess(process.execPath, [LOCAL], {
      env: await freshEnv(state),
      cwd: ROOT,
    });
    starts.push(local);
    const { redisPort, pids } = await running(local);
    try {
      await rawCommand(redisPort, ['SET', 'groq:start-e2e', 'kept']);
      await local.kill();
      await waitFor(() => pids.every((pid) => !isAlive(pid)), {
        timeoutMs: 30_000,
        description: 'ingest, worker and dashboard to exit without their runner',
      });
      // The throwaway redis-server is no Node process: it outlives a SIGKILLed runner, with
      // whatever it holds. The next start, on other ports, takes it over.
      expect(existsSync(join(state, 'redis-server.json'))).toBe(true);
      const next = startProcess(process.execPath, [LOCAL], {
        env: await freshEnv(state),
        cwd: ROOT,
      });
      starts.push(next);
      const again = await running(next);
      expect(again.redisPort).toBe(redisPort);
      expect(next.output()).toContain('left running by a start that was killed');
      expect(await rawCommand(redisPort, ['GET', 'groq:start-e2e'])).toBe('$4\r\nkept\r\n');
      expect(await next.stop('SIGTERM', 30_000)).toBe(0);
      await expect(rawCommand(redisPort, ['PING'], 500)).rejects.toThrow();
      expect(existsSync(join(state, 'redis-server.json'))).toBe(false);
    } finally {
      for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
      const dir = await rawCommand(redisPort, ['CONFIG', 'GET', 'dir'], 500).catch(() => '');
      await rawCommand(redisPort, ['SHUTDOWN', 'NOSAVE'], 500).catch(() => {});
      const path = /(\/[^\r\n]*groq-local-redis-[^\r\n]*)/.exec(dir)?.[1];
      if (path !== undefined) rmSync(path, { recursive: true, force: true });
    }
  }, 200_000);

  it('says how to get Redis, and exits non-zero, when there is none and no redis-server', async () => {
    const emptyPath = mkdtempSync(join(tmpdir(), 'groq-nopath-'));
    dirs.push(emptyPath);
    const local = startProcess(process.execPath, [LOCAL], {
      env: bareEnv({
        PATH: emptyPath,
        START_REDIS_PORT: String(await freePort()),
        START_POSTGRES_PORT: String(await freePort()),
        GROQ_LOCAL_DIR: emptyPath,
      }),
      cwd: ROOT,
    });
    expect(await local.exited).toBe(1);
    expect(local.output()).toContain('no redis-server on PATH');
    expect(local.output()).toContain('docker compose up -d redis');
    expect(local.output()).not.toMatch(/at .*\.js:[0-9]+/);
  }, 30_000);
});
