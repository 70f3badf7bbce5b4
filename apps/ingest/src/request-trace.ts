import type { EnqueueOutcome } from '@groq-webhooks/queue';
import type { VerifyResult } from '@groq-webhooks/signature';
import {
  spanContextFromCarrier,
  type TraceCarrier,
  traceCarrier,
  traceLogFields,
} from '@groq-webhooks/telemetry';
import {
  type Attributes,
  type Context,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import type { IngestTracing, OutcomeCode } from './types.js';

/** Span attribute names of the project's own (the rest are OpenTelemetry's conventions). */
export const SPAN_ATTRIBUTES = {
  eventId: 'groq.event.id',
  eventType: 'groq.event.type',
  keyIndex: 'groq.key_index',
  outcome: 'groq.webhook.outcome',
  verifyFailure: 'groq.verify.failure',
  enqueueOutcome: 'groq.enqueue.outcome',
} as const;

/** Past this, a redelivery's span ends without its link to the first trace. */
const LINK_LOOKUP_MS = 1000;

/** What a request came to, as its span records it. */
export interface TracedOutcome {
  readonly code: OutcomeCode;
  readonly eventId: string | undefined;
  readonly type: string | undefined;
  readonly keyIndex: number | undefined;
  readonly error: Error | undefined;
}

/**
 * The spans of one webhook request: the request's own (a root: a sender's `traceparent` is not
 * trusted before its signature is, and would let it decide what is sampled), with a child for
 * the signature verification and one for the enqueue, whose context the job carries to the
 * worker. Only what the request came to is recorded: never a header, the body or a secret.
 */
export class RequestTrace {
  readonly #tracing: IngestTracing;
  readonly #span: Span;
  /** The request span's context, for its children; undefined when it is not sampled. */
  readonly #context: Context | undefined;
  /** The open child: the verification, then the enqueue. */
  #step: Span | undefined = undefined;
  /** A redelivery's lookup of its event's first trace, which the request span links to. */
  #link: Promise<void> | undefined = undefined;

  constructor(tracing: IngestTracing, route: string) {
    this.#tracing = tracing;
    this.#span = tracing.tracer.startSpan(`POST ${route}`, { kind: SpanKind.SERVER }, ROOT_CONTEXT);
    // An unsampled request gets no children: they would not be recorded either, and the job
    // carries the request's own context, whose sampled flag tells the worker the same. (Its
    // attributes come after the sampling decision for the same reason: the samplers the
    // environment configures decide on the trace id alone.)
    if (this.#span.isRecording()) {
      this.#span.setAttributes({ 'http.request.method': 'POST', 'http.route': route });
      this.#context = trace.setSpan(ROOT_CONTEXT, this.#span);
    } else {
      this.#context = undefined;
    }
  }

  /** The request span's ids, for its log line. */
  logFields() {
    return traceLogFields(this.#span);
  }

  /** The signature verification starts. */
  verifying(): void {
    if (this.#context === undefined) return;
    this.#step = this.#tracing.tracer.startSpan('verify signature', undefined, this.#context);
  }

  /** The verification ended: which key matched, or why none did (never the signature). */
  verified(result: VerifyResult): void {
    const span = this.#takeStep();
    if (span === undefined) return;
    if (result.ok) {
      span.setAttribute(SPAN_ATTRIBUTES.keyIndex, result.keyIndex);
    } else {
      span.setAttribute(SPAN_ATTRIBUTES.verifyFailure, result.reason);
      span.setStatus({ code: SpanStatusCode.ERROR, message: result.reason });
    }
    span.end();
  }

  /** The enqueue starts: the job's trace context, which makes the worker's spans its children. */
  enqueueing(eventId: string): TraceCarrier {
    if (this.#context === undefined) return traceCarrier(this.#span);
    const span = this.#tracing.tracer.startSpan(
      'enqueue',
      {
        kind: SpanKind.PRODUCER,
        attributes: {
          'messaging.system': 'bullmq',
          'messaging.operation.type': 'send',
          [SPAN_ATTRIBUTES.eventId]: eventId,
        },
      },
      this.#context,
    );
    this.#step = span;
    return traceCarrier(span);
  }

  /**
   * The enqueue succeeded. A known event (a duplicate, or a failed job put back) links the
   * request to its first delivery's trace, looked up in Redis while the answer goes out.
   */
  enqueued(result: EnqueueOutcome, eventId: string): void {
    const span = this.#takeStep();
    span?.setAttribute(SPAN_ATTRIBUTES.enqueueOutcome, result);
    span?.end();
    if (result !== 'enqueued' && this.#span.isRecording()) this.#link = this.#linkFirst(eventId);
  }

  /** The request is answered: its outcome, and an error for what failed on the server side. */
  end(outcome: TracedOutcome, status: number): void {
    if (this.#context === undefined) {
      // Unsampled: nothing is recorded, and building it would cost on every request.
      this.#span.end();
      return;
    }
    const error = outcome.error;
    const open = this.#takeStep();
    if (open !== undefined) {
      // The step the request failed in.
      if (error !== undefined) recordError(open, error);
      open.end();
    }
    const attributes: Attributes = {
      'http.response.status_code': status,
      [SPAN_ATTRIBUTES.outcome]: outcome.code,
    };
    if (outcome.eventId !== undefined) attributes[SPAN_ATTRIBUTES.eventId] = outcome.eventId;
    if (outcome.type !== undefined) attributes[SPAN_ATTRIBUTES.eventType] = outcome.type;
    if (outcome.keyIndex !== undefined) attributes[SPAN_ATTRIBUTES.keyIndex] = outcome.keyIndex;
    this.#span.setAttributes(attributes);
    // A server span is in error for 5xx only: a 4xx is the sender's mistake, answered as designed.
    if (status >= 500) {
      this.#span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.code });
      if (error !== undefined) this.#span.setAttribute('error.type', error.name);
    }
    if (this.#link === undefined) {
      this.#span.end();
      return;
    }
    // Ends at the answer, not when the lookup returns (a performance time, as the SDK's own).
    const answeredAt = performance.now();
    void this.#link.then(() => this.#span.end(answeredAt));
  }

  #takeStep(): Span | undefined {
    const step = this.#step;
    this.#step = undefined;
    return step;
  }

  async #linkFirst(eventId: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const carrier = await Promise.race([
        this.#tracing.storedTrace(eventId),
        new Promise<undefined>((resolve) => {
          timer = setTimeout(() => resolve(undefined), LINK_LOOKUP_MS);
        }),
      ]);
      const first = spanContextFromCarrier(carrier);
      if (first !== undefined) this.#span.addLink({ context: first });
    } catch {
      // Redis did not answer: the span goes without its link.
    } finally {
      clearTimeout(timer);
    }
  }
}

function recordError(span: Span, error: Error): void {
  span.recordException(error);
  span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
}
