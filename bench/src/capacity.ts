// Redis bytes per event, by state and payload size, for sizing `maxmemory` (docs/capacity.md).
// Starts a throwaway redis-server per run, puts real jobs in with the ingest's producer (the same
// script the ingest runs), lets the real worker process complete or fail them, and reads Redis's
// own accounting (`INFO memory` used_memory, `MEMORY USAGE` of single keys).
//
//   node bench/dist/capacity.js            # 1 KB, 100 KB and 1 MB payloads
import { execFileSync } from 'node:child_process';
import type { Envelope } from '@groq-webhooks/core';
import {
  chooseQueuePath,
  closeRedis,
  createRedis,
  EventProducer,
  idempotencyKey,
  jobIdFor,
  openQueue,
  type RedisClient,
  waitForRedis,
} from '@groq-webhooks/queue';
import { startRedis, type TestRedis, waitFor } from '@groq-webhooks/testing';
import { ENTRY, spawnNode, stop } from './processes.js';

const SIZES = [
  { label: '1 KB', bytes: 1024, count: 2000 },
  { label: '100 KB', bytes: 100 * 1024, count: 300 },
  { label: '1 MB', bytes: 1024 * 1024, count: 60 },
] as const;

const settings = {
  queueName: 'groq-events',
  queuePrefix: '{groq}',
  queueShards: 1,
  jobAttempts: 8,
  backoffBaseMs: 1000,
};
const SHARD = { index: 0, name: settings.queueName, prefix: settings.queuePrefix };

/** The JSON text of an event whose body is `bytes` long. */
function eventJson(id: string, bytes: number, fail: boolean): string {
  const head = `{"id":"${id}","type":"resource.created","data":{"id":"res_${id}","demo_fail":${fail},"attributes":{"blob":"`;
  const tail = `"}},"created":"2026-11-29T10:00:00Z"}`;
  return `${head}${'x'.repeat(Math.max(0, bytes - head.length - tail.length))}${tail}`;
}

async function usedMemory(client: RedisClient): Promise<number> {
  const info = await client.info('memory');
  return Number(/used_memory:([0-9]+)/.exec(info)?.[1]);
}

async function keyBytes(client: RedisClient, key: string): Promise<number> {
  return Number(await client.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'));
}

interface Measured {
  perEvent: number;
  jobKey: number;
  doneMarker: number;
}

/** Enqueues `count` events (plus one to create the queue's own keys), runs `finish`, measures. */
async function measure(
  redis: TestRedis,
  bytes: number,
  count: number,
  state: 'waiting' | 'completed' | 'failed',
): Promise<Measured> {
  await redis.command('FLUSHALL');
  const client = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'producer');
  const admin = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'admin');
  await waitForRedis(client, 5000);
  await waitForRedis(admin, 5000);
  // The path the ingest takes by default here: the fast one (a single Redis).
  const { path } = await chooseQueuePath('auto', client);
  const producer = new EventProducer({ client, settings, path });
  const queue = openQueue(admin, SHARD, settings);
  const fail = state === 'failed';
  const send = async (id: string) => {
    const text = eventJson(id, bytes, fail);
    const event = JSON.parse(text) as Envelope;
    await producer.enqueue(
      { event, receivedAt: new Date().toISOString(), keyIndex: 0 },
      5000,
      text,
    );
  };
  const finished = async (expected: number) => {
    if (state === 'waiting') return;
    // The real worker, with the built-in example handlers: data.demo_fail fails an event.
    const worker = spawnNode(ENTRY.worker, {
      REDIS_URL: redis.url,
      HANDLERS_MODULE: '',
      WORKER_METRICS_PORT: '0',
      LOG_LEVEL: 'warn',
    });
    await waitFor(async () => (await queue.getJobCounts(state))[state] === expected, {
      timeoutMs: 120_000,
      intervalMs: 100,
      description: `${expected} ${state} jobs`,
    });
    await stop(worker);
  };

  await send('evt_warm');
  await finished(1);
  const before = await usedMemory(admin);
  for (let i = 0; i < count; i += 20) {
    await Promise.all(
      Array.from({ length: Math.min(20, count - i) }, (_, k) => send(`evt_${i + k}`)),
    );
  }
  await finished(count + 1);
  const after = await usedMemory(admin);
  const measured = {
    perEvent: (after - before) / count,
    jobKey: await keyBytes(admin, queue.toKey(jobIdFor('evt_0'))),
    doneMarker: await keyBytes(admin, idempotencyKey('evt_0')),
  };
  await producer.close();
  await queue.close();
  await closeRedis(client);
  await closeRedis(admin);
  return measured;
}

const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;

const redis = await startRedis();
try {
  const version = execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).trim();
  console.log(`# Redis bytes per event (${new Date().toISOString()}, ${version})\n`);
  console.log(
    '| payload | events | waiting | completed | failed | one completed job hash | done-marker (MEMORY USAGE, without its table share) |',
  );
  console.log('|---|---|---|---|---|---|---|');
  for (const size of SIZES) {
    const waiting = await measure(redis, size.bytes, size.count, 'waiting');
    const completed = await measure(redis, size.bytes, size.count, 'completed');
    const failed = await measure(redis, size.bytes, size.count, 'failed');
    console.log(
      `| ${size.label} | ${size.count} | ${kib(waiting.perEvent)} | ${kib(completed.perEvent)} | ${kib(failed.perEvent)} | ${kib(completed.jobKey)} | ${completed.doneMarker} B |`,
    );
  }
} finally {
  await redis.cleanup();
}
