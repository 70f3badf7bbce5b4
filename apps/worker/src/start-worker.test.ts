import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '@groq-webhooks/config';
import { defineHandlers, type GroqEvent } from '@groq-webhooks/core';
import {
  closeRedis,
  createRedis,
  EventProducer,
  type RedisClient,
  STOCK_PATH,
} from '@groq-webhooks/queue';
import { freePort, startRedis, type TestRedis, waitFor } from '@groq-webhooks/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MetricsPortError, type RunningWorker, startWorker } from './start-worker.js';

const require = createRequire(import.meta.url);

let redis: TestRedis;
let producerClient: RedisClient;
const workers: RunningWorker[] = [];

beforeAll(async () => {
  redis = await startRedis();
  producerClient = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'producer');
  await waitFor(() => producerClient.status === 'ready');
});

afterAll(async () => {
  await Promise.all(workers.map((worker) => worker.close(100)));
  if (producerClient) await closeRedis(producerClient);
  await redis?.cleanup();
});

async function enqueue(queueName: string, type: string, data: Record<string, unknown>) {
  const producer = new EventProducer({
    client: producerClient,
    settings: {
      queueName,
      queuePrefix: '{groq}',
      queueShards: 1,
      jobAttempts: 3,
      backoffBaseMs: 50,
    },
    path: STOCK_PATH,
  });
  const event = { id: `evt_${randomUUID()}`, type, data, created: new Date().toISOString() };
  try {
    expect(await producer.enqueue({ event, receivedAt: event.created, keyIndex: 0 }, 2000)).toBe(
      'enqueued',
    );
  } finally {
    await producer.close();
  }
  return event;
}

function recorder() {
  const seen: { type: string; id: string; attempt: number }[] = [];
  const record = async (event: GroqEvent, ctx: { attempt: number }) => {
    seen.push({ type: event.type, id: event.id, attempt: ctx.attempt });
  };
  return {
    seen,
    handlers: defineHandlers({
      'resource.created': record,
      'resource.updated': record,
      'resource.deleted': record,
    }),
  };
}

describe('startWorker', () => {
  it('runs the handlers it is given with the settings it is given, until close()', async () => {
    const queueName = `q-${randomUUID().slice(0, 8)}`;
    const { seen, handlers } = recorder();
    const worker = await startWorker({
      handlers,
      redisUrl: redis.url,
      queueName,
      workerConcurrency: 2,
      workerMetricsPort: 0,
      logLevel: 'silent',
    });
    workers.push(worker);
    const event = await enqueue(queueName, 'resource.updated', { id: 'res_1' });
    await waitFor(() => seen.find((entry) => entry.id === event.id), {
      timeoutMs: 10_000,
      description: 'the handler to run',
    });
    expect(seen).toEqual([{ type: 'resource.updated', id: event.id, attempt: 1 }]);
    expect(await worker.registry.metrics()).toMatch(
      /groq_worker_jobs_processed_total\{type="resource.updated",service="worker"\} 1/,
    );
    await worker.close();
  });

  it('takes the settings not given from process.env, and serves metrics on workerMetricsPort', async () => {
    const queueName = `q-env-${randomUUID().slice(0, 8)}`;
    const port = await freePort();
    const saved = { QUEUE_NAME: process.env.QUEUE_NAME, REDIS_URL: process.env.REDIS_URL };
    process.env.QUEUE_NAME = queueName;
    process.env.REDIS_URL = redis.url;
    const { seen, handlers } = recorder();
    let worker: RunningWorker;
    try {
      worker = await startWorker({ handlers, workerMetricsPort: port, logLevel: 'silent' });
    } finally {
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
    workers.push(worker);
    const event = await enqueue(queueName, 'resource.deleted', { id: 'res_2' });
    await waitFor(() => seen.find((entry) => entry.id === event.id), { timeoutMs: 10_000 });
    const scrape = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(scrape.status).toBe(200);
    expect(await scrape.text()).toContain('groq_worker_handler_duration_seconds');
    await worker.close();
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });

  it('refuses a bad setting with a ConfigError naming the setting and its variable', async () => {
    const { handlers } = recorder();
    const error = await startWorker({ handlers, workerConcurrency: 0 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toBe(
      'Invalid configuration: workerConcurrency (WORKER_CONCURRENCY) must be a whole number from 1 to 1000, got "0"',
    );
  });

  it('refuses a handler map missing a handler from plain JavaScript', async () => {
    const handlers = { 'resource.created': async () => {}, 'resource.updated': async () => {} };
    await expect(startWorker({ handlers } as never)).rejects.toThrow(
      'startWorker: handlers is missing a handler for resource.deleted',
    );
  });

  it('rejects with one line when the metrics port is taken, leaving nothing open', async () => {
    const blocker = createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => blocker.listen(port, resolve));
    try {
      const { handlers } = recorder();
      const error = await startWorker({
        handlers,
        redisUrl: redis.url,
        workerMetricsPort: port,
        logLevel: 'silent',
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MetricsPortError);
      expect((error as Error).message).toMatch(
        new RegExp(
          `^Cannot listen on WORKER_METRICS_PORT ${port} \\(WORKER_METRICS_HOST 127\\.0\\.0\\.1\\): .*EADDRINUSE`,
        ),
      );
    } finally {
      blocker.close();
    }
  });

  it('does not compile with a handler map missing a known type', async () => {
    const tsc = join(dirname(require.resolve('typescript/package.json')), 'bin', 'tsc');
    const project = fileURLToPath(new URL('./__fixtures__/types/tsconfig.json', import.meta.url));
    const output = await new Promise<{ code: number | null; text: string }>((resolve) => {
      execFile(process.execPath, [tsc, '-p', project], (error, stdout, stderr) =>
        resolve({ code: error ? (error.code as number) : 0, text: stdout + stderr }),
      );
    });
    expect(output.code).not.toBe(0);
    expect(output.text).toContain('missing-handler.ts');
    expect(output.text).toMatch(/TS2741: Property '"resource\.deleted"' is missing/);
  }, 60_000);
});
