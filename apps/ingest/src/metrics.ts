import { Counter, createRegistry, Histogram, type Registry } from '@groq-webhooks/telemetry';
import { CLIENT_ERROR_KINDS, type ClientErrorKind } from './client-errors.js';
import { OUTCOME_CODES, type OutcomeCode } from './types.js';

/** The ingest's Prometheus metrics. */
export interface IngestMetrics {
  /** Registry served on `GET /metrics` (with Node's default process metrics). */
  readonly registry: Registry;
  /** Counts one webhook request under its outcome code. */
  countRequest(code: OutcomeCode): void;
  /** Records how long one enqueue took, in seconds, whatever its result. */
  observeEnqueue(seconds: number): void;
  /** Counts delivery records Redis refused after their event was queued (history on). */
  countHistoryFailure(): void;
  /** Counts one request Node's HTTP server refused before the app saw it. */
  countClientError(kind: ClientErrorKind): void;
}

/** Enqueue latency buckets, seconds: a healthy Redis answers in milliseconds, the deadline is ~2 s. */
const ENQUEUE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5];

/** Creates the ingest metrics in a fresh registry (default: `createRegistry('ingest')`). */
export function createIngestMetrics(registry: Registry = createRegistry('ingest')): IngestMetrics {
  const requests = new Counter({
    name: 'groq_webhook_requests_total',
    help: 'Webhook requests by outcome code.',
    labelNames: ['code'],
    registers: [registry],
  });
  const enqueueDuration = new Histogram({
    name: 'groq_webhook_enqueue_duration_seconds',
    help: 'Time to put a verified event into Redis (successful or not).',
    buckets: ENQUEUE_BUCKETS,
    registers: [registry],
  });
  const historyFailures = new Counter({
    name: 'groq_ingest_history_record_failures_total',
    help: 'Delivery records of the event history that Redis refused after the event was queued.',
    registers: [registry],
  });
  const clientErrors = new Counter({
    name: 'groq_webhook_client_errors_total',
    help: 'Requests the HTTP server refused before the app saw them (timeouts, parser errors), by kind.',
    labelNames: ['kind'],
    registers: [registry],
  });
  for (const kind of CLIENT_ERROR_KINDS) clientErrors.inc({ kind }, 0);
  // Label objects made once (no allocation per request), and every series set to 0 up front so
  // rate() and alerts work before the first rejection of a kind.
  const labels = new Map<OutcomeCode, { code: OutcomeCode }>();
  for (const code of OUTCOME_CODES) {
    const label = { code };
    labels.set(code, label);
    requests.inc(label, 0);
  }
  return {
    registry,
    countRequest(code) {
      requests.inc(labels.get(code) ?? { code });
    },
    observeEnqueue(seconds) {
      enqueueDuration.observe(seconds);
    },
    countHistoryFailure() {
      historyFailures.inc();
    },
    countClientError(kind) {
      clientErrors.inc({ kind });
    },
  };
}
