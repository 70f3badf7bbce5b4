import { rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ARCHIVE_URL_FILE,
  databaseLocation,
  findRepoRoot,
  localStateDir,
  whenParentGone,
} from '@groq-webhooks/config';
import { prettyFactory } from 'pino-pretty';
import { type ArchiveSource, resolveArchive } from './archive-source.js';
import { checkoutHandlersModule } from './handlers-module.js';
import { ensureLocalSecrets } from './local-state.js';
import { NoRedisError, type RedisSource, resolveRedis } from './redis-source.js';
import { Supervisor } from './supervisor.js';

// `pnpm start`: the whole system on this machine, with nothing configured.
const root = findRepoRoot(fileURLToPath(new URL('.', import.meta.url))) ?? process.cwd();
const env = process.env;
const tty = process.stdout.isTTY === true;
const say = (text: string) => process.stderr.write(`${text}\n`);

function port(name: string, fallback: number): number {
  const value = env[name];
  if (value === undefined || value === '') return fallback;
  if (!/^[0-9]{1,5}$/.test(value) || Number(value) < 1 || Number(value) > 65535) {
    say(
      `Invalid configuration: ${name} must be a whole number from 1 to 65535, got ${JSON.stringify(value)}`,
    );
    process.exit(78);
  }
  return Number(value);
}

const ingestPort = port('PORT', 3000);
const dashboardPort = port('DASHBOARD_PORT', 3001);
const metricsPort = env.WORKER_METRICS_PORT === '0' ? 0 : port('WORKER_METRICS_PORT', 9464);
const probePort = port('START_REDIS_PORT', 6379);
const postgresProbePort = port('START_POSTGRES_PORT', 5432);
/** Where the CLI looks for Redis without REDIS_URL. */
const CLI_DEFAULT_REDIS = 'redis://127.0.0.1:6379';
const stateDir = localStateDir(env, root) ?? join(root, '.local');

let redis: RedisSource;
try {
  redis = await resolveRedis({ redisUrl: env.REDIS_URL, probePort, path: env.PATH, stateDir });
} catch (error) {
  if (error instanceof NoRedisError) {
    say(error.message);
    process.exit(1);
  }
  throw error;
}

const local = ensureLocalSecrets(stateDir);

let archive: ArchiveSource;
try {
  archive = await resolveArchive({
    archiveUrl: env.ARCHIVE_DATABASE_URL,
    probePort: postgresProbePort,
    stateDir,
    env,
    note: say,
  });
} catch (error) {
  say(`Could not set up the event history database: ${(error as Error).message}`);
  if (redis.kind === 'spawned') await redis.stop();
  process.exit(1);
}
// The CLI, run from another terminal, finds the history database here (as it finds dev-secret).
const archiveUrlFile = join(stateDir, ARCHIVE_URL_FILE);
writeFileSync(archiveUrlFile, `${archive.url}\n`, { mode: 0o600 });
const webhookSecret = env.GROQ_WEBHOOK_SECRET || local.webhookSecret;
const adminToken = env.ADMIN_TOKEN || local.adminToken;

const shared = {
  ...env,
  REDIS_URL: redis.url,
  ARCHIVE_DATABASE_URL: archive.url,
  LOG_LEVEL: env.LOG_LEVEL || 'info',
};
const supervisor = new Supervisor({
  mode: tty ? 'pretty' : 'json',
  write: (line) => process.stdout.write(line),
  pretty: prettyFactory({
    colorize: tty,
    ignore: 'pid,hostname,service',
    translateTime: 'SYS:HH:MM:ss.l',
  }),
  onUnexpectedExit: (name, code) => {
    say(`${name} exited unexpectedly (${code}); stopping everything.`);
    void shutdown(1);
  },
});

let stopping: Promise<void> | undefined;
async function shutdown(code: number): Promise<void> {
  stopping ??= (async () => {
    say('Stopping ingest, worker and dashboard…');
    await supervisor.stopAll(20_000);
    if (redis.kind === 'spawned') await redis.stop();
    if (archive.kind === 'embedded') {
      // Its port dies with this process: the CLI must not be pointed at it any more.
      rmSync(archiveUrlFile, { force: true });
      await archive.stop().catch(() => {});
    }
    process.exit(code);
  })();
  return stopping;
}
process.once('SIGINT', () => void shutdown(0));
process.once('SIGTERM', () => void shutdown(0));

// Run by `pnpm start`, a SIGTERM usually reaches pnpm, which exits without passing it on; the
// runner would be left orphaned with its children. So it stops when its launcher goes away.
if (env.npm_lifecycle_event === 'start') whenParentGone(process.ppid, () => void shutdown(0));

const app = (name: string) => join(root, 'apps', name, 'dist', 'main.js');
const handlersModule = checkoutHandlersModule(env, root);
supervisor.start({
  name: 'ingest',
  entry: app('ingest'),
  env: {
    ...shared,
    GROQ_WEBHOOK_SECRET: webhookSecret,
    HOST: '127.0.0.1',
    PORT: String(ingestPort),
  },
});
supervisor.start({
  name: 'worker',
  entry: app('worker'),
  env: {
    ...shared,
    WORKER_METRICS_PORT: String(metricsPort),
    HANDLERS_MODULE: handlersModule,
  },
});
supervisor.start({
  name: 'dashboard',
  entry: app('dashboard'),
  env: {
    ...shared,
    ADMIN_TOKEN: adminToken,
    DASHBOARD_HOST: '127.0.0.1',
    DASHBOARD_PORT: String(dashboardPort),
  },
});

const readyUrl = `http://127.0.0.1:${ingestPort}/readyz`;
const deadline = Date.now() + 30_000;
for (;;) {
  const ready = await fetch(readyUrl).then(
    (response) => response.ok,
    () => false,
  );
  if (ready) break;
  if (Date.now() > deadline) {
    say(`ingest did not become ready at ${readyUrl} within 30 s; stopping.`);
    await shutdown(1);
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
}

const redisLine = {
  configured: `Redis: ${redis.url} (REDIS_URL)`,
  existing: `Redis: ${redis.url} (already running)`,
  spawned:
    redis.kind === 'spawned' && redis.adopted
      ? `Redis: ${redis.url} (throwaway redis-server left running by a start that was killed: its events are kept; stopped on exit)`
      : `Redis: ${redis.url} (throwaway redis-server, stopped on exit)`,
}[redis.kind];
const archiveLine = {
  configured: `History: ${databaseLocation(archive.url)} (ARCHIVE_DATABASE_URL)`,
  existing: `History: ${databaseLocation(archive.url)} (this machine's PostgreSQL)`,
  embedded: `History: embedded PostgreSQL (PGlite) on ${databaseLocation(archive.url)}, data in ${archive.kind === 'embedded' ? archive.dataDir : ''}`,
}[archive.kind];
const secretLine = env.GROQ_WEBHOOK_SECRET
  ? 'Webhook secret: from GROQ_WEBHOOK_SECRET'
  : `Webhook secret: local development secret in ${join(stateDir, 'dev-secret')}${local.created.includes('dev-secret') ? ' (new)' : ''}`;
say(
  [
    '',
    'groq-webhooks is running on 127.0.0.1 only.',
    `  ${redisLine}`,
    `  ${archiveLine}`,
    `  ${secretLine}`,
    `  Webhook URL:   http://127.0.0.1:${ingestPort}/webhooks/groq`,
    `  Dashboard:     http://127.0.0.1:${dashboardPort}/  (user: admin, password: the admin token)`,
    `  Admin token:   ${env.ADMIN_TOKEN ? 'from ADMIN_TOKEN' : `${adminToken}  (kept in ${join(stateDir, 'admin-token')})`}`,
    metricsPort
      ? `  Worker metrics: http://127.0.0.1:${metricsPort}/metrics`
      : '  Worker metrics: off',
    `  Handlers:      ${env.HANDLERS_MODULE?.trim() ? `${handlersModule} (HANDLERS_MODULE)` : relative(root, handlersModule)}`,
    '',
    'Send a first event end to end (in another terminal):',
    ingestPort === 3000
      ? '  pnpm groq-webhooks trigger resource.created'
      : `  pnpm groq-webhooks trigger resource.created --url http://127.0.0.1:${ingestPort}/webhooks/groq`,
    'Then look it up in the history: pnpm groq-webhooks events list, or the Events page',
    `  http://127.0.0.1:${dashboardPort}/events`,
    // The CLI's failed-event commands read Redis, by default at 127.0.0.1:6379.
    ...(redis.url === CLI_DEFAULT_REDIS
      ? []
      : ['Inspect failed events with:', `  REDIS_URL=${redis.url} pnpm groq-webhooks failed list`]),
    '',
    'Stop with Ctrl-C.',
    '',
  ].join('\n'),
);
