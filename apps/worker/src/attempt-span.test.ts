import { DelayedError, type EventJobData, type Job } from '@groq-webhooks/queue';
import { OnDemandContextManager } from '@groq-webhooks/telemetry/on-demand-context';
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  AlwaysOffSampler,
  InMemorySpanExporter,
  ParentBasedSampler,
  SimpleSpanProcessor,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { inAttemptSpan } from './attempt-span.js';
import { Attempt } from './steps/attempt.js';

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const ENQUEUE_SPAN_ID = 'b7ad6b7169203331';

/** A job as BullMQ hands it to the processor: only what an attempt reads. */
function job(trace: unknown, attemptsMade = 0): Job<EventJobData, void, string> {
  return {
    id: 'evt-evt_1',
    name: 'resource.created',
    queueName: 'groq-events',
    attemptsMade,
    data: {
      event: { id: 'evt_1', type: 'resource.created', data: {}, created: 'x' },
      receivedAt: 'x',
      keyIndex: 0,
      trace,
    },
  } as unknown as Job<EventJobData, void, string>;
}

describe('inAttemptSpan', () => {
  const exporter = new InMemorySpanExporter();
  const sampled = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  const tracer = sampled.getTracer('worker');
  const contextManager = new OnDemandContextManager();
  beforeAll(() => {
    // What the worker's SDK registers: W3C propagation, an async context (on demand) across awaits.
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    context.setGlobalContextManager(contextManager.enable());
  });
  afterEach(() => exporter.reset());
  afterAll(() => {
    propagation.disable();
    context.disable();
  });

  it("runs the attempt as a child of the job's enqueue span, active across the handler's awaits", async () => {
    const attempt = new Attempt(
      job({ traceparent: `00-${TRACE_ID}-${ENQUEUE_SPAN_ID}-01` }, 1),
      'token',
      'evt_1',
    );
    await inAttemptSpan(tracer, attempt, async () => {
      attempt.resourceKey = 'res_1';
      // The steps before the handler: the span is not active there.
      await Promise.resolve();
      expect(trace.getActiveSpan()).toBeUndefined();
      await attempt.inTrace(async () => {
        await new Promise((resolve) => setTimeout(resolve, 1));
        // A span the handler makes after an await still finds the attempt's.
        tracer.startSpan('handler work').end();
      });
      attempt.line('completed');
    });
    const spans = exporter.getFinishedSpans();
    const span = spans.find((s) => s.name === 'process groq-events');
    expect(span?.kind).toBe(SpanKind.CONSUMER);
    expect(span?.spanContext().traceId).toBe(TRACE_ID);
    expect(span?.parentSpanContext?.spanId).toBe(ENQUEUE_SPAN_ID);
    expect(span?.attributes).toMatchObject({
      'groq.attempt': 2,
      'groq.attempt.outcome': 'completed',
      'groq.event.id': 'evt_1',
      'groq.event.type': 'resource.created',
      'groq.resource_key': 'res_1',
      'messaging.message.id': 'evt-evt_1',
    });
    expect(span?.status.code).toBe(SpanStatusCode.UNSET);
    const work = spans.find((s) => s.name === 'handler work');
    expect(work?.parentSpanContext?.spanId).toBe(span?.spanContext().spanId);
    // Its log lines name the span.
    expect(attempt.line('completed')).toMatchObject({
      trace_id: TRACE_ID,
      span_id: span?.spanContext().spanId,
    });
  });

  it('records the error of a failed attempt, and rethrows it', async () => {
    const attempt = new Attempt(job(undefined), 'token', 'evt_1');
    const failure = new TypeError('payment provider timed out');
    await expect(
      inAttemptSpan(tracer, attempt, async () => {
        attempt.line('retrying');
        throw failure;
      }),
    ).rejects.toBe(failure);
    const [span] = exporter.getFinishedSpans();
    // No trace context in the job: a root of its own.
    expect(span?.parentSpanContext).toBeUndefined();
    expect(span?.status).toEqual({
      code: SpanStatusCode.ERROR,
      message: 'payment provider timed out',
    });
    expect(span?.attributes).toMatchObject({
      'groq.attempt.outcome': 'retrying',
      'error.type': 'TypeError',
    });
    expect(span?.events.map((event) => event.name)).toEqual(['exception']);
  });

  it("does not count BullMQ's put-back signal as a failure", async () => {
    const attempt = new Attempt(job('not a carrier'), 'token', 'evt_1');
    await expect(
      inAttemptSpan(tracer, attempt, async () => {
        attempt.line('delayed-busy');
        throw new DelayedError();
      }),
    ).rejects.toBeInstanceOf(DelayedError);
    const [span] = exporter.getFinishedSpans();
    expect(span?.status.code).toBe(SpanStatusCode.UNSET);
    expect(span?.events).toEqual([]);
    expect(span?.attributes['groq.attempt.outcome']).toBe('delayed-busy');
  });

  it('unsampled: records nothing, and what the handler traces stays in the unsampled trace', async () => {
    const unsampled = new TracerProvider({
      sampler: new ParentBasedSampler({ root: new AlwaysOffSampler() }),
      spanProcessors: [new SimpleSpanProcessor({ exporter })],
    }).getTracer('worker');
    const attempt = new Attempt(
      job({ traceparent: `00-${TRACE_ID}-${ENQUEUE_SPAN_ID}-00` }),
      'token',
      'evt_1',
    );
    let inner: string | undefined;
    await inAttemptSpan(unsampled, attempt, () =>
      attempt.inTrace(async () => {
        await Promise.resolve();
        const span = unsampled.startSpan('handler work');
        inner = span.spanContext().traceId;
        expect(span.isRecording()).toBe(false);
        expect(trace.getActiveSpan()?.spanContext().traceId).toBe(TRACE_ID);
        span.end();
      }),
    );
    expect(inner).toBe(TRACE_ID);
    expect(exporter.getFinishedSpans()).toEqual([]);
  });
});
