import { join } from 'node:path';
import { closeRedis, createRedis, jobIdFor, type RedisClient } from '@groq-webhooks/queue';
import { sign } from '@groq-webhooks/signature';
import {
  type CollectedSpan,
  freePort,
  type OtlpReceiver,
  type RunningProcess,
  startOtlpReceiver,
  startProcess,
  startRedis,
  stopAllProcesses,
  type TestRedis,
  waitFor,
} from '@groq-webhooks/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENTRY, ROOT } from './support/paths.js';

// Real ingest and worker processes export their spans (OTLP/HTTP, JSON) to a receiver this test
// starts: one event that fails once, then succeeds, must come out as one trace.

const SECRET = 'whsec_tracing_e2e_secret_never_in_a_span';
const HANDLERS = join(ROOT, 'test/fixtures/tracing-handlers.mjs');
const SERVER = 2;
const PRODUCER = 4;
const CONSUMER = 5;
const ERROR = 2;

let redis: TestRedis;
let receiver: OtlpReceiver;
let admin: RedisClient;

beforeAll(async () => {
  redis = await startRedis();
  receiver = await startOtlpReceiver();
  admin = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'admin');
  await waitFor(() => admin.status === 'ready');
});

afterAll(async () => {
  await stopAllProcesses();
  if (admin) await closeRedis(admin);
  await receiver?.close();
  await redis?.cleanup();
});

/** What was sent, kept to prove no span holds the signature or the body. */
const sent: { signature: string; body: string }[] = [];

async function deliver(port: number, event: object): Promise<{ status: number; text: string }> {
  const body = JSON.stringify(event);
  const headers = sign({ secret: SECRET, body });
  sent.push({ signature: headers['x-groq-signature'], body });
  const response = await fetch(`http://127.0.0.1:${port}/webhooks/groq`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json' },
    body,
  });
  return { status: response.status, text: await response.text() };
}

async function startStack(
  queuePath: 'on' | 'off',
  queueName: string,
  tracingEnv: Record<string, string>,
): Promise<{ ingest: RunningProcess; worker: RunningProcess; port: number }> {
  const port = await freePort();
  const common = {
    REDIS_URL: redis.url,
    QUEUE_NAME: queueName,
    QUEUE_FAST_PATH: queuePath,
    JOB_ATTEMPTS: '3',
    BACKOFF_BASE_MS: '100',
    ...tracingEnv,
  };
  const ingest = startProcess(process.execPath, [ENTRY.ingest], {
    env: {
      ...common,
      PORT: String(port),
      HOST: '127.0.0.1',
      GROQ_WEBHOOK_SECRET: SECRET,
      // The ingest's spans leave only when it stops: its shutdown must flush them.
      OTEL_BSP_SCHEDULE_DELAY: '600000',
    },
  });
  const worker = startProcess(process.execPath, [ENTRY.worker], {
    cwd: ROOT,
    env: {
      ...common,
      HANDLERS_MODULE: HANDLERS,
      WORKER_METRICS_PORT: '0',
      OTEL_BSP_SCHEDULE_DELAY: '50',
    },
  });
  await ingest.waitForOutput('ingest listening', 30_000);
  await worker.waitForOutput('Worker ready', 30_000);
  return { ingest, worker, port };
}

/** The spans of one trace as an indented tree: name, kind, key attributes, links. */
function renderTree(spans: CollectedSpan[]): string {
  const lines: string[] = [];
  const byParent = new Map<string | undefined, CollectedSpan[]>();
  const ids = new Set(spans.map((span) => span.spanId));
  for (const span of spans) {
    const parent =
      span.parentSpanId !== undefined && ids.has(span.parentSpanId) ? span.parentSpanId : undefined;
    byParent.set(parent, [...(byParent.get(parent) ?? []), span]);
  }
  const keys = [
    'groq.event.id',
    'groq.event.type',
    'groq.key_index',
    'groq.webhook.outcome',
    'http.response.status_code',
    'groq.enqueue.outcome',
    'groq.resource_key',
    'groq.attempt',
    'groq.attempt.outcome',
    'error.type',
  ];
  const walk = (parent: string | undefined, depth: number) => {
    for (const span of byParent.get(parent) ?? []) {
      const attributes = keys
        .filter((key) => span.attributes[key] !== undefined)
        .map((key) => `${key}=${JSON.stringify(span.attributes[key])}`);
      const error = span.events.find((event) => event.name === 'exception');
      lines.push(
        `${'  '.repeat(depth)}${span.name} [${span.service}, kind ${span.kind}, span ${span.spanId}${span.parentSpanId ? ` ← ${span.parentSpanId}` : ', root'}]${attributes.length > 0 ? ` ${attributes.join(' ')}` : ''}${span.status.code === ERROR ? ` status=ERROR(${span.status.message})` : ''}${error ? ` exception=${JSON.stringify(error.attributes['exception.message'])}` : ''}${span.links.length > 0 ? ` links=${span.links.map((link) => `${link.traceId}/${link.spanId}`).join(',')}` : ''}`,
      );
      walk(span.spanId, depth + 1);
    }
  };
  lines.push(`trace ${spans[0]?.traceId}`);
  walk(undefined, 0);
  return lines.join('\n');
}

describe.each(['on', 'off'] as const)('tracing with QUEUE_FAST_PATH=%s', (queuePath) => {
  it('one trace holds the request, its verification and enqueue, both attempts and the handler span', async () => {
    const queueName = `traced-${queuePath === 'on' ? 'fast' : 'stock'}`;
    const id = `evt_traced_${queuePath}_${Date.now()}`;
    const { ingest, worker, port } = await startStack(queuePath, queueName, {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    });
    const event = {
      id,
      type: 'resource.created',
      data: { id: 'res_traced', failOnce: true },
      created: new Date().toISOString(),
    };
    expect(await deliver(port, event)).toEqual({ status: 200, text: '{"received":true}' });
    await waitFor(
      () => worker.logLines().find((line) => line.msg === 'Event handled' && line.eventId === id),
      { timeoutMs: 20_000, description: 'the event to be handled on its second attempt' },
    );
    // The job carries the enqueue span's context, on either path.
    const data = JSON.parse(
      (await admin.hget(`{groq}:${queueName}:${jobIdFor(id)}`, 'data')) ?? '{}',
    ) as { trace?: { traceparent?: string } };
    expect(data.trace?.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    // A redelivery of the known event: a trace of its own, linked to the first.
    expect(await deliver(port, event)).toEqual({
      status: 200,
      text: '{"received":true,"duplicate":true}',
    });
    expect(await ingest.stop()).toBe(0);

    const request = await waitFor(
      () =>
        receiver
          .spans()
          .find(
            (span) =>
              span.attributes['groq.event.id'] === id &&
              span.attributes['groq.webhook.outcome'] === 'received',
          ),
      { timeoutMs: 10_000, description: 'the request span, flushed at the ingest shutdown' },
    );
    const inTrace = () => receiver.spans().filter((span) => span.traceId === request.traceId);
    const spans = await waitFor(() => (inTrace().length >= 7 ? inTrace() : undefined), {
      timeoutMs: 10_000,
      description: 'seven spans in the trace',
    });
    if (process.env.GROQ_TEST_VERBOSE === '1') process.stderr.write(`${renderTree(spans)}\n`);
    expect(spans).toHaveLength(7);

    expect(request).toMatchObject({
      name: 'POST /webhooks/groq',
      kind: SERVER,
      parentSpanId: undefined,
      service: 'groq-webhooks-ingest',
      attributes: {
        'groq.event.type': 'resource.created',
        'groq.key_index': 0,
        'http.response.status_code': 200,
      },
    });
    const children = (parent: CollectedSpan) =>
      spans.filter((span) => span.parentSpanId === parent.spanId);
    const verify = spans.find((span) => span.name === 'verify signature');
    expect(verify).toMatchObject({
      parentSpanId: request.spanId,
      attributes: { 'groq.key_index': 0 },
    });
    const enqueue = spans.find((span) => span.name === 'enqueue');
    expect(enqueue).toMatchObject({
      kind: PRODUCER,
      parentSpanId: request.spanId,
      attributes: { 'groq.event.id': id, 'groq.enqueue.outcome': 'enqueued' },
    });
    if (enqueue === undefined) throw new Error('no enqueue span');
    expect(data.trace?.traceparent).toBe(`00-${request.traceId}-${enqueue.spanId}-01`);
    expect(
      children(request)
        .map((span) => span.name)
        .sort(),
    ).toEqual(['enqueue', 'verify signature']);

    const attempts = children(enqueue).sort(
      (a, b) => Number(a.attributes['groq.attempt']) - Number(b.attributes['groq.attempt']),
    );
    expect(attempts).toHaveLength(2);
    const [first, second] = attempts as [CollectedSpan, CollectedSpan];
    for (const attempt of attempts) {
      expect(attempt).toMatchObject({
        name: `process ${queueName}`,
        kind: CONSUMER,
        service: 'groq-webhooks-worker',
        attributes: {
          'groq.event.id': id,
          'groq.event.type': 'resource.created',
          'groq.resource_key': 'res_traced',
        },
      });
    }
    expect(first.attributes).toMatchObject({
      'groq.attempt': 1,
      'groq.attempt.outcome': 'retrying',
    });
    expect(first.status.code).toBe(ERROR);
    const exception = first.events.find((e) => e.name === 'exception');
    expect(exception?.attributes['exception.message']).toBe(`payment provider timed out for ${id}`);
    expect(second.attributes).toMatchObject({
      'groq.attempt': 2,
      'groq.attempt.outcome': 'completed',
    });
    expect(second.status.code).not.toBe(ERROR);
    // The handler's own span, made with the OpenTelemetry API, nests under each attempt.
    for (const attempt of attempts) {
      expect(children(attempt).map((span) => span.name)).toEqual(['charge customer']);
    }

    // Log lines lead to their spans.
    const accepted = ingest
      .logLines()
      .find(
        (line) =>
          line.msg === 'webhook accepted' && line.eventId === id && line.code === 'received',
      );
    expect(accepted).toMatchObject({ trace_id: request.traceId, span_id: request.spanId });
    const handled = worker
      .logLines()
      .find((line) => line.msg === 'Event handled' && line.eventId === id);
    expect(handled).toMatchObject({ trace_id: request.traceId, span_id: second.spanId });
    const fromHandler = worker
      .logLines()
      .find((line) => line.msg === 'handler done' && line.eventId === id);
    expect(fromHandler).toMatchObject({ trace_id: request.traceId, span_id: second.spanId });

    // The redelivery's request span links to the first delivery's enqueue span.
    const redelivery = receiver
      .spans()
      .find(
        (span) =>
          span.attributes['groq.event.id'] === id &&
          span.attributes['groq.webhook.outcome'] === 'duplicate',
      );
    if (process.env.GROQ_TEST_VERBOSE === '1' && redelivery !== undefined) {
      const again = receiver.spans().filter((span) => span.traceId === redelivery.traceId);
      process.stderr.write(`${renderTree(again)}\n`);
    }
    expect(redelivery?.traceId).not.toBe(request.traceId);
    expect(redelivery?.links).toEqual([{ traceId: request.traceId, spanId: enqueue.spanId }]);

    // No span anywhere holds the secret, a signature or a body.
    for (const span of receiver.spans()) {
      expect(span.text).not.toContain(SECRET);
      for (const { signature, body } of sent) {
        expect(span.text).not.toContain(signature);
        expect(span.text).not.toContain(body);
      }
    }
    expect(await worker.stop()).toBe(0);
  }, 90_000);
});

describe('tracing off', () => {
  it('exports nothing and puts no trace context in jobs or logs', async () => {
    const queueName = 'tracing-disabled';
    const id = `evt_untraced_${Date.now()}`;
    const before = receiver.requests().length;
    // The endpoint stays configured; the standard switch turns the SDK off.
    const { ingest, worker, port } = await startStack('on', queueName, {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_SDK_DISABLED: 'true',
    });
    const event = {
      id,
      type: 'resource.created',
      data: { id: 'res_1' },
      created: '2026-11-28T10:00:00Z',
    };
    expect((await deliver(port, event)).status).toBe(200);
    await waitFor(
      () => worker.logLines().find((line) => line.msg === 'Event handled' && line.eventId === id),
      { timeoutMs: 20_000, description: 'the event to be handled' },
    );
    const data = JSON.parse(
      (await admin.hget(`{groq}:${queueName}:${jobIdFor(id)}`, 'data')) ?? '{}',
    ) as Record<string, unknown>;
    expect(Object.keys(data).sort()).toEqual(['event', 'keyIndex', 'receivedAt', 'turn']);
    expect(await ingest.stop()).toBe(0);
    expect(await worker.stop()).toBe(0);
    expect(ingest.logLines().find((line) => line.msg === 'ingest listening')?.tracing).toBe(false);
    expect(worker.logLines().find((line) => line.msg === 'Worker ready')?.tracing).toBe(false);
    for (const line of [...ingest.logLines(), ...worker.logLines()]) {
      expect(line.trace_id).toBeUndefined();
    }
    expect(receiver.requests().slice(before)).toEqual([]);
  }, 60_000);
});
