import {
  type Context,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  type TextMapGetter,
  trace,
} from '@opentelemetry/api';

/**
 * A span's context as text fields, as the configured propagator writes them (W3C Trace Context
 * by default: `traceparent`, and `tracestate` when there is one): how a job carries its
 * delivery's trace from the ingest to the worker.
 */
export type TraceCarrier = Readonly<Record<string, string>>;

/** The fields that carry `span`'s context to another process. */
export function traceCarrier(span: Span): TraceCarrier {
  const carrier: Record<string, string> = {};
  propagation.inject(trace.setSpan(ROOT_CONTEXT, span), carrier);
  return carrier;
}

/** Reads string fields only: a stored carrier comes from Redis, which anything may write. */
const STRING_FIELDS: TextMapGetter<Record<string, unknown>> = {
  get: (carrier, key) => {
    const value = carrier[key];
    return typeof value === 'string' ? value : undefined;
  },
  keys: (carrier) => Object.keys(carrier),
};

/** The context a stored carrier names; the root context when it names none or is no object. */
export function contextFromCarrier(carrier: unknown): Context {
  if (carrier === null || typeof carrier !== 'object' || Array.isArray(carrier)) {
    return ROOT_CONTEXT;
  }
  return propagation.extract(ROOT_CONTEXT, carrier as Record<string, unknown>, STRING_FIELDS);
}

/** The span context a stored carrier names (for a span link), or undefined. */
export function spanContextFromCarrier(carrier: unknown): SpanContext | undefined {
  const spanContext = trace.getSpanContext(contextFromCarrier(carrier));
  return spanContext !== undefined && isSpanContextValid(spanContext) ? spanContext : undefined;
}

/** A span's ids as log fields, so that a log line leads to its trace. */
export interface TraceLogFields {
  trace_id: string;
  span_id: string;
}

/** {@link TraceLogFields} of `span`. */
export function traceLogFields(span: Span): TraceLogFields {
  const { traceId, spanId } = span.spanContext();
  return { trace_id: traceId, span_id: spanId };
}
