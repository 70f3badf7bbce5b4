import type { FailedEvents, FailedOperationOutcome } from '@groq-webhooks/queue';
import type { Logger } from '@groq-webhooks/telemetry';
import { type Context, Hono } from 'hono';
import { adminAuth, sameOriginOnly } from './auth.js';
import { bullBoard } from './bull-board.js';
import { type DashboardHistory, eventsApi } from './events-api.js';
import { EVENTS_PATH, eventsPage } from './events-page.js';

/** Dependencies of {@link createApp}. */
export interface DashboardDeps {
  /** The failed-event operations over every queue shard. */
  events: FailedEvents;
  /** Required on every route but `/healthz`. */
  adminToken: string;
  /** True while Redis answers; a failed operation is then a 503 rather than a 500. */
  isRedisReady: () => boolean;
  /**
   * Waits up to `timeoutMs` for Redis to connect. API calls made while it (re)connects wait
   * this long, then get a 503, instead of failing at once. Default: no wait.
   */
  waitForRedis?: (timeoutMs: number) => Promise<boolean>;
  /** The event history; undefined when `ARCHIVE_DATABASE_URL` is not set. */
  history?: DashboardHistory | undefined;
  logger?: Logger;
}

/** Bull Board is served at the root: the dashboard is its own port (SPEC §7). */
export const BOARD_PATH = '/';
/** How long an API call waits for a (re)connecting Redis before answering 503. */
const REDIS_WAIT_MS = 2000;
/** Longest `limit` the list endpoint accepts. */
const MAX_LIST_LIMIT = 1000;

function queueUnavailable(c: Context): Response {
  c.header('Retry-After', '5');
  return c.json({ error: 'Queue unavailable', code: 'queue_unavailable' }, 503);
}

function outcomeResponse(c: Context, outcome: FailedOperationOutcome, done: object): Response {
  if (outcome === 'ok') return c.json(done);
  if (outcome === 'not_found') return c.json({ error: 'Unknown event', code: 'not_found' }, 404);
  return c.json({ error: 'Event is not in the failed state', code: 'not_failed' }, 409);
}

/**
 * The dashboard: Bull Board for the queue shards plus a JSON API for the CLI's operations,
 * everything behind `ADMIN_TOKEN` except a `/healthz` that says nothing but "ok".
 * Side-effect free: the caller owns the Redis client and the server.
 */
export function createApp(deps: DashboardDeps): Hono {
  const app = new Hono();

  app.get('/healthz', (c) => c.text('ok'));

  app.use('*', adminAuth(deps.adminToken));
  app.use('*', sameOriginOnly());
  app.use('*', async (c, next) => {
    await next();
    // Admin pages must not be cached by shared proxies nor framed by other sites.
    c.header('Cache-Control', 'no-store');
    c.header('X-Frame-Options', 'DENY');
    c.header('Referrer-Policy', 'same-origin');
  });

  // The history needs PostgreSQL, not Redis: registered before the Redis gate below.
  app.route('/api', eventsApi({ history: deps.history, isRedisReady: deps.isRedisReady }));
  app.get(EVENTS_PATH, (c) => c.html(eventsPage(deps.history !== undefined)));

  app.use('/api/*', async (c, next) => {
    if (!deps.isRedisReady() && !(await deps.waitForRedis?.(REDIS_WAIT_MS))) {
      return queueUnavailable(c);
    }
    await next();
  });

  app.get('/api/failed', async (c) => {
    const raw = c.req.query('limit') ?? '50';
    if (!/^[0-9]{1,7}$/.test(raw) || Number(raw) < 1 || Number(raw) > MAX_LIST_LIMIT) {
      return c.json(
        {
          error: `limit must be a whole number from 1 to ${MAX_LIST_LIMIT}`,
          code: 'invalid_request',
        },
        400,
      );
    }
    return c.json(await deps.events.list({ limit: Number(raw) }));
  });
  app.post('/api/failed/retry-all', async (c) => c.json(await deps.events.retryAll()));
  app.post('/api/failed/remove-all', async (c) => c.json(await deps.events.removeAll()));
  app.get('/api/failed/:eventId', async (c) => {
    const detail = await deps.events.show(c.req.param('eventId'));
    if (detail === undefined) return c.json({ error: 'Unknown event', code: 'not_found' }, 404);
    if (detail.payloadProblem !== undefined) {
      deps.logger?.warn(
        { eventId: detail.eventId, problem: detail.payloadProblem },
        'failed event shown without its payload',
      );
    }
    return c.json(detail);
  });
  app.delete('/api/failed/:eventId', async (c) =>
    outcomeResponse(c, await deps.events.remove(c.req.param('eventId')), { removed: true }),
  );
  app.post('/api/failed/:eventId/retry', async (c) =>
    outcomeResponse(c, await deps.events.retry(c.req.param('eventId')), { retried: true }),
  );
  app.get('/api/stats', async (c) => c.json(await deps.events.stats()));

  app.route(BOARD_PATH, bullBoard(deps.events.queues, BOARD_PATH, deps.logger));

  app.notFound((c) => c.json({ error: 'Not found', code: 'not_found' }, 404));
  app.onError((error, c) => {
    if (!deps.isRedisReady()) return queueUnavailable(c);
    deps.logger?.error({ err: error, method: c.req.method, path: c.req.path }, 'request failed');
    return c.json({ error: 'Internal error', code: 'internal_error' }, 500);
  });
  return app;
}
