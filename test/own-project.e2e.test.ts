import {
  accessSync,
  constants,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { closeRedis, createRedis, idempotencyKey, jobIdFor, openQueue } from '@groq-webhooks/queue';
import { sign } from '@groq-webhooks/signature';
import {
  freePort,
  type RunningProcess,
  startPostgres,
  startProcess,
  startRedis,
  stopAllProcesses,
  type TestPostgres,
  type TestRedis,
  waitFor,
} from '@groq-webhooks/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from './support/paths.js';
import {
  deliverInOrder,
  example,
  exampleDatabase,
  expectedState,
  lifecycleEvents,
  run,
  type SentEvent,
  storedState,
  userEnv,
} from './support/project.js';

// groq-webhooks used as people use BullMQ or Hono: installed from its packages (the tarballs of
// `pnpm pack:packages` stand in for a registry) with plain npm into a project outside this
// checkout, next to the project's own dependencies (pg). The project's .ts handler module is the
// PostgreSQL example's, run by the installed bins; then the same project runs a worker with
// startWorker() and mounts createIngest().app in its own Hono server.

/** The packed packages: the public ones and the internal ones they need at run time. */
const PACKED = [
  'core',
  'ingest',
  'worker',
  'dashboard',
  'cli',
  'config',
  'queue',
  'signature',
  'telemetry',
  'archive',
] as const;
/** Workspace packages that stay private: never packed, never installed. */
const PRIVATE = ['testing', 'local', 'handlers', 'e2e', 'bench'];
const BINS = [
  'groq-webhooks',
  'groq-webhooks-ingest',
  'groq-webhooks-worker',
  'groq-webhooks-dashboard',
];
const SECRET = 'whsec_OwnProjectEndToEnd0123456789abcdef';

const timings: Record<string, number> = {};
let project: string;
let redis: TestRedis;
let pg: TestPostgres;

function bin(name: string): string {
  return join(project, 'node_modules', '.bin', name);
}

function versionOf(name: string): string {
  const dir = ['core', 'config', 'queue', 'signature', 'telemetry', 'archive', 'cli'].includes(name)
    ? 'packages'
    : 'apps';
  return JSON.parse(readFileSync(join(ROOT, dir, name, 'package.json'), 'utf8')).version;
}

beforeAll(async () => {
  let mark = Date.now();
  // Packed once per run; built first by turbo (cached when nothing changed).
  await run('pnpm', ['pack:packages'], { cwd: ROOT, env: {}, timeoutMs: 300_000 });
  timings.pack = Date.now() - mark;
  const packs = join(ROOT, 'packs');
  const tarballs = PACKED.map((name) =>
    join(packs, `groq-webhooks-${name}-${versionOf(name)}.tgz`),
  );
  for (const tarball of tarballs) expect(existsSync(tarball), tarball).toBe(true);
  for (const name of PRIVATE) {
    expect(readdirSync(packs).some((file) => file.startsWith(`groq-webhooks-${name}-`))).toBe(
      false,
    );
  }

  mark = Date.now();
  project = mkdtempSync(join(tmpdir(), 'groq-own-project-'));
  writeFileSync(
    join(project, 'package.json'),
    // An ES module project, as the example's package.json makes it.
    `${JSON.stringify({ name: 'my-webhooks', version: '1.0.0', private: true, type: 'module' }, null, 2)}\n`,
  );
  // npm's own cache (~/.npm) is reused from run to run: only a first run downloads.
  await run(
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      '--loglevel=error',
      ...tarballs,
      'pg@8.23.1',
      'hono@4.13.19',
      '@hono/node-server@2.1.8',
      '@types/pg@8.23.1',
      '@types/node@20.19.43',
    ],
    { cwd: project, env: userEnv(), timeoutMs: 300_000 },
  );
  timings.npmInstall = Date.now() - mark;
  writeFileSync(join(project, 'handlers.ts'), example.handlers());
  [redis, pg] = await Promise.all([startRedis(), startPostgres()]);
}, 600_000);

afterAll(async () => {
  await stopAllProcesses();
  await redis?.cleanup();
  await pg?.cleanup();
  if (project) rmSync(project, { recursive: true, force: true });
  const seconds = Object.entries(timings).map(
    ([step, ms]) => `${step} ${(ms / 1000).toFixed(1)} s`,
  );
  console.log(`[own project] ${seconds.join(', ')}`);
});

/** Bare package names a compiled file imports (static, dynamic and re-exports). */
function importedPackages(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const names = new Set<string>();
  const pattern = /\bfrom\s*'([^']+)'|\bimport\s*\(\s*'([^']+)'\s*\)|^\s*import\s*'([^']+)'/gm;
  for (const match of text.matchAll(pattern)) {
    const specifier = (match[1] ?? match[2] ?? match[3]) as string;
    if (specifier.startsWith('.')) continue;
    const parts = specifier.split('/');
    names.add(specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] as string));
  }
  return [...names];
}

function jsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return jsFiles(path);
    return entry.name.endsWith('.js') ? [path] : [];
  });
}

describe('installed with npm from the packed tarballs, outside the checkout', () => {
  it('gives every package a complete manifest and only run-time dependencies', async () => {
    const builtins = new Set([...builtinModules, ...builtinModules.map((name) => `node:${name}`)]);
    for (const name of PACKED) {
      const dir = join(project, 'node_modules', '@groq-webhooks', name);
      const text = readFileSync(join(dir, 'package.json'), 'utf8');
      expect(text, name).not.toContain('workspace:');
      const manifest = JSON.parse(text);
      expect(manifest.license, name).toBe('MIT');
      expect(manifest.engines?.node, name).toBe('>=20');
      expect(manifest.files, name).toEqual(['dist']);
      expect(manifest.private, name).toBeUndefined();
      const entry = manifest.exports?.['.'];
      expect(existsSync(join(dir, entry?.types ?? 'missing')), `${name} types`).toBe(true);
      expect(existsSync(join(dir, entry?.default ?? 'missing')), `${name} entry`).toBe(true);
      // What the compiled code imports is declared as a dependency (not a dev one), and npm
      // installed it.
      const declared = new Set(Object.keys(manifest.dependencies ?? {}));
      for (const file of jsFiles(join(dir, 'dist'))) {
        for (const imported of importedPackages(file)) {
          if (builtins.has(imported)) continue;
          expect(declared.has(imported), `${name}: ${file} imports ${imported}`).toBe(true);
        }
      }
      for (const dependency of declared) {
        const found =
          existsSync(join(project, 'node_modules', dependency, 'package.json')) ||
          existsSync(join(dir, 'node_modules', dependency, 'package.json'));
        expect(found, `${name} needs ${dependency}`).toBe(true);
      }
    }
    for (const name of PRIVATE) {
      expect(existsSync(join(project, 'node_modules', '@groq-webhooks', name)), name).toBe(false);
    }
    // Every package loads with what npm installed (no dev dependency, nothing from the checkout).
    const names = PACKED.map((name) => `'@groq-webhooks/${name}'`).join(', ');
    const output = await run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `for (const name of [${names}]) await import(name); console.log('loaded ${PACKED.length}');`,
      ],
      { cwd: project, env: userEnv() },
    );
    expect(output).toContain(`loaded ${PACKED.length}`);
    for (const name of BINS) {
      accessSync(bin(name), constants.X_OK);
      expect(readFileSync(bin(name), 'utf8').split('\n')[0], name).toBe('#!/usr/bin/env node');
      expect(statSync(bin(name)).mode & 0o111, name).not.toBe(0);
    }
  }, 60_000);

  it('type-checks the example and a startWorker/createIngest program against the installed types', async () => {
    writeFileSync(join(project, 'tsconfig.json'), example.tsconfig());
    writeFileSync(join(project, 'program.ts'), TYPED_PROGRAM);
    writeFileSync(
      join(project, 'tsconfig.program.json'),
      JSON.stringify({ extends: './tsconfig.json', files: ['handlers.ts', 'program.ts'] }),
    );
    await run(process.execPath, [TSC, '-p', 'tsconfig.program.json'], {
      cwd: project,
      env: userEnv(),
    });
    writeFileSync(join(project, 'missing.ts'), MISSING_HANDLER);
    writeFileSync(
      join(project, 'tsconfig.missing.json'),
      JSON.stringify({ extends: './tsconfig.json', files: ['missing.ts'] }),
    );
    const refused = await run(process.execPath, [TSC, '-p', 'tsconfig.missing.json'], {
      cwd: project,
      env: userEnv(),
    }).then(
      () => 'compiled',
      (error: Error) => error.message,
    );
    expect(refused).toMatch(/missing\.ts.*TS2741: Property '"resource\.deleted"' is missing/s);
  }, 60_000);

  it('runs the dashboard bin', async () => {
    const port = await freePort();
    const token = 'own-project-admin-token-0123456789';
    const dashboard = startProcess(bin('groq-webhooks-dashboard'), [], {
      cwd: project,
      env: userEnv({ REDIS_URL: redis.url, ADMIN_TOKEN: token, DASHBOARD_PORT: String(port) }),
    });
    await dashboard.waitForOutput('dashboard listening', 30_000);
    const stats = await fetch(`http://127.0.0.1:${port}/api/stats`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(stats.status).toBe(200);
    expect(await stats.json()).toHaveProperty('counts');
    const page = await fetch(`http://127.0.0.1:${port}/`, {
      headers: { authorization: `Basic ${Buffer.from(`admin:${token}`).toString('base64')}` },
    });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<html');
    await expectCleanStop(dashboard);
  }, 60_000);

  it('runs the bins with the example .ts handlers: one PostgreSQL row per event, also redelivered', async () => {
    const started = Date.now();
    const database = await exampleDatabase(pg, 'own_bins');
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/webhooks/groq`;
    const ingest = startProcess(bin('groq-webhooks-ingest'), [], {
      cwd: project,
      env: userEnv({
        GROQ_WEBHOOK_SECRET: SECRET,
        REDIS_URL: redis.url,
        PORT: String(port),
        HOST: '127.0.0.1',
      }),
    });
    const worker = startProcess(bin('groq-webhooks-worker'), [], {
      cwd: project,
      env: userEnv({
        REDIS_URL: redis.url,
        HANDLERS_MODULE: './handlers.ts',
        WORKER_METRICS_PORT: '0',
        DATABASE_URL: database,
      }),
    });
    const [, ready] = await Promise.all([
      ingest.waitForOutput('ingest listening', 30_000),
      worker.waitForOutput('"Worker ready"', 30_000),
    ]);
    // The installed BullMQ is the reviewed one: the queue's fast path is used, not the fallback.
    expect(JSON.parse(ready).queuePath).toBe('fast');
    expect(ingest.output()).not.toContain('Running without the queue fast path');
    const events = lifecycleEvents('bins');
    const send = async (event: SentEvent) => {
      const output = await trigger(url, event);
      expect(output).toMatch(new RegExp(`${event.id}\\s+200 \\{"received":true\\}`));
    };
    await deliverInOrder(events, send, pg, database);
    expect(await storedState(pg, database)).toEqual(expectedState('bins'));

    // Delivered a second time: the ingest knows every event, nothing runs again.
    for (const event of events) {
      expect(await trigger(url, event)).toContain('"duplicate":true');
    }
    // A third time after Redis forgot them (as if a worker had died between its handler and the
    // done-marker, and the job were gone): the handlers run again, and their own idempotency
    // (ON CONFLICT on the event id) keeps one row per event and the resources as they were.
    await forget(events.map((event) => event.id));
    for (const event of events) await send(event);
    await waitFor(
      () =>
        events.every((event) =>
          worker
            .logLines()
            .some((line) => line.eventId === event.id && line.msg === 'Event already stored'),
        ),
      { timeoutMs: 20_000, description: 'the handlers to run again' },
    );
    expect(await storedState(pg, database)).toEqual(expectedState('bins'));
    const rows = await pg.query<{ count: string }>(
      'select count(*) from groq_events',
      [],
      database,
    );
    expect(Number(rows[0]?.count)).toBe(events.length);

    // A wrong secret: 401 and nothing stored.
    const refused = await trigger(url, events[0] as SentEvent, 'whsec_not_the_right_one').catch(
      (error: Error) => error.message,
    );
    expect(refused).toMatch(/401 \{"error":"Invalid signature"/);
    await expectCleanStop(ingest, worker);
    timings.bins = Date.now() - started;
  }, 180_000);

  it('runs a user worker.mjs with startWorker() and a Hono server mounting createIngest().app', async () => {
    const started = Date.now();
    const database = await exampleDatabase(pg, 'own_api');
    const port = await freePort();
    writeFileSync(join(project, 'worker.mjs'), WORKER_MJS);
    writeFileSync(join(project, 'server.mjs'), SERVER_MJS);
    // Settings are given in code; none of the SPEC variables is in the environment.
    const env = userEnv({
      MY_REDIS_URL: redis.url,
      MY_SECRET: SECRET,
      MY_PORT: String(port),
      DATABASE_URL: database,
    });
    const worker = startProcess(process.execPath, ['worker.mjs'], { cwd: project, env });
    const server = startProcess(process.execPath, ['server.mjs'], { cwd: project, env });
    await Promise.all([
      worker.waitForOutput('my worker is up', 30_000),
      server.waitForOutput('my server is listening', 30_000),
    ]);
    const base = `http://127.0.0.1:${port}`;

    const events = lifecycleEvents('api');
    await deliverInOrder(
      events,
      async (event) => {
        expect(await trigger(`${base}/webhooks/groq`, event)).toMatch(
          new RegExp(`${event.id}\\s+200`),
        );
      },
      pg,
      database,
    );
    expect((await storedState(pg, database)).events).toEqual(expectedState('api').events);
    expect(worker.output()).toContain('"handlers":"given to startWorker"');

    // The mounted app keeps the HTTP contract: 401, 405, 413 (also chunked) …
    const body = JSON.stringify({
      id: 'evt_wrong',
      type: 'resource.created',
      data: {},
      created: new Date().toISOString(),
    });
    const wrong = await fetch(`${base}/webhooks/groq`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', ...sign({ secret: 'whsec_wrong', body }) },
    });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toEqual({ error: 'Invalid signature', code: 'invalid_signature' });
    const get = await fetch(`${base}/webhooks/groq`);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    const big = 'x'.repeat(4096);
    const tooLarge = await fetch(`${base}/webhooks/groq`, { method: 'POST', body: big });
    expect(tooLarge.status).toBe(413);
    const chunked = await fetch(`${base}/webhooks/groq`, {
      method: 'POST',
      body: new ReadableStream({
        start(controller) {
          for (let i = 0; i < 8; i += 1) controller.enqueue(new TextEncoder().encode(big));
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(413);
    expect(await chunked.json()).toMatchObject({ code: 'payload_too_large' });

    // … and the user's own routes still answer.
    const home = await fetch(`${base}/`);
    expect(await home.text()).toBe('my app home');
    const order = await fetch(`${base}/api/orders/42`);
    expect(await order.json()).toEqual({ order: '42' });
    expect((await fetch(`${base}/ready`)).status).toBe(200);

    await expectCleanStop(server, worker);
    timings.api = Date.now() - started;
  }, 180_000);
});

/** `groq-webhooks trigger` from the project's bins, for one event; rejects on a non-2xx. */
function trigger(url: string, event: SentEvent, secret = SECRET): Promise<string> {
  return run(
    bin('groq-webhooks'),
    [
      'trigger',
      event.type,
      '--url',
      url,
      '--secret',
      secret,
      '--id',
      event.id,
      '--data',
      JSON.stringify(event.data),
    ],
    { cwd: project, env: userEnv() },
  );
}

/** Drops what Redis knows of these events: their done-markers and their (completed) jobs. */
async function forget(eventIds: readonly string[]): Promise<void> {
  const client = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'worker');
  const queue = openQueue(
    client,
    { index: 0, name: 'groq-events', prefix: '{groq}' },
    { jobAttempts: 8, backoffBaseMs: 1000 },
  );
  try {
    for (const eventId of eventIds) {
      await queue.remove(jobIdFor(eventId));
      await client.del(idempotencyKey(eventId));
    }
  } finally {
    await queue.close();
    await closeRedis(client);
  }
}

async function expectCleanStop(...processes: RunningProcess[]): Promise<void> {
  const codes = await Promise.all(processes.map((process) => process.stop('SIGTERM', 20_000)));
  expect(codes).toEqual(processes.map(() => 0));
}

/** The repository's TypeScript compiler (the project under test installs none). */
const TSC = join(
  dirname(createRequire(import.meta.url).resolve('typescript/package.json')),
  'bin',
  'tsc',
);

const TYPED_PROGRAM = `import { startWorker } from '@groq-webhooks/worker';
import { createIngest } from '@groq-webhooks/ingest';
import { Hono } from 'hono';
import handlers from './handlers.js';

const worker = await startWorker({ handlers, workerConcurrency: 4, logLevel: 'warn' });
const ingest = await createIngest({ secrets: ['whsec_x'], maxBodyBytes: 4096 });
const app = new Hono();
app.route('/webhooks/groq', ingest.app);
const text: string = await worker.registry.metrics();
void text;
await worker.close(1000);
await ingest.close();
`;

const MISSING_HANDLER = `import { startWorker } from '@groq-webhooks/worker';

await startWorker({
  handlers: { 'resource.created': async () => {}, 'resource.updated': async () => {} },
});
`;

const WORKER_MJS = `// A user's own worker process: startWorker() with handlers written right here.
import { defineHandlers } from '@groq-webhooks/core';
import { startWorker } from '@groq-webhooks/worker';
import pg from 'pg';

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });

async function store(event, ctx) {
  await pool.query(
    \`INSERT INTO groq_events (event_id, type, resource_id, payload, created)
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING\`,
    [ctx.eventId, event.type, event.data.id, event.data, event.created],
  );
  ctx.logger.info({ resourceId: event.data.id }, 'stored by my worker');
}

const worker = await startWorker({
  handlers: defineHandlers({
    'resource.created': store,
    'resource.updated': store,
    'resource.deleted': store,
  }),
  redisUrl: process.env.MY_REDIS_URL,
  queueName: 'my-app-events',
  workerConcurrency: 4,
  workerMetricsPort: 0,
});
console.log('my worker is up');

process.once('SIGTERM', async () => {
  await worker.close();
  await pool.end();
});
`;

const SERVER_MJS = `// A user's own Hono server, with the webhook receiver mounted beside its routes.
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { createIngest } from '@groq-webhooks/ingest';

const ingest = await createIngest({
  secrets: [process.env.MY_SECRET],
  redisUrl: process.env.MY_REDIS_URL,
  queueName: 'my-app-events',
  maxBodyBytes: 2048,
});

const app = new Hono();
app.get('/', (c) => c.text('my app home'));
app.get('/api/orders/:id', (c) => c.json({ order: c.req.param('id') }));
app.get('/ready', async (c) => ((await ingest.isReady()) ? c.text('ok') : c.text('wait', 503)));
app.route('/webhooks/groq', ingest.app);

const server = serve({ fetch: app.fetch, port: Number(process.env.MY_PORT), hostname: '127.0.0.1' }, () =>
  console.log('my server is listening'),
);

process.once('SIGTERM', () => {
  server.close(async () => {
    await ingest.close();
  });
});
`;
