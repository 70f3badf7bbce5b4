import type { IncomingMessage } from 'node:http';
import { parseEnvelope } from '@groq-webhooks/core';
import { type EventJobData, QueueUnavailableError } from '@groq-webhooks/queue';
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
import type { AppDeps, OutcomeCode } from './types.js';

/** Path Groq delivers webhooks to. */
export const WEBHOOK_PATH = '/webhooks/groq';
/** Seconds a sender is asked to wait after a 503. */
export const RETRY_AFTER_SECONDS = 5;

const JSON_HEADERS = { 'content-type': 'application/json' } as const;
const RECEIVED = JSON.stringify({ received: true });
const DUPLICATE = JSON.stringify({ received: true, duplicate: true });
const NOT_FOUND = JSON.stringify({ error: 'Not found', code: 'not_found' });
/** The methods each path answers (HEAD with GET: Hono serves it with the GET route). */
const ALLOWED_METHODS = new Map([
  [WEBHOOK_PATH, 'POST'],
  ['/healthz', 'GET, HEAD'],
  ['/readyz', 'GET, HEAD'],
  ['/metrics', 'GET, HEAD'],
]);
const METHOD_NOT_ALLOWED = JSON.stringify({
  error: 'Method not allowed',
  code: 'method_not_allowed',
});

/** What one webhook request came to, filled in as it goes and written as one log line. */
class RequestOutcome {
  code: OutcomeCode = 'internal_error';
  eventId: string | undefined = undefined;
  type: string | undefined = undefined;
  keyIndex: number | undefined = undefined;
  error: Error | undefined = undefined;
  /** The request's spans, when tracing. */
  trace: RequestTrace | undefined = undefined;
}

/** `@hono/node-server` passes Node's request as `c.env.incoming`; `app.request()` passes none. */
type Env = {
  Bindings: { incoming?: IncomingMessage };
};

/**
 * Builds the ingest HTTP app: `POST /webhooks/groq` (SPEC §4), `/healthz`, `/readyz`, `/metrics`.
 * Side-effect free: it listens nowhere and keeps no state beyond what `deps` hold.
 */
export function createApp(deps: AppDeps): Hono<Env> {
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
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const isoNow = isoClock(now);
  const app = new Hono<Env>();

  // One handler, not a middleware chain: Hono then calls it directly, without composing.
  app.post(WEBHOOK_PATH, async function webhook(c) {
    const started = performance.now();
    const outcome = new RequestOutcome();
    if (tracing !== undefined) outcome.trace = new RequestTrace(tracing, WEBHOOK_PATH);
    logger.debug('webhook request started');
    let response: Response;
    try {
      response = await receive(c, outcome);
    } catch (error) {
      outcome.code = rejectionCode(error);
      outcome.error = error instanceof Error ? error : new Error(String(error));
      response = errorResponse(c, outcome.code, error);
    }
    metrics.countRequest(outcome.code);
    outcome.trace?.end(outcome, response.status);
    logOutcome(outcome, response.status, performance.now() - started);
    return response;
  });

  app.get('/healthz', (c) => c.json({ ok: true }));

  app.get('/readyz', async (c) => {
    const ready = await deps.isReady();
    return c.json({ ready }, ready ? 200 : 503);
  });

  app.get('/metrics', async (c) => {
    const text = await metrics.registry.metrics();
    return c.body(text, 200, { 'content-type': metrics.registry.contentType });
  });

  // A known path with another method: 405 naming the allowed ones. Answered here rather than by
  // catch-all routes, which would also match the webhook's POST and cost every request a
  // middleware chain.
  app.notFound((c) => {
    const allow = ALLOWED_METHODS.get(c.req.path);
    return allow === undefined
      ? c.body(NOT_FOUND, 404, JSON_HEADERS)
      : c.body(METHOD_NOT_ALLOWED, 405, { ...JSON_HEADERS, allow });
  });

  // Errors of the other routes (bugs: they throw nothing on purpose) become a 500 naming nothing.
  app.onError((error, c) => {
    logger.error({ err: error, path: c.req.path }, 'request failed');
    return errorResponse(c, 'internal_error', error);
  });

  /** Receives one webhook: read, verify, parse, enqueue. Throws what it refuses. */
  async function receive(c: Context<Env>, outcome: RequestOutcome): Promise<Response> {
    // Typed as always there, but `app.request()` without an env leaves it undefined.
    const incoming = (c.env as Env['Bindings'] | undefined)?.incoming;
    // Node's raw headers when served by @hono/node-server; the Web headers otherwise (both join
    // repeated values with ", ").
    let headers: WebhookHeaders | undefined;
    let body: Uint8Array;
    if (incoming === undefined) {
      body = await readBody(c.req.raw, maxBodyBytes);
    } else {
      headers = webhookHeaders(incoming.rawHeaders);
      body = await readIncoming(incoming, headers, maxBodyBytes);
    }
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
    const parsed = parseEnvelope(parseJson(text));
    if (!parsed.ok) throw new IngestError('invalid_payload', { problem: parsed.problem });
    const event = parsed.envelope;
    outcome.eventId = event.id;
    outcome.type = event.type;

    const data: EventJobData = {
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
function errorResponse(c: Context<Env>, code: RejectionCode, error: unknown): Response {
  if (code === 'queue_unavailable') {
    return c.body(rejectionBody(code), 503, {
      ...JSON_HEADERS,
      'retry-after': String(RETRY_AFTER_SECONDS),
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
