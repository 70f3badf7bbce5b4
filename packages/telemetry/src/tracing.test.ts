import { propagation, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { TracerProvider } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  contextFromCarrier,
  spanContextFromCarrier,
  traceCarrier,
  traceLogFields,
} from './trace-context.js';
import { startTracing, tracingRequested } from './tracing.js';

describe('tracingRequested', () => {
  it.each([
    [{}, false],
    [{ OTEL_SERVICE_NAME: 'x', OTEL_TRACES_SAMPLER: 'always_on' }, false],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }, true],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: '  ' }, false],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' }, true],
    [{ OTEL_TRACES_EXPORTER: 'console' }, true],
    [{ OTEL_TRACES_EXPORTER: 'otlp, zipkin' }, true],
    [{ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }, false],
    // The SDK's reading: `none` among others is its default exporter.
    [{ OTEL_TRACES_EXPORTER: 'otlp,none' }, true],
    [{ OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }, false],
    [{ OTEL_SDK_DISABLED: 'TRUE', OTEL_TRACES_EXPORTER: 'console' }, false],
    [{ OTEL_SDK_DISABLED: 'false', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }, true],
  ])('%j → %s', (env, expected) => {
    expect(tracingRequested(env)).toBe(expected);
  });

  it('starts nothing when the environment asks for no traces', async () => {
    expect(await startTracing({ env: {}, service: 'test', asyncContext: true })).toBeUndefined();
  });
});

describe('trace carriers', () => {
  const tracer = new TracerProvider().getTracer('test');
  beforeAll(() => propagation.setGlobalPropagator(new W3CTraceContextPropagator()));
  afterAll(() => propagation.disable());

  it("carries a span's context as W3C fields, and reads it back", () => {
    const span = tracer.startSpan('enqueue');
    const carrier = traceCarrier(span);
    const { traceId, spanId } = span.spanContext();
    expect(carrier).toEqual({ traceparent: `00-${traceId}-${spanId}-01` });
    expect(spanContextFromCarrier(carrier)).toMatchObject({ traceId, spanId, isRemote: true });
    expect(trace.getSpanContext(contextFromCarrier(carrier))?.spanId).toBe(spanId);
    expect(traceLogFields(span)).toEqual({ trace_id: traceId, span_id: spanId });
  });

  it('reads what anything may have written to Redis without throwing', () => {
    for (const stored of [
      undefined,
      null,
      42,
      'traceparent',
      [],
      {},
      { traceparent: 42 },
      { traceparent: ['00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'] },
      { traceparent: '00-00000000000000000000000000000000-b7ad6b7169203331-01' },
      { traceparent: 'not a traceparent' },
    ]) {
      expect(contextFromCarrier(stored)).toBe(ROOT_CONTEXT);
      expect(spanContextFromCarrier(stored)).toBeUndefined();
    }
  });
});
