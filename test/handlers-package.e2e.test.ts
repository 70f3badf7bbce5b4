import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  startPostgres,
  startProcess,
  startRedis,
  stopAllProcesses,
  type TestPostgres,
  type TestRedis,
  waitFor,
} from '@groq-webhooks/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildByHand, parseDockerfile } from './support/dockerfile.js';
import { ROOT } from './support/paths.js';
import {
  copyCheckout,
  deliverInOrder,
  example,
  exampleDatabase,
  expectedState,
  isAlive,
  lifecycleEvents,
  mergedEnv,
  queueSender,
  run,
  storedState,
  userEnv,
} from './support/project.js';

// The fork-and-edit route, as a user takes it in a copy of this checkout: a handler with its own
// dependency (pg) in packages/handlers, added with `pnpm --filter … add`, runs under
// `pnpm worker`, and the Dockerfile's steps (run by hand: no Docker engine here) give a worker
// image directory that runs it with nothing mounted.

const HANDLERS = '@groq-webhooks/handlers';

let scratch: string;
let fork: string;
let redis: TestRedis;
let pg: TestPostgres;
const started = Date.now();

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'groq-fork-'));
  fork = join(scratch, 'fork');
  copyCheckout(fork);
  const env = userEnv({ CI: 'true', TURBO_TELEMETRY_DISABLED: '1' });
  // As in a user's checkout: installed, then the dependency added to the handlers package.
  await run('pnpm', ['install', '--frozen-lockfile', '--ignore-scripts'], { cwd: fork, env });
  await run('pnpm', ['--filter', HANDLERS, 'add', 'pg@8.23.1', '--ignore-scripts'], {
    cwd: fork,
    env,
  });
  // Its types, for the typecheck the image build runs.
  await run('pnpm', ['--filter', HANDLERS, 'add', '-D', '@types/pg@8.23.1', '--ignore-scripts'], {
    cwd: fork,
    env,
  });
  writeFileSync(join(fork, 'packages', 'handlers', 'src', 'index.ts'), example.handlers());
  await run(
    'pnpm',
    [
      'turbo',
      'run',
      'build',
      `--filter=@groq-webhooks/local...`,
      '--filter=@groq-webhooks/worker...',
    ],
    { cwd: fork, env },
  );
  [redis, pg] = await Promise.all([startRedis(), startPostgres()]);
}, 180_000);

afterAll(async () => {
  await stopAllProcesses();
  await redis?.cleanup();
  await pg?.cleanup();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
  console.log(`[fork route] ${((Date.now() - started) / 1000).toFixed(1)} s in all`);
});

describe('packages/handlers, the fork-and-edit route', () => {
  it('takes its own dependency without one added to the repo root', () => {
    const handlers = JSON.parse(readFileSync(join(fork, 'packages/handlers/package.json'), 'utf8'));
    expect(handlers.dependencies.pg).toBe('8.23.1');
    const root = JSON.parse(readFileSync(join(fork, 'package.json'), 'utf8'));
    expect(root.dependencies).toEqual(
      JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).dependencies,
    );
    expect(existsSync(join(fork, 'node_modules', 'pg'))).toBe(false);
  });

  it('runs under pnpm worker when HANDLERS_MODULE is not set', async () => {
    const database = await exampleDatabase(pg, 'fork_pnpm');
    const worker = startProcess('pnpm', ['worker'], {
      cwd: fork,
      env: userEnv({
        REDIS_URL: redis.url,
        QUEUE_NAME: 'fork-pnpm',
        WORKER_METRICS_PORT: '0',
        DATABASE_URL: database,
      }),
    });
    const ready = await worker.waitForOutput('"Worker ready"', 30_000);
    expect(JSON.parse(ready).handlers).toBe(join(fork, 'packages/handlers/src/index.ts'));
    const queue = await queueSender(redis.url, 'fork-pnpm');
    await deliverInOrder(lifecycleEvents('pnpm'), queue.send, pg, database).finally(queue.close);
    expect(await storedState(pg, database)).toEqual(expectedState('pnpm'));
    // pnpm does not pass SIGTERM on; the worker sees its launcher go and shuts down cleanly.
    await worker.stop();
    await worker.waitForOutput('"Worker stopped"', 20_000);
    const pid = Number(JSON.parse(ready).pid);
    await waitFor(() => !isAlive(pid), { timeoutMs: 10_000, description: 'the worker to exit' });
  });

  it("builds a worker image, by the Dockerfile's steps, that runs it with nothing mounted", async () => {
    const dockerfile = parseDockerfile(readFileSync(join(fork, 'Dockerfile'), 'utf8'));
    const pnpmVersion = (await run('pnpm', ['--version'], { cwd: fork, env: userEnv() })).trim();
    const image = buildByHand({
      dockerfile,
      context: fork,
      scratch: join(scratch, 'image'),
      buildArgs: { APP: 'worker' },
      env: mergedEnv(userEnv()),
      beforeRun: (command) => {
        // The image installs pnpm globally; here the same version is already on PATH.
        const global = /^npm install -g pnpm@(\S+)$/.exec(command);
        if (global) expect(global[1]).toBe(pnpmVersion);
        return global === null;
      },
    });
    expect(image.stages).toEqual(['runtime', 'app-worker']);
    expect(image.cmd).toEqual(['node', 'dist/main.js']);
    // The handlers and their own dependencies are in the image; the worker has no pg of its own.
    expect(image.env.HANDLERS_MODULE).toBe(join(image.workdir, 'handlers/src/index.ts'));
    expect(existsSync(join(image.workdir, 'handlers/node_modules/pg/package.json'))).toBe(true);
    expect(existsSync(join(image.workdir, 'node_modules/pg'))).toBe(false);
    expect(existsSync(join(image.workdir, 'handlers/node_modules/@groq-webhooks/core'))).toBe(true);

    const database = await exampleDatabase(pg, 'fork_image');
    const [command, ...args] = image.cmd as [string, ...string[]];
    const worker = startProcess(command === 'node' ? process.execPath : command, args, {
      cwd: image.workdir,
      env: userEnv({
        ...image.env,
        REDIS_URL: redis.url,
        QUEUE_NAME: 'fork-image',
        WORKER_METRICS_PORT: '0',
        DATABASE_URL: database,
      }),
    });
    await worker.waitForOutput('"Worker ready"', 30_000);
    const queue = await queueSender(redis.url, 'fork-image');
    await deliverInOrder(lifecycleEvents('image'), queue.send, pg, database).finally(queue.close);
    expect(await storedState(pg, database)).toEqual(expectedState('image'));
    expect(await worker.stop()).toBe(0);
  }, 180_000);
});
