import type { IncomingMessage } from 'node:http';
import type { EnqueueOutcome, EventJobData } from '@groq-webhooks/queue';
import type { Logger, TraceCarrier } from '@groq-webhooks/telemetry';
import type { Tracer } from '@opentelemetry/api';
import type { BodyBudget } from './body-budget.js';
import type { IngestMetrics } from './metrics.js';

/** What the ingest needs from a queue producer; `EventProducer` from `@groq-webhooks/queue` fits. */
export interface Producer {
  /**
   * Resolves once Redis holds the job (or knows the event already); rejects with
   * `QueueUnavailableError` when Redis is unreachable or `timeoutMs` passes. `eventJson` is the
   * request body's text, which `data.event` was parsed from.
   */
  enqueue(data: EventJobData, timeoutMs: number, eventJson?: string): Promise<EnqueueOutcome>;
}

/**
 * Hono environment of the ingest apps. `@hono/node-server` passes Node's request as
 * `c.env.incoming` (the body is then read straight from it); `app.request()` and other runtimes
 * pass none, and the Web request is read instead.
 */
export type IngestEnv = {
  Bindings: { incoming?: IncomingMessage };
};

/** Dependencies of `createWebhookApp`. Everything with a side effect is passed in. */
export interface WebhookDeps {
  /** Puts verified events into the queue. */
  producer: Producer;
  /** Receiver secrets, current first (several while rotating). */
  secrets: readonly string[];
  /** Replay window in seconds, both ways (SPEC default 300). */
  toleranceSeconds: number;
  /** Largest accepted body in bytes (SPEC default 1 MiB). */
  maxBodyBytes: number;
  /** Deadline of one enqueue in milliseconds; past it the sender gets a 503. */
  enqueueTimeoutMs: number;
  /** One line per webhook request is written here. */
  logger: Logger;
  /** Request and enqueue metrics (the standalone ingest serves them on `GET /metrics`). */
  metrics: IngestMetrics;
  /** Wall clock in milliseconds. Default `Date.now`; injectable so tests can move time. */
  now?: () => number;
  /**
   * Request-body bytes held at once over all requests (`MAX_INFLIGHT_BODY_BYTES`); a request
   * that does not fit gets 503 `overloaded` before its body is read. Default: no ceiling.
   */
  bodyBudget?: BodyBudget;
  /** Deepest JSON nesting accepted in a body (`MAX_JSON_DEPTH`, default 64). */
  maxJsonDepth?: number;
  /** Traces every webhook request when set (the OpenTelemetry environment asked for it). */
  tracing?: IngestTracing | undefined;
}

/** What the ingest traces with: a tracer, and where a known event's first trace is found. */
export interface IngestTracing {
  /** Makes each request's spans. */
  readonly tracer: Tracer;
  /**
   * The trace context stored with an event's job (its first delivery's), for a redelivery's span
   * link; undefined when the job is gone. `storedTrace` from `@groq-webhooks/queue` fits.
   */
  storedTrace(eventId: string): Promise<TraceCarrier | undefined>;
}

/** Dependencies of `createApp`, the standalone ingest's app. */
export interface AppDeps extends WebhookDeps {
  /** Whether Redis answers now (`GET /readyz`). */
  isReady: () => boolean | Promise<boolean>;
  /** Serve `GET /metrics` on this app (default true); false when it has a port of its own. */
  metricsRoute?: boolean;
}

/**
 * How a webhook request ended: the `code` of the response body for rejections, and the label of
 * `groq_webhook_requests_total`. `requeued` answers like `received`; `request_aborted` is a body
 * the client stopped sending; `overloaded` a body that did not fit the in-flight body budget.
 */
export const OUTCOME_CODES = [
  'received',
  'duplicate',
  'requeued',
  'invalid_signature',
  'invalid_timestamp',
  'timestamp_out_of_tolerance',
  'payload_too_large',
  'invalid_payload',
  'request_aborted',
  'overloaded',
  'queue_unavailable',
  'internal_error',
] as const;

/** One of {@link OUTCOME_CODES}. */
export type OutcomeCode = (typeof OUTCOME_CODES)[number];
