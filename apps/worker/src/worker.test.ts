import { randomUUID } from 'node:crypto';
import {
  defineHandlers,
  type Envelope,
  type HandlerContext,
  type HandlerMap,
  type HandlerOptions,
} from '@groq-webhooks/core';
import {
  chooseQueuePath,
  closeRedis,
  createRedis,
  EventProducer,
  type EventQueue,
  IdempotencyStore,
  idempotencyKey,
  jobIdFor,
  openQueue,
  type QueuePath,
  queueShards,
  type RedisClient,
} from '@groq-webhooks/queue';
import { createLogger, createRegistry, type Registry } from '@groq-webhooks/telemetry';
import {
  captureLines,
  freePort,
  startRedis,
  type TestRedis,
  testEnvelope,
  testJobData,
  testQueuePath,
  waitFor,
} from '@groq-webhooks/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Behaviour, recordingHandlers } from './__fixtures__/recording-handlers.js';
import { createWorker, type EventWorker, type WorkerSettings } from './worker.js';

type LogLine = Record<string, unknown>;

let redis: TestRedis;
let client: RedisClient;
/** Reads done-markers (either layout). */
let store: IdempotencyStore;
/** The queue path of this run (vitest projects `fast` and `stock`). */
let path: QueuePath;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  ({ path } = await chooseQueuePath(testQueuePath(), { isCluster: false }));
  redis = await startRedis();
  client = connectTo(redis.url, 'worker', 'test-client');
  await waitFor(() => client.status === 'ready');
  store = new IdempotencyStore(client);
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  if (client) await closeRedis(client);
  await redis?.cleanup();
});

function connectTo(url: string, role: 'worker' | 'producer', name: string): RedisClient {
  return createRedis({ redisUrl: url, redisClusterNodes: undefined }, role, name);
}

/** Fast timings, and a queue of its own for every test. */
function testSettings(overrides: Partial<WorkerSettings> = {}): WorkerSettings {
  return {
    queueName: `q-${randomUUID().slice(0, 8)}`,
    queuePrefix: '{groq}',
    queueShards: 1,
    jobAttempts: 3,
    backoffBaseMs: 40,
    concurrency: 5,
    handlerTimeoutMs: 5000,
    lockDurationMs: 2000,
    stalledIntervalMs: 1000,
    idempotencyTtlSeconds: 600,
    ...overrides,
  };
}

interface Running {
  worker: EventWorker;
  lines: LogLine[];
  registry: Registry;
}

async function startWorker(
  settings: WorkerSettings,
  handlers: HandlerMap = recordingHandlers(() => client),
): Promise<Running> {
  const running = makeWorker(settings, handlers, redis.url);
  await running.worker.start();
  return running;
}

function makeWorker(settings: WorkerSettings, handlers: HandlerMap, redisUrl: string): Running {
  const { lines, destination } = captureLines();
  const registry = createRegistry('worker-test');
  const worker = createWorker({
    settings,
    connect: (name) => connectTo(redisUrl, 'worker', name),
    path,
    handlers,
    logger: createLogger({ service: 'worker', level: 'debug', destination }),
    registry,
    requeueDelayMs: 100,
  });
  cleanups.push(() => worker.close(500));
  return { worker, lines, registry };
}

function producerFor(settings: WorkerSettings): Promise<EventProducer> {
  return producerAt(redis.url, settings, 'test-producer');
}

/** A producer on the Redis at `url`, ready, closed after the test. */
async function producerAt(
  url: string,
  settings: WorkerSettings,
  name: string,
): Promise<EventProducer> {
  const producerClient = connectTo(url, 'producer', name);
  const producer = new EventProducer({ client: producerClient, settings, path });
  cleanups.push(async () => {
    await producer.close();
    await closeRedis(producerClient);
  });
  await waitFor(() => producerClient.status === 'ready');
  return producer;
}

function queueFor(settings: WorkerSettings): EventQueue {
  const shard = queueShards(settings)[0];
  if (shard === undefined) throw new Error('no shard');
  const queue = openQueue(client, shard, settings);
  cleanups.push(() => queue.close());
  return queue;
}

function newEvent(data: Behaviour | Record<string, unknown>, type = 'resource.created'): Envelope {
  return testEnvelope({ type, data: { ...data } });
}

async function finished(queue: EventQueue, event: Envelope, timeoutMs = 10_000) {
  return waitFor(
    async () => {
      const state = await queue.getJobState(jobIdFor(event.id));
      if (state !== 'completed' && state !== 'failed') return undefined;
      // Read after the state, so the job's fields are those of the finished job.
      return { job: await queue.getJob(jobIdFor(event.id)), state };
    },
    { timeoutMs, description: `job of ${event.id} to finish` },
  );
}

async function attemptsSeen(event: Envelope): Promise<string[]> {
  return client.lrange(`attempts:${event.id}`, 0, -1);
}

async function effects(event: Envelope): Promise<number> {
  return Number((await client.hget('effects', event.id)) ?? 0);
}

/** The value of one sample in Prometheus text, whatever the label order. */
function metricValue(
  text: string,
  name: string,
  labels: Record<string, string>,
): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)\{([^}]*)\} (\S+)$/.exec(line);
    if (match?.[1] !== name) continue;
    const present = new Map(
      (match[2] ?? '').split(',').map((pair) => {
        const [key, value] = pair.split('=');
        return [key, value?.replace(/"/g, '')] as const;
      }),
    );
    if (Object.entries(labels).every(([key, value]) => present.get(key) === value)) {
      return Number(match[3]);
    }
  }
  return undefined;
}

function outcomes(lines: LogLine[], event: Envelope): unknown[] {
  return lines
    .filter((line) => line.eventId === event.id && line.outcome !== undefined)
    .map((line) => `${line.attempt}:${line.outcome}`);
}

describe('createWorker: retries, failures, timeouts', () => {
  it('retries a flaky handler with backoff until attempt 3 succeeds', async () => {
    const settings = testSettings({ jobAttempts: 5 });
    const { lines } = await startWorker(settings);
    const producer = await producerFor(settings);
    const queue = queueFor(settings);
    const event = newEvent({ behaviour: 'flaky', failTimes: 2 });
    expect(await producer.enqueue(testJobData(event), 2000)).toBe('enqueued');
    const { state } = await finished(queue, event);
    expect(state).toBe('completed');
    expect(await attemptsSeen(event)).toEqual(['1', '2', '3']);
    expect(await effects(event)).toBe(1);
    expect(outcomes(lines, event)).toEqual(['1:retrying', '2:retrying', '3:completed']);
    const now = Number((await client.time())[0]);
    expect(await store.doneUntil(event.id)).toBeGreaterThan(now + 590);
    // The claim has gone: the marker is one member of a bucket, not a key of its own.
    expect(await client.exists(idempotencyKey(event.id))).toBe(0);
    const completed = lines.find((line) => line.eventId === event.id && line.attempt === 3);
    expect(completed).toMatchObject({ type: 'resource.created', outcome: 'completed' });
    expect(typeof completed?.durationMs).toBe('number');
  });

  it('fails an always-failing handler after exactly JOB_ATTEMPTS attempts, keeping the last error', async () => {
    const settings = testSettings({ jobAttempts: 3 });
    const { lines, registry } = await startWorker(settings);
    const producer = await producerFor(settings);
    const queue = queueFor(settings);
    const event = newEvent({ behaviour: 'fail' });
    await producer.enqueue(testJobData(event), 2000);
    const { job, state } = await finished(queue, event);
    expect(state).toBe('failed');
    expect(job?.attemptsMade).toBe(3);
    expect(job?.failedReason).toBe('always fails (attempt 3)');
    expect(job?.stacktrace).toHaveLength(3);
    expect(await attemptsSeen(event)).toEqual(['1', '2', '3']);
    expect(await effects(event)).toBe(0);
    // The claim was released, so nothing blocks an operator's retry.
    expect(await client.exists(idempotencyKey(event.id))).toBe(0);
    expect(outcomes(lines, event)).toEqual(['1:retrying', '2:retrying', '3:failed']);
    const text = await registry.metrics();
    expect(metricValue(text, 'groq_worker_jobs_failed_total', { type: 'resource.created' })).toBe(
      1,
    );
    expect(metricValue(text, 'groq_worker_jobs_retried_total', { type: 'resource.created' })).toBe(
      2,
    );
  });

  it('fails at once on NonRetryableError, keeping its message and stack', async () => {
    const settings = testSettings({ jobAttempts: 5 });
    await startWorker(settings);
    const producer = await producerFor(settings);
    const queue = queueFor(settings);
    const event = newEvent({ behaviour: 'non-retryable' });
    await producer.enqueue(testJobData(event), 2000);
    const { job, state } = await finished(queue, event);
    expect(state).toBe('failed');
    expect(job?.attemptsMade).toBe(1);
    expect(job?.failedReason).toBe('resource is gone for good');
    expect(job?.stacktrace?.[0]).toContain('NonRetryableError');
    expect(await attemptsSeen(event)).toEqual(['1']);
  });

  it('fails at once on an invalid payload, naming the field, without running the handler', async () => {
    const settings = testSettings({ jobAttempts: 5 });
    await startWorker(settings);
    const producer = await producerFor(settings);
    const queue = queueFor(settings);
    const event = newEvent({ id: 42 });
    await producer.enqueue(testJobData(event), 2000);
    const { job, state } = await finished(queue, event);
    expect(state).toBe('failed');
    expect(job?.attemptsMade).toBe(1);
    expect(job?.failedReason).toMatch(/^Invalid payload for resource.created: data\.id/);
    expect(await attemptsSeen(event)).toEqual([]);
  });

  it('completes an unknown event type with one "Unhandled event type" line and no retry', async () => {
    const settings = testSettings();
    const { lines } = await startWorker(settings);
    const producer = await producerFor(settings);
    const queue = queueFor(settings);
    const event = newEvent({ behaviour: 'fail' }, 'invoice.paid');
    await producer.enqueue(testJobData(event), 2000);
    const { job, state } = await finished(queue, event);
    expect(state).toBe('completed');
    // One attempt (BullMQ counts the completion), no retry.
    expect(job?.attemptsMade).toBe(1);
    const unhandled = lines.filter((line) => line.msg === 'Unhandled event type');
    expect(unhandled).toHaveLength(1);
    expect(unhandled[0]).toMatchObject({
      eventId: event.id,
      type: 'invoice.paid',
      outcome: 'unhandled',
    });
    expect(await attemptsSeen(event)).toEqual([]);
  });

  it('gives back the claim its fetch took when an attempt ends before the handler runs', async () => {
    // One slot: the jobs after the first are fetched by the first one's finish, which claims.
    const settings = testSettings({ concurrency: 1 });
    await startWorker(settings);
    const producer = await producerFor(settings);
    const queue = queueFor(settings);
    const first = newEvent({ behaviour: 'slow', ms: 300 });
    const unknown = newEvent({}, 'invoice.paid');
    const invalid = newEvent({ id: 42 });
    const normal = newEvent({});
    for (const event of [first, unknown, invalid, normal]) {
      await producer.enqueue(testJobData(event), 2000);
    }
    expect((await finished(queue, unknown)).state).toBe('completed');
    expect((await finished(queue, invalid)).state).toBe('failed');
    expect((await finished(queue, normal)).state).toBe('completed');
    expect(await client.get(`groq:event:${unknown.id}`)).toBeNull();
    expect(await client.get(`groq:event:${invalid.id}`)).toBeNull();
    expect(await store.lookup([unknown.id, invalid.id, normal.id])).toEqual([false, false, true]);
  });

  it('cuts a handler off at HANDLER_TIMEOUT_MS, aborts its signal, and fails the attempt', async () => {
    const settings = testSettings({ jobAttempts: 1, handlerTimeoutMs: 300 });
    const { lines } = await startWorker(settings);
    const producer = await producerFor(settings);
    const queue = queueFor(settings);
    const event = newEvent({ behaviour: 'slow', ms: 5000 });
    await producer.enqueue(testJobData(event), 2000);
    const { job, state } = await finished(queue, event);
    expect(state).toBe('failed');
    expect(job?.failedReason).toBe('Handler timed out after 300 ms');
    expect(await client.hget('aborted', event.id)).toBe('HandlerTimeoutError');
    const line = lines.find((l) => l.eventId === event.id && l.outcome === 'failed');
    expect(line?.durationMs).toBeGreaterThanOrEqual(300);
    expect(line?.durationMs).toBeLessThan(2000);
    expect(await effects(event)).toBe(0);
    expect(await client.exists(idempotencyKey(event.id))).toBe(0);
  });

  it('retries after a timeout; a handler that ignores its signal keeps its claim, and its late success counts once', async () => {
    const settings = testSettings({ jobAttempts: 3, handlerTimeoutMs: 300 });
    const { lines } = await startWorker(settings);
    const producer = await producerFor(settings);
    const queue = queueFor(settings);
    const event = newEvent({ behaviour: 'ignore-signal', ms: 1200 });
    await producer.enqueue(testJobData(event), 2000);
    const { job, state } = await finished(queue, event);
    expect(state).toBe('completed');
    expect(await client.hget('aborted', event.id)).toBe('HandlerTimeoutError');
    const seen = outcomes(lines, event);
    expect(seen[0]).toBe('1:retrying');
    // The retry waited for the abandoned run without spending attempts, then found it done.
    expect(seen).toContain('2:delayed-busy');
    expect(seen.at(-1)).toBe('2:skipped-done');
    // The timed-out attempt and the completion; the busy waits spent none.
    expect(job?.attemptsMade).toBe(2);
    expect(await attemptsSeen(event)).toEqual(['1']);
    expect(await effects(event)).toBe(1);
    expect(await client.scard('overlaps')).toBe(0);
  });
});

describe('createWorker: lost locks', () => {
  it('aborts a handler whose job lock is lost; the stalled job is re-run once and completes', async () => {
    const settings = testSettings();
    const { lines } = await startWorker(settings);
    const producer = await producerFor(settings);
    const queue = queueFor(settings);
    const event = newEvent({ behaviour: 'slow', ms: 2500 });
    await producer.enqueue(testJobData(event), 2000);
    await waitFor(async () => (await attemptsSeen(event)).length === 1);
    // What a long event-loop stall or a network partition does: the lock lapses under the worker.
    expect(await client.del(queue.toKey(`${jobIdFor(event.id)}:lock`))).toBe(1);
    await waitFor(async () => (await client.hget('aborted', event.id)) === 'HandlerAbortedError', {
      description: 'the handler aborted after the failed lock renewal',
    });
    expect(lines.some((l) => l.msg === 'Job lock lost; aborting handler')).toBe(true);
    // Its claim was released, so the stall checker's re-run claims the event and finishes it.
    // (Whether BullMQ also counts the aborted run as a failed attempt depends on which of the
    // two reaches Redis first; either way the effect happens once, and never beside another run.)
    await waitFor(async () => (await effects(event)) === 1, { timeoutMs: 15_000 });
    const seen = await attemptsSeen(event);
    expect(seen[0]).toBe('1');
    expect(seen.length).toBeGreaterThanOrEqual(2);
    expect(await client.scard('overlaps')).toBe(0);
    // And nothing runs it again afterwards.
    expect((await finished(queue, event)).state).toBe('completed');
    expect(await effects(event)).toBe(1);
  });
});

describe('createWorker: idempotency', () => {
  it('runs the effect once for 5 concurrent, 5 sequential and post-removal deliveries', async () => {
    const settings = testSettings();
    const { lines } = await startWorker(settings);
    const producer = await producerFor(settings);
    const queue = queueFor(settings);
    const event = newEvent({ behaviour: 'slow', ms: 200 });
    const concurrent = await Promise.all(
      Array.from({ length: 5 }, () => producer.enqueue(testJobData(event), 2000)),
    );
    // Racing adds may each answer 'enqueued'; BullMQ's job id keeps them one job.
    expect(concurrent.every((outcome) => outcome === 'enqueued' || outcome === 'duplicate')).toBe(
      true,
    );
    const counts = await queue.getJobCounts();
    expect(Object.values(counts).reduce((sum, n) => sum + n, 0)).toBe(1);
    for (let i = 0; i < 5; i++) {
      expect(await producer.enqueue(testJobData(event), 2000)).toBe('duplicate');
    }
    await finished(queue, event);
    for (let i = 0; i < 5; i++) {
      expect(await producer.enqueue(testJobData(event), 2000)).toBe('duplicate');
    }
    // An operator re-running the finished job does not run the handler again.
    await (await queue.getJob(jobIdFor(event.id)))?.retry('completed');
    await waitFor(() => lines.some((l) => l.eventId === event.id && l.outcome === 'skipped-done'));
    await finished(queue, event);
    // Job trimmed: the producer still answers duplicate from the done-marker...
    await (await queue.getJob(jobIdFor(event.id)))?.remove();
    expect(await producer.enqueue(testJobData(event), 2000)).toBe('duplicate');
    // ...and a job that gets in anyway (a race with ingest, a replay) is skipped by the worker.
    await queue.add(event.type, testJobData(event), { jobId: jobIdFor(event.id) });
    await queue.add(event.type, testJobData(event), { jobId: 'replayed-copy' });
    await waitFor(
      () =>
        lines.filter((l) => l.eventId === event.id && l.outcome === 'skipped-done').length === 3,
      { description: 'the retried job and both late jobs skipped' },
    );
    expect(await effects(event)).toBe(1);
    expect(await attemptsSeen(event)).toEqual(['1']);
  });

  it('keeps trying the done-mark when Redis refuses it right after the handler, so the effect stays once', async () => {
    const settings = testSettings();
    const { lines } = await startWorker(settings);
    const producer = await producerFor(settings);
    const queue = queueFor(settings);
    const event = newEvent({ behaviour: 'refuse-writes', ms: 700 });
    expect(await producer.enqueue(testJobData(event), 2000)).toBe('enqueued');
    await finished(queue, event);
    expect(await effects(event)).toBe(1);
    expect(await attemptsSeen(event)).toEqual(['1']);
    expect(await store.isDone(event.id)).toBe(true);
    expect(lines.some((l) => l.eventId === event.id && l.outcome === 'completed')).toBe(true);
  });

  it('remembers a handled event for IDEMPOTENCY_TTL_SECONDS: a duplicate just before the expiry is one, just after it runs again', async () => {
    const settings = testSettings({ idempotencyTtlSeconds: 4 });
    const { lines } = await startWorker(settings);
    const producer = await producerFor(settings);
    const queue = queueFor(settings);
    const event = newEvent({});
    expect(await producer.enqueue(testJobData(event), 2000)).toBe('enqueued');
    await finished(queue, event);
    const expiry = await store.doneUntil(event.id);
    if (expiry === undefined) throw new Error('no done-marker');
    const redisNow = async () => {
      const [seconds, micros] = await client.time();
      return Number(seconds) + Number(micros) / 1e6;
    };
    // Its job trimmed, as completed jobs are: only the marker knows the event.
    await (await queue.getJob(jobIdFor(event.id)))?.remove();
    // A second job of the event within the TTL is skipped by the worker.
    await queue.add(event.type, testJobData(event), { jobId: 'within-ttl' });
    await waitFor(() => lines.some((l) => l.eventId === event.id && l.outcome === 'skipped-done'));
    // Just before the expiry (the first half of its last second, by Redis's clock): a duplicate.
    await waitFor(
      async () => {
        const now = await redisNow();
        return now >= expiry - 1 && now < expiry - 0.5;
      },
      { timeoutMs: 10_000, intervalMs: 5, description: 'the last second before the expiry' },
    );
    expect(await producer.enqueue(testJobData(event), 2000)).toBe('duplicate');
    expect(await redisNow()).toBeLessThan(expiry);
    // From the expiry on, the event is new: enqueued, and its handler runs again.
    await waitFor(async () => (await redisNow()) >= expiry, { timeoutMs: 10_000 });
    expect(await producer.enqueue(testJobData(event), 2000)).toBe('enqueued');
    await waitFor(async () => (await effects(event)) === 2, { description: 'the second run' });
    expect(outcomes(lines, event)).toEqual(['1:completed', '1:skipped-done', '1:completed']);
  });

  it('honours done-markers of the previous layout (one key per event) until they expire', async () => {
    const settings = testSettings();
    const { lines } = await startWorker(settings);
    const producer = await producerFor(settings);
    const queue = queueFor(settings);
    const event = newEvent({});
    // What a worker of the previous version left: groq:event:<id> = done, expiring.
    await client.set(idempotencyKey(event.id), 'done', 'PX', 2000);
    expect(await producer.enqueue(testJobData(event), 2000)).toBe('duplicate');
    // A job that gets in anyway is skipped.
    await queue.add(event.type, testJobData(event), { jobId: jobIdFor(event.id) });
    await waitFor(() => lines.some((l) => l.eventId === event.id && l.outcome === 'skipped-done'));
    expect(await effects(event)).toBe(0);
    // Once it has expired the event is new.
    await (await queue.getJob(jobIdFor(event.id)))?.remove();
    await waitFor(async () => (await client.exists(idempotencyKey(event.id))) === 0);
    expect(await producer.enqueue(testJobData(event), 2000)).toBe('enqueued');
    await waitFor(async () => (await effects(event)) === 1);
  });

  it('during the rollout window of an upgrade, also leaves the previous layout’s marker', async () => {
    const own = await startRedis();
    cleanups.push(() => own.cleanup());
    const ownClient = connectTo(own.url, 'worker', 'rollout-effects');
    cleanups.push(() => closeRedis(ownClient));
    const settings = testSettings();
    // A worker of the previous version ran here: it left completed jobs.
    await ownClient.zadd(`{groq}:${settings.queueName}:completed`, Date.now(), 'evt-old');
    const { worker, lines } = makeWorker(
      settings,
      recordingHandlers(() => ownClient),
      own.url,
    );
    await worker.start();
    expect(lines.some((l) => String(l.msg).startsWith('Done-markers of the previous layout'))).toBe(
      true,
    );
    const producer = await producerAt(own.url, settings, 'rollout-producer');
    const event = newEvent({});
    await producer.enqueue(testJobData(event), 2000);
    const ownStore = new IdempotencyStore(ownClient);
    await waitFor(() => ownStore.isDone(event.id), { description: 'the done-marker' });
    // A worker of the previous version reads this one, and skips the event too.
    expect(await ownClient.get(idempotencyKey(event.id))).toBe('done');
    expect(await ownClient.ttl(idempotencyKey(event.id))).toBeGreaterThan(3500);
  });

  it('never runs one event in two workers at once: the second job waits without spending an attempt', async () => {
    const settings = testSettings();
    const first = await startWorker(settings);
    const second = await startWorker(settings);
    const queue = queueFor(settings);
    const event = newEvent({ behaviour: 'slow', ms: 600 });
    // Two distinct jobs for one event (e.g. a replay racing the original), taken in parallel.
    await queue.addBulk([
      { name: event.type, data: testJobData(event), opts: { jobId: 'copy-a' } },
      { name: event.type, data: testJobData(event), opts: { jobId: 'copy-b' } },
    ]);
    const lines = () => [...first.lines, ...second.lines];
    await waitFor(async () => (await queue.getCompletedCount()) === 2, { timeoutMs: 10_000 });
    expect(await effects(event)).toBe(1);
    expect(await client.sismember('overlaps', event.id)).toBe(0);
    const seen = lines()
      .filter((l) => l.eventId === event.id)
      .map((l) => l.outcome);
    expect(seen).toContain('delayed-busy');
    expect(seen.filter((o) => o === 'completed')).toHaveLength(1);
    expect(seen.filter((o) => o === 'skipped-done')).toHaveLength(1);
    // Each job's only counted attempt is its completion: waiting on the claim spent none.
    for (const id of ['copy-a', 'copy-b']) {
      expect((await queue.getJob(id))?.attemptsMade).toBe(1);
    }
  });
});

describe('createWorker: per-resource ordering', () => {
  /** Handlers that note, per event, the resource key they saw and each run's interval. */
  function orderedHandlers(options?: HandlerOptions) {
    const runs: { id: string; resourceKey: string | undefined; start: number; end: number }[] = [];
    const handle = async (
      event: { id: string; data: Record<string, unknown> },
      ctx: HandlerContext,
    ) => {
      const start = performance.now();
      await new Promise((resolve) => setTimeout(resolve, Number(event.data.ms ?? 0)));
      runs.push({ id: event.id, resourceKey: ctx.resourceKey, start, end: performance.now() });
    };
    const map = {
      'resource.created': handle,
      'resource.updated': handle,
      'resource.deleted': handle,
    } as unknown as HandlerMap;
    return { handlers: options === undefined ? map : defineHandlers(map, options), runs };
  }

  function resourceEvent(type: string, resource: string, createdSeconds: number, ms = 0) {
    return testEnvelope({
      type,
      data: { id: resource, ms },
      created: new Date(Date.UTC(2026, 10, 28, 10, 0, createdSeconds)).toISOString(),
    });
  }

  it('keeps a deleted resource deleted for a late older update; a newer creation is applied', async () => {
    const settings = testSettings();
    const { handlers, runs } = orderedHandlers();
    const { lines, registry } = await startWorker(settings, handlers);
    const producer = await producerFor(settings);
    const queue = queueFor(settings);
    const deleted = resourceEvent('resource.deleted', 'res_tomb', 5);
    const lateUpdate = resourceEvent('resource.updated', 'res_tomb', 4);
    const created = resourceEvent('resource.created', 'res_tomb', 6);
    for (const event of [deleted, lateUpdate, created]) {
      await producer.enqueue(testJobData(event), 2000);
      expect((await finished(queue, event)).state).toBe('completed');
    }
    expect(runs.map((run) => run.id)).toEqual([deleted.id, created.id]);
    expect(runs.every((run) => run.resourceKey === 'res_tomb')).toBe(true);
    expect(lines.find((l) => l.eventId === lateUpdate.id && l.outcome === 'stale')?.msg).toBe(
      'Event older than its resource’s deletion; completed as stale',
    );
    // A stale event is done: its redelivery is a duplicate.
    expect(await producer.enqueue(testJobData(lateUpdate), 2000)).toBe('duplicate');
    expect(
      metricValue(await registry.metrics(), 'groq_worker_jobs_stale_total', {
        type: 'resource.updated',
      }),
    ).toBe(1);
  });

  it('runs the events of one resource one at a time, without spending attempts', async () => {
    const settings = testSettings({ concurrency: 10 });
    const { handlers, runs } = orderedHandlers();
    await startWorker(settings, handlers);
    await startWorker(settings, handlers);
    const producer = await producerFor(settings);
    const queue = queueFor(settings);
    const events = Array.from({ length: 12 }, (_, i) =>
      resourceEvent('resource.updated', i % 2 === 0 ? 'res_even' : 'res_odd', 10, 40),
    );
    await Promise.all(events.map((event) => producer.enqueue(testJobData(event), 2000)));
    for (const event of events) expect((await finished(queue, event)).state).toBe('completed');
    // Equal created times: all applied, one at a time per resource.
    expect(runs).toHaveLength(12);
    for (const resource of ['res_even', 'res_odd']) {
      const mine = runs
        .filter((run) => run.resourceKey === resource)
        .sort((a, b) => a.start - b.start);
      for (let i = 1; i < mine.length; i++) {
        expect(mine[i]?.start).toBeGreaterThanOrEqual(mine[i - 1]?.end ?? Number.POSITIVE_INFINITY);
      }
    }
    for (const event of events) {
      expect((await queue.getJob(jobIdFor(event.id)))?.attemptsMade).toBe(1);
    }
  });

  it("with ordering 'none', runs every event as it comes, as before", async () => {
    const settings = testSettings({ concurrency: 10 });
    const { handlers, runs } = orderedHandlers({ ordering: 'none' });
    const { lines } = await startWorker(settings, handlers);
    const producer = await producerFor(settings);
    const queue = queueFor(settings);
    const newer = resourceEvent('resource.updated', 'res_free', 20);
    await producer.enqueue(testJobData(newer), 2000);
    await finished(queue, newer);
    const older = resourceEvent('resource.updated', 'res_free', 10);
    const together = Array.from({ length: 4 }, () =>
      resourceEvent('resource.updated', 'res_free', 30, 200),
    );
    for (const event of [older, ...together]) await producer.enqueue(testJobData(event), 2000);
    for (const event of [older, ...together]) await finished(queue, event);
    expect(runs.map((run) => run.id)).toContain(older.id);
    expect(lines.some((l) => l.outcome === 'stale' || l.outcome === 'delayed-resource')).toBe(
      false,
    );
    // Events of one resource overlapped: nothing kept them apart.
    const slow = runs.filter((run) => together.some((event) => event.id === run.id));
    expect(Math.min(...slow.map((run) => run.end))).toBeGreaterThan(
      Math.max(...slow.map((run) => run.start)),
    );
    expect(await client.exists('groq:resource:res_free')).toBe(0);
  });
});

describe('createWorker: lifecycle and metrics', () => {
  it('exposes processed counts, handler durations and queue depth by state', async () => {
    const settings = testSettings();
    const { registry } = await startWorker(settings);
    const producer = await producerFor(settings);
    const queue = queueFor(settings);
    const events = [newEvent({}), newEvent({}), newEvent({}, 'resource.deleted')];
    for (const event of events) await producer.enqueue(testJobData(event), 2000);
    for (const event of events) await finished(queue, event);
    const text = await registry.metrics();
    expect(
      metricValue(text, 'groq_worker_jobs_processed_total', { type: 'resource.created' }),
    ).toBe(2);
    expect(
      metricValue(text, 'groq_worker_jobs_processed_total', { type: 'resource.deleted' }),
    ).toBe(1);
    expect(
      metricValue(text, 'groq_worker_handler_duration_seconds_count', { type: 'resource.created' }),
    ).toBe(2);
    expect(metricValue(text, 'groq_worker_queue_depth', { state: 'completed' })).toBe(3);
    expect(metricValue(text, 'groq_worker_queue_depth', { state: 'waiting' })).toBe(0);
  });

  it('consumes every queue shard', async () => {
    const settings = testSettings({ queueShards: 3 });
    await startWorker(settings);
    const producer = await producerFor(settings);
    const events = Array.from({ length: 30 }, () => newEvent({}));
    for (const event of events) await producer.enqueue(testJobData(event), 2000);
    await waitFor(async () => {
      const counts = await client.hmget('effects', ...events.map((event) => event.id));
      return counts.every((count) => count === '1');
    });
    const perShard = await Promise.all(
      queueShards(settings).map(async (shard) => {
        const queue = openQueue(client, shard, settings);
        const completed = await queue.getCompletedCount();
        await queue.close();
        return completed;
      }),
    );
    expect(perShard.reduce((sum, n) => sum + n, 0)).toBe(30);
    for (const completed of perShard) expect(completed).toBeGreaterThan(0);
  });

  it('starts while Redis is down and begins once it answers', async () => {
    const port = await freePort();
    const settings = testSettings();
    const lateClient = connectTo(`redis://127.0.0.1:${port}`, 'worker', 'late-effects');
    cleanups.push(() => closeRedis(lateClient));
    const { worker, lines } = makeWorker(
      settings,
      recordingHandlers(() => lateClient),
      `redis://127.0.0.1:${port}`,
    );
    let started = false;
    const starting = worker.start().then(() => {
      started = true;
    });
    await waitFor(
      () => lines.some((line) => line.msg === 'Redis is not reachable yet; waiting for it'),
      {
        description: 'the waiting-for-Redis line',
      },
    );
    expect(started).toBe(false);
    const late = await startRedis({ port });
    cleanups.push(() => late.cleanup());
    await starting;
    const producer = await producerAt(late.url, settings, 'late-producer');
    const event = newEvent({});
    await producer.enqueue(testJobData(event), 2000);
    await waitFor(async () => (await lateClient.hget('effects', event.id)) === '1', {
      description: 'effect after Redis came up',
    });
    await worker.close(500);
  });

  it('keeps working across a Redis restart', async () => {
    const own = await startRedis({ appendOnly: true });
    cleanups.push(() => own.cleanup());
    let current = own;
    cleanups.push(() => current.cleanup());
    const ownClient = connectTo(own.url, 'worker', 'restart-effects');
    cleanups.push(() => closeRedis(ownClient));
    const settings = testSettings();
    const { worker } = makeWorker(
      settings,
      recordingHandlers(() => ownClient),
      own.url,
    );
    await worker.start();
    const producer = await producerAt(own.url, settings, 'restart-producer');
    const send = async (event: Envelope) =>
      waitFor(() => producer.enqueue(testJobData(event), 2000), { timeoutMs: 15_000 });
    const before = newEvent({});
    await send(before);
    await waitFor(async () => (await ownClient.hget('effects', before.id)) === '1');
    await own.stop();
    current = await own.restart();
    const after = newEvent({});
    await send(after);
    await waitFor(async () => (await ownClient.hget('effects', after.id)) === '1', {
      timeoutMs: 15_000,
      description: 'an event handled after the restart',
    });
    expect(await ownClient.hget('effects', before.id)).toBe('1');
    await worker.close(500);
  });

  it('at the shutdown grace deadline aborts the handler and puts the job back without spending an attempt', async () => {
    const settings = testSettings({ jobAttempts: 1 });
    const first = await startWorker(settings);
    const producer = await producerFor(settings);
    const queue = queueFor(settings);
    const event = newEvent({ behaviour: 'slow', ms: 1500 });
    await producer.enqueue(testJobData(event), 2000);
    await waitFor(async () => (await attemptsSeen(event)).length === 1);
    const closedAt = Date.now();
    await first.worker.close(300);
    expect(Date.now() - closedAt).toBeLessThan(2000);
    expect(await client.hget('aborted', event.id)).toBe('ShutdownAbortError');
    expect(outcomes(first.lines, event)).toEqual(['1:delayed-shutdown']);
    const job = await queue.getJob(jobIdFor(event.id));
    expect(job?.attemptsMade).toBe(0);
    expect(await client.exists(idempotencyKey(event.id))).toBe(0);
    // With a single attempt allowed, it still completes on the next worker.
    await startWorker(settings);
    const { state } = await finished(queue, event);
    expect(state).toBe('completed');
    expect(await effects(event)).toBe(1);
    expect(await attemptsSeen(event)).toEqual(['1', '1']);
  });
});
