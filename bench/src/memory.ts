import type { ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  COMPLETED_RETENTION,
  closeRedis,
  createRedis,
  type EventQueue,
  openQueue,
  type RedisClient,
} from '@groq-webhooks/queue';
import { sign } from '@groq-webhooks/signature';
import { freePort, startRedis, waitFor } from '@groq-webhooks/testing';
import autocannon from 'autocannon';
import { eventIds } from './event-ids.js';
import { ENTRY, machine, SECRET, spawnNode, stop } from './processes.js';

// pnpm bench -- --memory: Redis used_memory after 100,000 and 200,000 events handled by the real
// ingest and worker processes, and the marginal bytes per event between the two sizes. Completed
// jobs are trimmed to COMPLETED_RETENTION.count (10,000) and the events stream to its max length,
// so past 10,000 events what still grows per event is the event's done-marker: the figure of
// docs/idempotency-memory.md.

const QUEUE_NAME = 'bench-memory';
const PREFIX = '{groq}';

/** Options of {@link runMemory}. */
export interface MemoryOptions {
  /** Smaller sizes (20,000 and 40,000): a smoke test of the harness, not figures to quote. */
  quick: boolean;
  out: string;
  /** Load-generator connections. */
  connections: number;
}

/**
 * One done-marker layout the system can run with, as a column of the report. Today there is
 * one: one key per event. The bucketed layout of docs/idempotency-memory.md adds its entry here
 * (marker count: `HGET groq:done n`), and the one-key layout keeps its column through whatever
 * switch the implementation gives the benchmark to write it.
 */
interface MemoryLayout {
  name: string;
  /** Extra environment of the ingest and worker processes. */
  env: Record<string, string>;
  /** Markers in Redis now (the benchmark's own count, to check every event was marked). */
  countMarkers(client: RedisClient): Promise<number>;
}

const ONE_KEY_PER_EVENT: MemoryLayout = {
  name: 'one key per event',
  env: {},
  async countMarkers(client) {
    let count = 0;
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', 'groq:event:*', 'COUNT', 10_000);
      cursor = next;
      count += keys.length;
    } while (cursor !== '0');
    return count;
  },
};

/** The layouts measured, one column each. */
const LAYOUTS: readonly MemoryLayout[] = [ONE_KEY_PER_EVENT];
/** Columns printed for layouts the code cannot run yet, so the report keeps its shape. */
const PENDING = ['bucketed (docs/idempotency-memory.md; not implemented yet)'];

interface Checkpoint {
  /** Events handled (acknowledged by the ingest and completed by the worker). */
  events: number;
  usedMemory: number;
  markers: number;
  completedJobs: number;
  keys: number;
}

interface LayoutRun {
  layout: string;
  /** used_memory once the processes are up and before the first event. */
  start: number;
  checkpoints: Checkpoint[];
  /** (used_memory(last) − used_memory(first)) / (events(last) − events(first)). */
  marginalBytesPerEvent: number;
  non2xx: number;
}

const log = (line: string) => process.stderr.write(`${line}\n`);

/** Runs the memory benchmark, prints its table and writes `memory-<date>.md/.json` to `out`. */
export async function runMemory(options: MemoryOptions): Promise<void> {
  const sizes = options.quick ? [20_000, 40_000] : [100_000, 200_000];
  const runs: LayoutRun[] = [];
  for (const layout of LAYOUTS) runs.push(await runLayout(layout, sizes, options));
  const date = new Date().toISOString();
  const text = markdown(date, sizes, runs, options.quick);
  mkdirSync(options.out, { recursive: true });
  const stem = join(options.out, `memory-${date.replace(/[:.]/g, '-')}`);
  writeFileSync(`${stem}.json`, `${JSON.stringify({ date, machine: machine(), runs }, null, 2)}\n`);
  writeFileSync(`${stem}.md`, text);
  process.stdout.write(`${text}\nReport: ${stem}.md and .json\n`);
  const wrong = runs.filter(
    (run) => run.non2xx > 0 || run.checkpoints.some((c) => c.markers !== c.events),
  );
  if (wrong.length > 0) {
    process.stderr.write(
      `FAILED: non-2xx answers, or markers not equal to the events handled (${wrong.map((r) => r.layout).join(', ')})\n`,
    );
    process.exitCode = 1;
  }
}

async function runLayout(
  layout: MemoryLayout,
  sizes: number[],
  options: MemoryOptions,
): Promise<LayoutRun> {
  const redis = await startRedis();
  const admin = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'admin');
  const queue = openQueue(
    admin,
    { index: 0, name: QUEUE_NAME, prefix: PREFIX },
    { jobAttempts: 8, backoffBaseMs: 1000 },
  );
  const port = await freePort();
  const common = { REDIS_URL: redis.url, QUEUE_NAME, LOG_LEVEL: 'warn', ...layout.env };
  const children: ChildProcess[] = [
    spawnNode(ENTRY.ingest, {
      ...common,
      PORT: String(port),
      HOST: '127.0.0.1',
      GROQ_WEBHOOK_SECRET: SECRET,
    }),
    spawnNode(ENTRY.worker, {
      ...common,
      WORKER_CONCURRENCY: '50',
      WORKER_METRICS_PORT: '0',
      HANDLERS_MODULE: ENTRY.trivialHandlers,
    }),
  ];
  try {
    const url = `http://127.0.0.1:${port}/webhooks/groq`;
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).ok, {
      timeoutMs: 20_000,
      description: 'the ingest to be ready',
    });
    await waitFor(async () => (await workerCount(admin)) > 0, {
      timeoutMs: 20_000,
      description: 'the worker to connect',
    });
    const start = await usedMemory(admin);
    const ids = eventIds(21);
    const checkpoints: Checkpoint[] = [];
    let sent = 0;
    let non2xx = 0;
    for (const size of sizes) {
      non2xx += await send(url, ids, size - sent, options.connections);
      sent = size;
      await waitFor(async () => (await unfinished(queue)) === 0, {
        timeoutMs: 600_000,
        intervalMs: 200,
        description: `the worker to handle ${size} events`,
      });
      // The done-marker is written as the job finishes: wait for the last ones.
      let markers = 0;
      await waitFor(
        async () => {
          markers = await layout.countMarkers(admin);
          return markers >= size;
        },
        { timeoutMs: 30_000, intervalMs: 200, description: `${size} done-markers` },
      );
      const checkpoint: Checkpoint = {
        events: size,
        usedMemory: await usedMemory(admin),
        markers,
        completedJobs: await queue.getCompletedCount(),
        keys: Number(await admin.dbsize()),
      };
      checkpoints.push(checkpoint);
      log(
        `memory ${layout.name} ${size}: used_memory ${checkpoint.usedMemory}, ${markers} markers, ${checkpoint.completedJobs} completed jobs kept, ${checkpoint.keys} keys`,
      );
    }
    const first = checkpoints[0];
    const last = checkpoints[checkpoints.length - 1];
    const marginal =
      first !== undefined && last !== undefined && last.events > first.events
        ? (last.usedMemory - first.usedMemory) / (last.events - first.events)
        : Number.NaN;
    return { layout: layout.name, start, checkpoints, marginalBytesPerEvent: marginal, non2xx };
  } finally {
    await Promise.all(children.map(stop));
    await queue.close();
    await closeRedis(admin);
    await redis.cleanup();
  }
}

/** Sends `count` new signed events; returns how many were not answered 200. */
async function send(
  url: string,
  ids: Iterator<string>,
  count: number,
  connections: number,
): Promise<number> {
  const created = new Date().toISOString();
  let index = 0;
  const result = await autocannon({
    url,
    connections,
    amount: count,
    method: 'POST',
    requests: [
      {
        setupRequest: (request) => {
          const id = ids.next().value as string;
          const body = JSON.stringify({
            id,
            type: 'resource.created',
            data: { id: `res_${index++}`, object: 'batch', attributes: { status: 'completed' } },
            created,
          });
          return {
            ...request,
            method: 'POST',
            body,
            headers: { 'content-type': 'application/json', ...sign({ secret: SECRET, body }) },
          };
        },
      },
    ],
  });
  return result.non2xx + result.errors + result.timeouts;
}

async function unfinished(queue: EventQueue): Promise<number> {
  const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
  return Object.values(counts).reduce((sum, count) => sum + count, 0);
}

async function workerCount(client: RedisClient): Promise<number> {
  const clients = (await client.client('LIST')) as string;
  return clients.split('\n').filter((line) => line.includes('name=groq-webhooks-worker-')).length;
}

async function usedMemory(client: RedisClient): Promise<number> {
  const info = (await client.info('memory')) as string;
  const match = /^used_memory:(\d+)/m.exec(info);
  if (!match) throw new Error('no used_memory in INFO');
  return Number(match[1]);
}

function markdown(date: string, sizes: number[], runs: LayoutRun[], quick: boolean): string {
  const m = machine();
  const columns = [...runs.map((run) => run.layout), ...PENDING];
  const cell = (run: LayoutRun | undefined, value: (run: LayoutRun) => string) =>
    run === undefined ? '—' : value(run);
  const byName = (name: string) => runs.find((run) => run.layout === name);
  const lines = [
    `# groq-webhooks memory benchmark — ${date}${quick ? ' (--quick: not figures to quote)' : ''}`,
    '',
    `Machine: ${m.cpu}, ${m.memoryGiB} GiB, Node ${m.node}, ${m.redis}`,
    `Real ingest and worker (concurrency 50, no-op handlers), distinct signed events with ids evt_ + 24–32 characters; completed jobs kept: ${COMPLETED_RETENTION.count} (held constant past that many events).`,
    '',
    `| Redis used_memory | ${columns.join(' | ')} |`,
    `|---|${columns.map(() => '---').join('|')}|`,
    `| before the first event | ${columns.map((name) => cell(byName(name), (run) => String(run.start))).join(' | ')} |`,
  ];
  sizes.forEach((size, index) => {
    lines.push(
      `| after ${size.toLocaleString('en')} events | ${columns
        .map((name) =>
          cell(byName(name), (run) => {
            const c = run.checkpoints[index];
            return c === undefined
              ? '—'
              : `${c.usedMemory} (${c.markers} markers, ${c.completedJobs} completed jobs)`;
          }),
        )
        .join(' | ')} |`,
    );
  });
  lines.push(
    `| **marginal bytes per event** (${sizes[0]?.toLocaleString('en')} → ${sizes[sizes.length - 1]?.toLocaleString('en')}) | ${columns
      .map((name) => cell(byName(name), (run) => `**${run.marginalBytesPerEvent.toFixed(1)}**`))
      .join(' | ')} |`,
    '',
  );
  return lines.join('\n');
}
