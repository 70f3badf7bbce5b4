// Worker processes (`node dist/main.js`, built by `turbo run test`) against a real redis-server.
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Envelope } from '@groq-webhooks/core';
import {
  closeRedis,
  createRedis,
  type EventJobData,
  EventProducer,
  type EventQueue,
  jobIdFor,
  openQueue,
  type RedisClient,
  STOCK_PATH,
} from '@groq-webhooks/queue';
import {
  freePort,
  outsideAddress,
  type RunningProcess,
  startProcess,
  startRedis,
  stopAllProcesses,
  type TestRedis,
  testEnvelope,
  waitFor,
} from '@groq-webhooks/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Behaviour } from './__fixtures__/recording-handlers.js';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const FIXTURES = fileURLToPath(new URL('./__fixtures__/', import.meta.url));
const RECORDING = `${FIXTURES}recording-handlers.ts`;

const LOCK_MS = 2000;
const STALL_MS = 1000;
const settings = {
  queueName: 'groq-events',
  queuePrefix: '{groq}',
  queueShards: 1,
  jobAttempts: 3,
  backoffBaseMs: 50,
};

let redis: TestRedis;
let client: RedisClient;
let producerClient: RedisClient;
let producer: EventProducer;
let queue: EventQueue;

beforeEach(async () => {
  redis = await startRedis();
  client = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'worker', 'test');
  producerClient = createRedis(
    { redisUrl: redis.url, redisClusterNodes: undefined },
    'producer',
    'test-producer',
  );
  producer = new EventProducer({ client: producerClient, settings, path: STOCK_PATH });
  queue = openQueue(client, { index: 0, name: 'groq-events', prefix: '{groq}' }, settings);
  await waitFor(() => client.status === 'ready' && producerClient.status === 'ready');
});

afterEach(async () => {
  await stopAllProcesses();
  await producer.close();
  await queue.close();
  await closeRedis(producerClient);
  await closeRedis(client);
  await redis.cleanup();
});

function startWorker(env: Record<string, string> = {}): RunningProcess {
  return startProcess('node', [MAIN], {
    env: {
      REDIS_URL: redis.url,
      EFFECTS_REDIS_URL: redis.url,
      HANDLERS_MODULE: RECORDING,
      WORKER_METRICS_PORT: '0',
      LOCK_DURATION_MS: String(LOCK_MS),
      STALLED_INTERVAL_MS: String(STALL_MS),
      BACKOFF_BASE_MS: '50',
      JOB_ATTEMPTS: '3',
      SHUTDOWN_GRACE_MS: '5000',
      LOG_LEVEL: 'info',
      ...env,
    },
  });
}

/** Output lines that are not JSON log lines: what the worker printed to say why it stopped. */
function plainLines(worker: RunningProcess): string[] {
  return worker
    .output()
    .trim()
    .split('\n')
    .filter((line) => !line.startsWith('{'));
}

async function ready(...workers: RunningProcess[]): Promise<void> {
  await Promise.all(workers.map((worker) => worker.waitForOutput('"Worker ready"', 20_000)));
}

function newEvent(data: Behaviour, prefix = 'evt'): Envelope {
  return testEnvelope({ id: `${prefix}_${randomUUID()}`, data: { ...data } });
}

async function enqueue(events: Envelope[]): Promise<void> {
  for (let i = 0; i < events.length; i += 50) {
    await Promise.all(
      events.slice(i, i + 50).map((event) => {
        const data: EventJobData = { event, receivedAt: new Date().toISOString(), keyIndex: 0 };
        return producer.enqueue(data, 5000);
      }),
    );
  }
}

async function effectsOf(events: Envelope[]): Promise<number[]> {
  const values = await client.hmget('effects', ...events.map((event) => event.id));
  return values.map((value) => Number(value ?? 0));
}

async function starts(event: Envelope): Promise<string[]> {
  return client.lrange(`starts:${event.id}`, 0, -1);
}

describe('worker processes', () => {
  it('two workers, 500 events: every effect exactly once and both workers did work', async () => {
    const a = startWorker();
    const b = startWorker();
    await ready(a, b);
    const events = Array.from({ length: 500 }, () => newEvent({ behaviour: 'slow', ms: 5 }));
    const started = Date.now();
    await enqueue(events);
    await waitFor(async () => (await effectsOf(events)).every((count) => count >= 1), {
      timeoutMs: 60_000,
      intervalMs: 100,
      description: '500 effects',
    });
    const seconds = (Date.now() - started) / 1000;
    await waitFor(async () => (await queue.getCompletedCount()) === 500);
    const counts = await effectsOf(events);
    expect(counts.every((count) => count === 1)).toBe(true);
    expect(await client.scard('overlaps')).toBe(0);
    const byPid = await client.hgetall('effects-by-pid');
    const perWorker = { [a.pid]: Number(byPid[a.pid] ?? 0), [b.pid]: Number(byPid[b.pid] ?? 0) };
    expect(Object.keys(byPid).sort()).toEqual([String(a.pid), String(b.pid)].sort());
    expect(perWorker[a.pid]).toBeGreaterThan(0);
    expect(perWorker[b.pid]).toBeGreaterThan(0);
    expect((perWorker[a.pid] ?? 0) + (perWorker[b.pid] ?? 0)).toBe(500);
    console.log(
      `[two workers] events=500 effects=${counts.reduce((s, n) => s + n, 0)} ` +
        `perWorker=${JSON.stringify(perWorker)} seconds=${seconds.toFixed(2)}`,
    );
    expect(await a.stop()).toBe(0);
    expect(await b.stop()).toBe(0);
  });

  it('SIGKILL mid-handler: the other worker completes every event exactly once within the stall bound', async () => {
    const a = startWorker({ WORKER_CONCURRENCY: '5' });
    const b = startWorker({ WORKER_CONCURRENCY: '5' });
    await ready(a, b);
    const handlerMs = 1500;
    // As many events as both workers have slots: recovered jobs never queue behind new ones.
    const events = Array.from({ length: 10 }, () => newEvent({ behaviour: 'slow', ms: handlerMs }));
    await enqueue(events);
    // Wait until the victim is in the middle of several handlers.
    const inFlight = await waitFor(
      async () => {
        const victims: Envelope[] = [];
        for (const event of events) {
          const who = await starts(event);
          if (who.includes(String(a.pid)) && (await effectsOf([event]))[0] === 0) {
            victims.push(event);
          }
        }
        return victims.length >= 3 ? victims : undefined;
      },
      { description: 'worker A running handlers' },
    );
    await a.kill();
    const killedAt = Date.now();
    // The lock lapses at most LOCK_MS after the last renewal; a stall check at most STALL_MS
    // later moves the job back to wait. 2 s of slack for scheduling on a loaded CI machine.
    const bound = LOCK_MS + STALL_MS + 2000;
    await waitFor(
      async () => {
        for (const event of inFlight) {
          if ((await starts(event)).at(-1) !== String(b.pid)) return false;
        }
        return true;
      },
      { timeoutMs: bound + 10_000, intervalMs: 50, description: 'B picking the jobs up' },
    );
    const pickupSeconds = (Date.now() - killedAt) / 1000;
    await waitFor(async () => (await effectsOf(events)).every((count) => count === 1), {
      timeoutMs: 20_000,
      intervalMs: 50,
    });
    const completedSeconds = (Date.now() - killedAt) / 1000;
    await waitFor(async () => (await queue.getCompletedCount()) === events.length);
    const counts = await effectsOf(events);
    expect(counts.every((count) => count === 1)).toBe(true);
    expect(await client.scard('overlaps')).toBe(0);
    expect(await queue.getFailedCount()).toBe(0);
    console.log(
      `[SIGKILL] killed worker had ${inFlight.length} handlers in flight; the other worker picked ` +
        `them up ${pickupSeconds.toFixed(2)} s after the kill (bound ${(bound / 1000).toFixed(1)} s ` +
        `= lock ${LOCK_MS} ms + stall interval ${STALL_MS} ms + 2 s slack) and completed them ` +
        `${completedSeconds.toFixed(2)} s after it (handler ${handlerMs} ms); ` +
        `effects=${counts.reduce((s, n) => s + n, 0)}/${events.length}, each exactly once`,
    );
    expect(pickupSeconds * 1000).toBeLessThan(bound);
  });

  it('two kills in a row do not fail an event', async () => {
    const event = newEvent({ behaviour: 'slow', ms: 2500 });
    await enqueue([event]);
    let pids: string[] = [];
    for (let kill = 0; kill < 2; kill++) {
      const victim = startWorker();
      await waitFor(async () => (await starts(event)).length === kill + 1, { timeoutMs: 30_000 });
      await victim.kill();
      pids = await starts(event);
    }
    const survivor = startWorker();
    await waitFor(
      async () => (await (await queue.getJob(jobIdFor(event.id)))?.getState()) === 'completed',
      { timeoutMs: 30_000 },
    );
    expect((await effectsOf([event]))[0]).toBe(1);
    const job = await queue.getJob(jobIdFor(event.id));
    expect(job?.stalledCounter).toBe(2);
    expect([...pids, String(survivor.pid)]).toEqual(await starts(event));
    expect(await survivor.stop()).toBe(0);
  });

  it('SIGTERM during a handler lets it finish, then exits 0', async () => {
    const a = startWorker({ SHUTDOWN_GRACE_MS: '5000' });
    await ready(a);
    const event = newEvent({ behaviour: 'slow', ms: 800 });
    await enqueue([event]);
    await waitFor(async () => (await starts(event)).length === 1);
    expect(await a.stop('SIGTERM', 10_000)).toBe(0);
    expect((await effectsOf([event]))[0]).toBe(1);
    expect(await client.hget('aborted', event.id)).toBeNull();
    expect(a.output()).toContain('"Worker stopped"');
    await waitFor(
      async () => (await (await queue.getJob(jobIdFor(event.id)))?.getState()) === 'completed',
    );
  });

  it('SIGTERM past the grace period aborts the handler, exits 0, and the event is done later', async () => {
    const a = startWorker({ SHUTDOWN_GRACE_MS: '300', JOB_ATTEMPTS: '1' });
    await ready(a);
    const event = newEvent({ behaviour: 'slow', ms: 2000 });
    await enqueue([event]);
    await waitFor(async () => (await starts(event)).length === 1);
    const stoppedAt = Date.now();
    expect(await a.stop('SIGTERM', 10_000)).toBe(0);
    expect(Date.now() - stoppedAt).toBeLessThan(3000);
    expect(await client.hget('aborted', event.id)).toBe('ShutdownAbortError');
    expect((await effectsOf([event]))[0]).toBe(0);
    const b = startWorker({ JOB_ATTEMPTS: '1' });
    await waitFor(
      async () => (await (await queue.getJob(jobIdFor(event.id)))?.getState()) === 'completed',
      { timeoutMs: 15_000 },
    );
    expect((await effectsOf([event]))[0]).toBe(1);
    expect(await starts(event)).toEqual([String(a.pid), String(b.pid)]);
  });

  it('SIGTERM while Redis is gone: exits 0 within its bounds, saying what it could not write', async () => {
    const own = await startRedis();
    try {
      const a = startWorker({
        REDIS_URL: own.url,
        EFFECTS_REDIS_URL: own.url,
        SHUTDOWN_GRACE_MS: '300',
      });
      await ready(a);
      await own.kill();
      await a.waitForOutput('Queue connection error', 10_000);
      const stoppedAt = Date.now();
      // The grace period, 5 s for BullMQ's workers to close, 5 s for the rest (its commands wait
      // for Redis while the clients reconnect), then the clients are disconnected.
      expect(await a.stop('SIGTERM', 20_000)).toBe(0);
      expect(Date.now() - stoppedAt).toBeLessThan(15_000);
      expect(a.output()).toContain('Redis did not answer the close in time; disconnecting');
      expect(a.output()).toContain('"Worker stopped"');
    } finally {
      await own.cleanup();
    }
  });
});

describe('handler modules and endpoints', () => {
  it('runs a plain .mjs module and serves /metrics and /healthz', async () => {
    const port = await freePort();
    const worker = startWorker({
      HANDLERS_MODULE: `${FIXTURES}plain-handlers.mjs`,
      WORKER_METRICS_PORT: String(port),
    });
    await ready(worker);
    const event = newEvent({});
    await enqueue([event]);
    await waitFor(async () => (await client.hget('plain-mjs', event.id)) === 'resource.created@1');
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(
      /groq_worker_jobs_processed_total\{[^}]*type="resource.created"[^}]*\} 1/,
    );
    expect(metrics).toMatch(/groq_worker_queue_depth\{[^}]*state="completed"[^}]*\} 1/);
    // Lines leave at the end of their turn: wait for this one rather than race the pipe.
    const line = await waitFor(() => worker.logLines().find((l) => l.msg === 'plain handler ran'), {
      description: 'the plain handler log line',
    });
    expect(line).toMatchObject({ eventId: event.id, type: 'resource.created', attempt: 1 });
    expect(await worker.stop()).toBe(0);
  });

  it('runs with the built-in example handlers when HANDLERS_MODULE is unset', async () => {
    const worker = startWorker({ HANDLERS_MODULE: '' });
    await ready(worker);
    const event = newEvent({});
    await enqueue([event]);
    await worker.waitForOutput('"Resource created"');
    const line = worker.logLines().find((l) => l.msg === 'Resource created');
    expect(line).toMatchObject({ eventId: event.id, type: 'resource.created' });
    // The demo switch: data.demo_fail fails the event for good at once, with a clear error.
    const failing = { ...newEvent({}), data: { id: 'res_demo', demo_fail: true } };
    await enqueue([failing]);
    const job = await waitFor(
      async () => {
        const found = await queue.getJob(jobIdFor(failing.id));
        return (await found?.getState()) === 'failed' ? found : undefined;
      },
      { description: 'the demo_fail event failed' },
    );
    expect(job?.attemptsMade).toBe(1);
    expect(job?.failedReason).toBe('demo failure: the event asked for it with data.demo_fail');
    expect(
      worker.logLines().some((l) => l.msg === 'Resource created' && l.eventId === failing.id),
    ).toBe(false);
    expect(await worker.stop()).toBe(0);
  });

  it('serves its metrics on loopback only by default; WORKER_METRICS_HOST opens them wider', async () => {
    const outside = outsideAddress();
    const port = await freePort();
    const worker = startWorker({ WORKER_METRICS_PORT: String(port) });
    await ready(worker);
    expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status).toBe(200);
    if (outside !== undefined) {
      await expect(fetch(`http://${outside}:${port}/metrics`)).rejects.toThrow();
    }
    expect(await worker.stop()).toBe(0);
    if (outside === undefined) return;
    // The control: the same address reaches a worker told to listen on every interface.
    const open = startWorker({ WORKER_METRICS_PORT: String(port), WORKER_METRICS_HOST: '0.0.0.0' });
    await ready(open);
    expect((await fetch(`http://${outside}:${port}/metrics`)).status).toBe(200);
    expect(await open.stop()).toBe(0);
  });

  it('stops with one line and a non-zero status on a module missing a handler', async () => {
    const worker = startWorker({ HANDLERS_MODULE: `${FIXTURES}missing-handler.mjs` });
    expect(await worker.exited).toBe(1);
    expect(plainLines(worker)).toEqual([
      `Invalid HANDLERS_MODULE ${FIXTURES}missing-handler.mjs: default export is missing a handler for resource.deleted`,
    ]);
  });

  it.each([
    ['an await that never settles', 'never-loads.mjs'],
    ['an await that never settles while a timer runs', 'never-loads-with-timer.mjs'],
  ])(
    'names a module that never finishes loading (%s) and exits non-zero within the timeout',
    async (_, fixture) => {
      const module = `${FIXTURES}${fixture}`;
      const started = Date.now();
      const worker = startWorker({ HANDLERS_MODULE: module, HANDLERS_LOAD_TIMEOUT_MS: '1500' });
      expect(await worker.exited).toBe(1);
      const seconds = (Date.now() - started) / 1000;
      // Node start-up and the module's own loading come on top of the 1.5 s.
      expect(seconds).toBeLessThan(1.5 + 5);
      expect(plainLines(worker)).toEqual([
        `Invalid HANDLERS_MODULE ${module}: did not finish loading within 1500 ms (HANDLERS_LOAD_TIMEOUT_MS; a top-level await that never settles?)`,
      ]);
      // Which module it was loading was logged before it started to.
      expect(worker.logLines()).toEqual([
        expect.objectContaining({ msg: 'Loading handlers module', handlersModule: module }),
      ]);
    },
  );

  it('stops with one line naming the variable on bad configuration', async () => {
    const worker = startWorker({ LOCK_DURATION_MS: 'soon' });
    expect(await worker.exited).toBe(78);
    const lines = worker.output().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('LOCK_DURATION_MS');
  });
});
