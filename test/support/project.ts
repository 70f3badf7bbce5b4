import { execFile, execFileSync } from 'node:child_process';
import { cpSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { closeRedis, createRedis, EventProducer, STOCK_PATH } from '@groq-webhooks/queue';
import type { TestPostgres } from '@groq-webhooks/testing';
import { waitFor } from '@groq-webhooks/testing';
import { ROOT } from './paths.js';

/** The PostgreSQL example project users copy (docs/examples/postgres-handlers). */
export const EXAMPLE_DIR = join(ROOT, 'docs', 'examples', 'postgres-handlers');

/** The example's handler module and schema, as users copy them. */
export const example = {
  handlers: () => readFileSync(join(EXAMPLE_DIR, 'handlers.ts'), 'utf8'),
  schema: () => readFileSync(join(EXAMPLE_DIR, 'schema.sql'), 'utf8'),
  tsconfig: () => readFileSync(join(EXAMPLE_DIR, 'tsconfig.json'), 'utf8'),
};

/**
 * The environment of a user's shell: the test's, without what `pnpm test` and this repo's
 * configuration put there (npm/pnpm script variables, our SPEC variables), plus `extra`.
 */
export function userEnv(extra: Record<string, string> = {}): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const name of Object.keys(process.env)) {
    if (/^(npm_|pnpm_|PNPM_|INIT_CWD$|NODE_PATH$|NODE_OPTIONS$|VITEST|TURBO_)/.test(name)) {
      env[name] = undefined;
    }
  }
  for (const name of [
    'GROQ_WEBHOOK_SECRET',
    'REDIS_URL',
    'REDIS_CLUSTER_NODES',
    'HANDLERS_MODULE',
    'QUEUE_NAME',
    'QUEUE_PREFIX',
    'QUEUE_SHARDS',
    'QUEUE_FAST_PATH',
    'PORT',
    'HOST',
    'ADMIN_TOKEN',
    'DATABASE_URL',
    'GROQ_LOCAL_DIR',
  ]) {
    env[name] = undefined;
  }
  return { ...env, ...extra };
}

/** `{ ...process.env, ...env }` less the undefined entries, for APIs that take a plain env. */
export function mergedEnv(env: Record<string, string | undefined>): Record<string, string> {
  const merged: Record<string, string> = {};
  for (const [name, value] of Object.entries({ ...process.env, ...env })) {
    if (value !== undefined) merged[name] = value;
  }
  return merged;
}

/** Whether a process is still running. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // An orphan that exited stays a zombie until whoever adopted it reaps it: not running.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return true;
  }
}

/** Runs a command to its end; rejects with its output when it fails. */
export function run(
  command: string,
  args: readonly string[],
  options: { cwd: string; env: Record<string, string | undefined>; timeoutMs?: number },
): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      [...args],
      {
        cwd: options.cwd,
        env: mergedEnv(options.env),
        timeout: options.timeoutMs ?? 300_000,
        maxBuffer: 64 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        if (error) {
          reject(
            new Error(`${command} ${args.join(' ')} failed: ${error.message}\n${stdout}${stderr}`),
          );
        } else resolve(stdout + stderr);
      },
    );
  });
}

/** Copies this checkout's files (tracked, and new ones not ignored) to `target`, as a fork has them. */
export function copyCheckout(target: string): void {
  const files = execFileSync(
    'git',
    ['ls-files', '-z', '--cached', '--others', '--exclude-standard'],
    {
      cwd: ROOT,
      encoding: 'utf8',
    },
  )
    .split('\0')
    .filter((file) => file !== '');
  for (const file of files) {
    // A file deleted in the working tree but still in the index is not part of the fork.
    try {
      cpSync(join(ROOT, file), join(target, file));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
}

/** Creates a database on `pg` holding the example's tables; returns its URL. */
export async function exampleDatabase(pg: TestPostgres, prefix: string): Promise<string> {
  const url = await pg.createDatabase(prefix);
  await pg.query(example.schema(), [], url);
  return url;
}

/** A `resource.*` event as the tests send it. */
export interface SentEvent {
  id: string;
  type: 'resource.created' | 'resource.updated' | 'resource.deleted';
  data: Record<string, unknown>;
}

/** Created, updated and deleted events over two resources, named with `prefix`. */
export function lifecycleEvents(prefix: string): SentEvent[] {
  return [
    {
      id: `${prefix}_a1`,
      type: 'resource.created',
      data: { id: `${prefix}_res_a`, object: 'batch', attributes: { status: 'queued' } },
    },
    {
      id: `${prefix}_b1`,
      type: 'resource.created',
      data: { id: `${prefix}_res_b`, object: 'file' },
    },
    {
      id: `${prefix}_a2`,
      type: 'resource.updated',
      data: {
        id: `${prefix}_res_a`,
        attributes: { status: 'completed' },
        previous_attributes: { status: 'queued' },
      },
    },
    { id: `${prefix}_b2`, type: 'resource.deleted', data: { id: `${prefix}_res_b` } },
  ];
}

/** Sends one event somewhere (the queue, an ingest). */
export type Send = (event: SentEvent) => Promise<void>;

/**
 * Delivers events one by one, each once stored in `url`'s `groq_events` before the next goes:
 * the order a sender keeps for one resource (created before updated before deleted).
 */
export async function deliverInOrder(
  events: readonly SentEvent[],
  send: Send,
  pg: TestPostgres,
  url: string,
): Promise<void> {
  for (const event of events) {
    await send(event);
    await waitFor(async () => (await storedState(pg, url)).events[event.id] === 1, {
      timeoutMs: 20_000,
      description: `${event.id} stored`,
    });
  }
}

/** A {@link Send} that puts events straight into a queue, as the ingest would. */
export async function queueSender(
  redisUrl: string,
  queueName: string,
): Promise<{ send: Send; close(): Promise<void> }> {
  const client = createRedis({ redisUrl, redisClusterNodes: undefined }, 'producer');
  const producer = new EventProducer({
    client,
    settings: {
      queueName,
      queuePrefix: '{groq}',
      queueShards: 1,
      jobAttempts: 5,
      backoffBaseMs: 200,
    },
    path: STOCK_PATH,
  });
  await waitFor(() => client.status === 'ready');
  return {
    async send(event) {
      const now = new Date().toISOString();
      const outcome = await producer.enqueue(
        { event: { ...event, created: now }, receivedAt: now, keyIndex: 0 },
        5000,
      );
      if (outcome !== 'enqueued') throw new Error(`${event.id}: ${outcome}`);
    },
    async close() {
      await producer.close();
      await closeRedis(client);
    },
  };
}

/** What the example's tables hold: event ids stored (with how many rows each) and resources. */
export async function storedState(
  pg: TestPostgres,
  url: string,
): Promise<{ events: Record<string, number>; resources: Record<string, unknown> }> {
  const events = await pg.query<{ event_id: string; rows: string }>(
    'select event_id, count(*) as rows from groq_events group by event_id order by event_id',
    [],
    url,
  );
  const resources = await pg.query<{ id: string; attributes: unknown }>(
    'select id, attributes from resources order by id',
    [],
    url,
  );
  return {
    events: Object.fromEntries(events.map((row) => [row.event_id, Number(row.rows)])),
    resources: Object.fromEntries(resources.map((row) => [row.id, row.attributes])),
  };
}

/** The state the example handlers leave after {@link lifecycleEvents}. */
export function expectedState(prefix: string) {
  return {
    events: Object.fromEntries(lifecycleEvents(prefix).map((event) => [event.id, 1])),
    resources: { [`${prefix}_res_a`]: { status: 'completed' } },
  };
}
