import { Hono } from 'hono';
import type { AppDeps, IngestEnv } from './types.js';
import { createWebhookApp, errorResponse } from './webhook.js';

export { RETRY_AFTER_SECONDS } from './webhook.js';

/** Path Groq delivers webhooks to. */
export const WEBHOOK_PATH = '/webhooks/groq';

const JSON_HEADERS = { 'content-type': 'application/json' } as const;
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

/**
 * Builds the standalone ingest's HTTP app: the webhook receiver ({@link createWebhookApp})
 * mounted at `/webhooks/groq`, plus `/healthz`, `/readyz` and `/metrics`.
 * Side-effect free: it listens nowhere and keeps no state beyond what `deps` hold.
 */
export function createApp(deps: AppDeps): Hono<IngestEnv> {
  const { logger, metrics } = deps;
  const allowedMethods = new Map(ALLOWED_METHODS);
  if (deps.metricsRoute === false) allowedMethods.delete('/metrics');
  const app = new Hono<IngestEnv>();
  // `route()` copies the receiver's routes in: the webhook costs no extra dispatch here.
  app.route(WEBHOOK_PATH, createWebhookApp(deps));
  app.get('/healthz', (c) => c.json({ ok: true }));

  app.get('/readyz', async (c) => {
    const ready = await deps.isReady();
    return c.json({ ready }, ready ? 200 : 503);
  });

  if (deps.metricsRoute !== false) {
    app.get('/metrics', async (c) => {
      const text = await metrics.registry.metrics();
      return c.body(text, 200, { 'content-type': metrics.registry.contentType });
    });
  }

  // A known path with another method: 405 naming the allowed ones. Answered here rather than by
  // catch-all routes, which would also match the webhook's POST and cost every request a
  // middleware chain.
  app.notFound((c) => {
    const allow = allowedMethods.get(c.req.path);
    return allow === undefined
      ? c.body(NOT_FOUND, 404, JSON_HEADERS)
      : c.body(METHOD_NOT_ALLOWED, 405, { ...JSON_HEADERS, allow });
  });

  // Errors of the other routes (bugs: they throw nothing on purpose) become a 500 naming nothing.
  app.onError((error, c) => {
    logger.error({ err: error, path: c.req.path }, 'request failed');
    return errorResponse(c, 'internal_error', error);
  });

  return app;
}
