import { contextFromCarrier, traceLogFields } from '@groq-webhooks/telemetry';
import { type Span, SpanKind, SpanStatusCode, type Tracer, trace } from '@opentelemetry/api';
import { type Attempt, toError } from './steps/attempt.js';

/** Span attribute names of the project's own (the rest are OpenTelemetry's conventions). */
export const ATTEMPT_SPAN_ATTRIBUTES = {
  eventId: 'groq.event.id',
  eventType: 'groq.event.type',
  resourceKey: 'groq.resource_key',
  attempt: 'groq.attempt',
  outcome: 'groq.attempt.outcome',
} as const;

/**
 * Runs one attempt inside its span: a child of the delivery's enqueue span (the trace context
 * its job carries; a root when it carries none), made active for the handler's run
 * (`Attempt.inTrace`), so whatever the handler traces nests under it. Records the attempt's
 * number, outcome and resource key (per-resource ordering), and the error of an attempt that
 * failed.
 */
export function inAttemptSpan(
  tracer: Tracer,
  attempt: Attempt,
  run: () => Promise<void>,
): Promise<void> {
  const { job } = attempt;
  const parent = contextFromCarrier(job.data?.trace);
  const span = tracer.startSpan(`process ${job.queueName}`, { kind: SpanKind.CONSUMER }, parent);
  attempt.traced = traceLogFields(span);
  // Active while the handler runs (`Attempt.inTrace`), even when not sampled: what the handler
  // traces is then an unsampled child, where it would otherwise start traces of its own.
  attempt.traceContext = trace.setSpan(parent, span);
  // Recorded only when sampled. An unsampled span records nothing and its end does nothing: at a
  // low sampler most attempts run as they would untraced, without a layer around them.
  if (!span.isRecording()) return run();
  return recorded(span, attempt, run);
}

async function recorded(span: Span, attempt: Attempt, run: () => Promise<void>): Promise<void> {
  span.setAttributes({
    'messaging.system': 'bullmq',
    'messaging.operation.type': 'process',
    'messaging.destination.name': attempt.job.queueName,
    'messaging.message.id': attempt.jobId,
    [ATTEMPT_SPAN_ATTRIBUTES.attempt]: attempt.number,
  });
  try {
    await run();
  } catch (thrown) {
    // BullMQ's signal to put the job back without spending an attempt is no failure.
    if (!(thrown instanceof Error && thrown.name === 'DelayedError')) {
      const error = toError(thrown);
      span.recordException(error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
      span.setAttribute('error.type', error.name);
    }
    throw thrown;
  } finally {
    span.setAttribute(ATTEMPT_SPAN_ATTRIBUTES.eventId, attempt.eventId);
    span.setAttribute(ATTEMPT_SPAN_ATTRIBUTES.eventType, attempt.type);
    if (attempt.resourceKey !== undefined) {
      span.setAttribute(ATTEMPT_SPAN_ATTRIBUTES.resourceKey, attempt.resourceKey);
    }
    if (attempt.outcome !== undefined) {
      span.setAttribute(ATTEMPT_SPAN_ATTRIBUTES.outcome, attempt.outcome);
    }
    span.end();
  }
}
