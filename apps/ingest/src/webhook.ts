import { DEFAULT_MAX_JSON_DEPTH, jsonNestedDeeperThan, parseEnvelope } from '@groq-webhooks/core';
import { type EventJobData, jobTurn, QueueUnavailableError } from '@groq-webhooks/queue';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, verify } from '@groq-webhooks/signature';
import { isoClock, writeLine } from '@groq-webhooks/telemetry';
import { type Context, Hono } from 'hono';
import { readBody, readIncoming, type WebhookHeaders, webhookHeaders } from './body.js';
import {
  IngestError,
  REJECTIONS,
  type RejectionCode,
  rejectionBody,
  verifyFailureCode,
} from './errors.js';
import { RequestTrace } from './request-trace.js';
import type { IngestEnv, OutcomeCode, WebhookDeps } from './types.js';

/** Seconds a sender is asked to wait after a 503. */
export const RETRY_AFTER_SECONDS = 5;

const JSON_HEADERS = { 'content-type': 'application/json' } as const;
const RECEIVED = JSON.stringify({ received: true });
const DUPLICATE = JSON.stringify({ received: true, duplicate: true });
const METHOD_NOT_ALLOWED = JSON.stringify({
  error: 'Method not allowed',
  code: 'method_not_allowed',
});
/** Methods the webhook route refuses with 405 (HEAD is answered by the GET route). */
const OTHER_METHODS = ['GET', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

/** What one webhook request came to, filled in as it goes and written as one log line. */
class RequestOutcome {
  code: OutcomeCode = 'internal_error';
  eventId: string | undefined = undefined;
  type: string | undefined = undefined;
  keyIndex: number | undefined = undefined;
  error: Error | undefined = undefined;
  /** Body bytes reserved in the in-flight budget, given back once the request is answered. */
  heldBytes = 0;
  /** The request's spans, when tracing. */
  trace: RequestTrace | undefined = undefined;
}

/**
 * Builds the webhook receiver: a Hono app answering `POST` on its own root (SPEC §4), to be
 * mounted where senders deliver, e.g. `app.route('/webhooks/groq', webhookApp)`. Other methods
 * on its root get 405. Side-effect free: it listens nowhere and keeps no state beyond `deps`.
 */
export function createWebhookApp(deps: WebhookDeps): Hono<IngestEnv> {
  const {
    producer,
    secrets,
    toleranceSeconds,
    maxBodyBytes,
    enqueueTimeoutMs,
    logger,
    metrics,
    tracing,
  } = deps;
  const now = deps.now ?? Date.now;
  const { bodyBudget } = deps;
  const maxJsonDepth = deps.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH;
  const tooDeep = `JSON nested deeper than ${maxJsonDepth} levels`;
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const isoNow = isoClock(now);
  // No onError here: mounted with `route()`, a sub-app's own error handler would wrap every
  // request in a middleware chain. The webhook handler answers every error itself.
  const app = new Hono<IngestEnv>();

  // One handler, not a middleware chain: Hono then calls it directly, without composing.
  app.post('/', async function webhook(c) {
    const started = performance.now();
    const outcome = new RequestOutcome();
    if (tracing !== undefined) outcome.trace = new RequestTrace(tracing, c.req.routePath);
    logger.debug('webhook request started');
    let response: Response;
    try {
      response = await receive(c, outcome);
    } catch (error) {
      outcome.code = rejectionCode(error);
      outcome.error = error instanceof Error ? error : new Error(String(error));
      response = errorResponse(c, outcome.code, error);
    }
    bodyBudget?.give(outcome.heldBytes);
    metrics.countRequest(outcome.code);
    outcome.trace?.end(outcome, response.status);
    logOutcome(outcome, response.status, performance.now() - started);
    return response;
  });

  app.on(OTHER_METHODS, '/', (c) =>
    c.body(METHOD_NOT_ALLOWED, 405, { ...JSON_HEADERS, allow: 'POST' }),
  );

  /** Receives one webhook: read, verify, parse, enqueue. Throws what it refuses. */
  async function receive(c: Context<IngestEnv>, outcome: RequestOutcome): Promise<Response> {
    // Typed as always there, but `app.request()` without an env leaves it undefined.
    const incoming = (c.env as IngestEnv['Bindings'] | undefined)?.incoming;
    // Node's raw headers when served by @hono/node-server; the Web headers otherwise (both join
    // repeated values with ", ").
    let headers: WebhookHeaders | undefined;
    let body: Uint8Array;
    if (incoming === undefined) {
      body = await readBody(c.req.raw, maxBodyBytes, bodyBudget);
    } else {
      headers = webhookHeaders(incoming.rawHeaders);
      body = await readIncoming(incoming, headers, maxBodyBytes, bodyBudget);
    }
    outcome.heldBytes = body.byteLength;
    outcome.trace?.verifying();
    const verified = verify({
      secrets,
      signature: headers ? headers.signature : c.req.header(SIGNATURE_HEADER),
      timestamp: headers ? headers.timestamp : c.req.header(TIMESTAMP_HEADER),
      body,
      nowSeconds: now() / 1000,
      toleranceSeconds,
    });
    outcome.trace?.verified(verified);
    if (!verified.ok) {
      const { reason, skewSeconds } = verified;
      throw new IngestError(
        verifyFailureCode(reason),
        skewSeconds === undefined ? { reason } : { reason, skewSeconds },
      );
    }
    outcome.keyIndex = verified.keyIndex;

    const text = decodeBody(body);
    // Before parsing: a deep event parses, but everything that serialises it later recurses.
    if (jsonNestedDeeperThan(body, maxJsonDepth)) {
      throw new IngestError('invalid_payload', { problem: tooDeep });
    }
    const parsed = parseEnvelope(parseJson(text));
    if (!parsed.ok) throw new IngestError('invalid_payload', { problem: parsed.problem });
    const event = parsed.envelope;
    outcome.eventId = event.id;
    outcome.type = event.type;

    const data: EventJobData = {
      turn: jobTurn(event),
      event,
      receivedAt: isoNow(),
      keyIndex: verified.keyIndex,
    };
    if (outcome.trace !== undefined) data.trace = outcome.trace.enqueueing(event.id);
    const enqueueStarted = performance.now();
    let result: Awaited<ReturnType<typeof producer.enqueue>>;
    try {
      // The job carries the body's text as the event: parsing it again gives the same event.
      result = await producer.enqueue(data, enqueueTimeoutMs, text);
    } finally {
      metrics.observeEnqueue((performance.now() - enqueueStarted) / 1000);
    }
    outcome.trace?.enqueued(result, event.id);
    if (result === 'duplicate') {
      outcome.code = 'duplicate';
      return c.body(DUPLICATE, 200, JSON_HEADERS);
    }
    outcome.code = result === 'requeued' ? 'requeued' : 'received';
    return c.body(RECEIVED, 200, JSON_HEADERS);
  }

  function decodeBody(body: Uint8Array): string {
    if (body.byteLength === 0)
      throw new IngestError('invalid_payload', { problem: 'body is empty' });
    try {
      return utf8.decode(body);
    } catch (error) {
      throw new IngestError('invalid_payload', { problem: 'body is not UTF-8' }, { cause: error });
    }
  }

  function parseJson(text: string): unknown {
    try {
      return JSON.parse(text);
    } catch (error) {
      // Never the parser's message: it quotes the body.
      throw new IngestError('invalid_payload', { problem: 'body is not JSON' }, { cause: error });
    }
  }

  function logOutcome(outcome: RequestOutcome, status: number, durationMs: number): void {
    const level = status < 400 ? 'info' : status < 500 ? 'warn' : 'error';
    // Building the line costs more than the request: skip it when nobody reads it.
    if (!logger.isLevelEnabled(level)) return;
    const error = outcome.error;
    const details = error instanceof IngestError ? error.details : undefined;
    const traced = outcome.trace?.logFields();
    const fields = {
      code: outcome.code,
      status,
      durationMs: Math.round(durationMs * 1000) / 1000,
      eventId: outcome.eventId,
      type: outcome.type,
      keyIndex: outcome.keyIndex,
      reason: details?.reason,
      skewSeconds: details?.skewSeconds,
      problem: details?.problem,
      cause:
        error instanceof QueueUnavailableError
          ? error.cause instanceof Error
            ? error.cause.message
            : error.message
          : undefined,
      trace_id: traced?.trace_id,
      span_id: traced?.span_id,
    };
    const msg = status < 400 ? 'webhook accepted' : 'webhook rejected';
    if (error === undefined || details !== undefined || error instanceof QueueUnavailableError) {
      // Flat fields only: written straight, as pino would (see writeLine).
      writeLine(logger, level, fields, msg);
    } else {
      logger[level]({ ...fields, err: error }, msg);
    }
  }

  return app;
}

/**
 * The one place errors become HTTP: rejections get their contract status and body, a queue
 * outage a 503 the sender retries, anything else (a bug) a 500 that names nothing.
 */
export function errorResponse(
  c: Context<IngestEnv>,
  code: RejectionCode,
  error: unknown,
): Response {
  if (code === 'queue_unavailable') {
    return c.body(rejectionBody(code), 503, {
      ...JSON_HEADERS,
      'retry-after': String(RETRY_AFTER_SECONDS),
    });
  }
  if (code === 'overloaded') {
    // Its body was never read: close the connection rather than drain an upload we refused.
    return c.body(rejectionBody(code), 503, {
      ...JSON_HEADERS,
      'retry-after': String(RETRY_AFTER_SECONDS),
      connection: 'close',
    });
  }
  const problem = error instanceof IngestError ? error.details.problem : undefined;
  return c.body(rejectionBody(code, problem), REJECTIONS[code].status, JSON_HEADERS);
}

function rejectionCode(error: unknown): RejectionCode {
  if (error instanceof IngestError) return error.code;
  if (error instanceof QueueUnavailableError) return 'queue_unavailable';
  return 'internal_error';
}
