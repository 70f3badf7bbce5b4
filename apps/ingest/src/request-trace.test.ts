import {
  chooseQueuePath,
  closeRedis,
  createRedis,
  EventProducer,
  jobIdFor,
  QueueUnavailableError,
  type RedisClient,
  storedTrace,
} from '@groq-webhooks/queue';
import { computeSignature } from '@groq-webhooks/signature';
import { createLogger } from '@groq-webhooks/telemetry';
import {
  captureLines,
  startRedis,
  type TestRedis,
  testEnvelope,
  testQueuePath,
  waitFor,
} from '@groq-webhooks/testing';
import { propagation, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  AlwaysOffSampler,
  InMemorySpanExporter,
  ParentBasedSampler,
  type ReadableSpan,
  SimpleSpanProcessor,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from './app.js';
import { createIngestMetrics } from './metrics.js';
import type { Producer } from './types.js';

const SECRET = 'whsec_TracedReceiverSecret0123456789';
const NOW_SECONDS = 1_795_000_000;
const settings = {
  queueName: 'traced-events',
  queuePrefix: '{groq}',
  queueShards: 1,
  jobAttempts: 8,
  backoffBaseMs: 1000,
};

describe('request spans', () => {
  let redis: TestRedis;
  let client: RedisClient;
  let producer: EventProducer;
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  const tracer = provider.getTracer('test');

  beforeAll(async () => {
    // What the SDK registers by default (OTEL_PROPAGATORS unset: W3C Trace Context first).
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    redis = await startRedis();
    client = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'producer');
    await waitFor(() => client.status === 'ready');
    const { path } = await chooseQueuePath(testQueuePath(), { isCluster: false });
    producer = new EventProducer({ client, settings, path });
  });
  afterEach(() => exporter.reset());
  afterAll(async () => {
    propagation.disable();
    await producer?.close();
    if (client) await closeRedis(client);
    await redis?.cleanup();
  });

  function build(overrides: { producer?: Producer; tracer?: typeof tracer } = {}) {
    const logs = captureLines();
    const app = createApp({
      producer: overrides.producer ?? producer,
      secrets: [SECRET],
      toleranceSeconds: 300,
      maxBodyBytes: 4096,
      enqueueTimeoutMs: 1000,
      logger: createLogger({ service: 'ingest', destination: logs.destination }),
      metrics: createIngestMetrics(),
      isReady: () => true,
      now: () => NOW_SECONDS * 1000,
      tracing: {
        tracer: overrides.tracer ?? tracer,
        storedTrace: (eventId) => storedTrace(client, settings, eventId),
      },
    });
    return { app, logs: logs.lines };
  }

  async function post(
    app: ReturnType<typeof build>['app'],
    event: object,
    secret = SECRET,
  ): Promise<{ status: number; signature: string }> {
    const body = JSON.stringify(event);
    const signature = computeSignature(secret, String(NOW_SECONDS), body);
    const response = await app.request('/webhooks/groq', {
      method: 'POST',
      headers: { 'x-groq-signature': signature, 'x-groq-timestamp': String(NOW_SECONDS) },
      body,
    });
    return { status: response.status, signature };
  }

  function named(name: string, spans = exporter.getFinishedSpans()): ReadableSpan {
    const found = spans.find((span) => span.name === name);
    if (found === undefined) throw new Error(`no span ${name}`);
    return found;
  }

  const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;

  it('an accepted request: a root span with its verification and enqueue, whose context the job carries', async () => {
    const { app, logs } = build();
    const event = testEnvelope();
    expect((await post(app, event)).status).toBe(200);
    const request = named('POST /webhooks/groq');
    const verify = named('verify signature');
    const enqueue = named('enqueue');
    expect(request.kind).toBe(SpanKind.SERVER);
    expect(request.parentSpanContext).toBeUndefined();
    expect(request.attributes).toMatchObject({
      'groq.event.id': event.id,
      'groq.event.type': 'resource.created',
      'groq.key_index': 0,
      'groq.webhook.outcome': 'received',
      'http.response.status_code': 200,
    });
    expect(request.status.code).toBe(SpanStatusCode.UNSET);
    expect(parentOf(verify)).toBe(request.spanContext().spanId);
    expect(verify.attributes).toEqual({ 'groq.key_index': 0 });
    expect(enqueue.kind).toBe(SpanKind.PRODUCER);
    expect(parentOf(enqueue)).toBe(request.spanContext().spanId);
    expect(enqueue.attributes['groq.enqueue.outcome']).toBe('enqueued');

    const data = JSON.parse(
      (await client.hget(`{groq}:${settings.queueName}:${jobIdFor(event.id)}`, 'data')) ?? '{}',
    );
    const { traceId, spanId } = enqueue.spanContext();
    expect(data.trace).toEqual({ traceparent: `00-${traceId}-${spanId}-01` });
    expect(data.event).toEqual(event);
    const line = logs.find((l) => l.msg === 'webhook accepted');
    expect(line).toMatchObject({ trace_id: traceId, span_id: request.spanContext().spanId });
  });

  it('a wrong signature: the verification fails with its reason, never the signature', async () => {
    const { app } = build();
    const { status, signature } = await post(app, testEnvelope(), 'whsec_not_the_receivers');
    expect(status).toBe(401);
    const spans = exporter.getFinishedSpans();
    expect(spans.map((span) => span.name).sort()).toEqual([
      'POST /webhooks/groq',
      'verify signature',
    ]);
    const verify = named('verify signature', spans);
    expect(verify.status).toEqual({ code: SpanStatusCode.ERROR, message: 'invalid_signature' });
    expect(verify.attributes).toEqual({ 'groq.verify.failure': 'invalid_signature' });
    const request = named('POST /webhooks/groq', spans);
    expect(request.attributes['groq.webhook.outcome']).toBe('invalid_signature');
    // A 4xx is the sender's: the server span is not in error.
    expect(request.status.code).toBe(SpanStatusCode.UNSET);
    const text = JSON.stringify(spans.map((span) => [span.attributes, span.events, span.status]));
    expect(text).not.toContain(signature);
    expect(text).not.toContain(SECRET);
  });

  it("a redelivery of a known event links its request span to the first delivery's enqueue", async () => {
    const { app } = build();
    const event = testEnvelope();
    expect((await post(app, event)).status).toBe(200);
    const first = named('enqueue').spanContext();
    exporter.reset();
    expect((await post(app, event)).status).toBe(200);
    // The request span ends once the lookup of the first trace is back.
    const redelivery = await waitFor(() =>
      exporter.getFinishedSpans().find((span) => span.name === 'POST /webhooks/groq'),
    );
    expect(redelivery.attributes['groq.webhook.outcome']).toBe('duplicate');
    expect(redelivery.spanContext().traceId).not.toBe(first.traceId);
    expect(redelivery.links.map((link) => link.context.spanId)).toEqual([first.spanId]);
    expect(redelivery.links[0]?.context.traceId).toBe(first.traceId);
  });

  it('an unsampled request: nothing recorded, and the job carries the unsampled context on', async () => {
    const unsampled = new TracerProvider({
      sampler: new ParentBasedSampler({ root: new AlwaysOffSampler() }),
      spanProcessors: [new SimpleSpanProcessor({ exporter })],
    }).getTracer('test');
    const { app, logs } = build({ tracer: unsampled });
    const event = testEnvelope();
    expect((await post(app, event)).status).toBe(200);
    expect((await post(app, event)).status).toBe(200);
    expect(exporter.getFinishedSpans()).toEqual([]);
    const data = JSON.parse(
      (await client.hget(`{groq}:${settings.queueName}:${jobIdFor(event.id)}`, 'data')) ?? '{}',
    );
    // The worker's parent-based sampler reads the flags (00) and records nothing either.
    const line = logs.find((l) => l.msg === 'webhook accepted' && l.code === 'received');
    expect(data.trace).toEqual({ traceparent: `00-${line?.trace_id}-${line?.span_id}-00` });
  });

  it('Redis unavailable: the enqueue span holds the error, and the 503 puts the request in error', async () => {
    const unavailable: Producer = {
      enqueue: () => Promise.reject(new QueueUnavailableError('Redis is reconnecting')),
    };
    const { app } = build({ producer: unavailable });
    expect((await post(app, testEnvelope())).status).toBe(503);
    const enqueue = named('enqueue');
    expect(enqueue.status).toEqual({
      code: SpanStatusCode.ERROR,
      message: 'Redis is reconnecting',
    });
    expect(enqueue.events.map((event) => event.name)).toEqual(['exception']);
    const request = named('POST /webhooks/groq');
    expect(request.status.code).toBe(SpanStatusCode.ERROR);
    expect(request.attributes).toMatchObject({
      'groq.webhook.outcome': 'queue_unavailable',
      'http.response.status_code': 503,
      'error.type': 'QueueUnavailableError',
    });
  });
});
