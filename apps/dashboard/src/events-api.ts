import {
  type EventFilters,
  FilterError,
  type HistoryStore,
  parseFilters,
  type RawFilters,
  type ReplayResult,
} from '@groq-webhooks/archive';
import { type Context, Hono } from 'hono';

/** The history as the dashboard uses it. */
export interface DashboardHistory {
  /** The store, once its database answers and its schema is up to date (else it throws). */
  store(): Promise<HistoryStore>;
  /** Enqueues the matching events as a new replay (needs Redis). */
  replay(filters: EventFilters, limit: number | undefined): Promise<ReplayResult>;
}

/** Dependencies of {@link eventsApi}. */
export interface EventsApiDeps {
  /** Undefined when `ARCHIVE_DATABASE_URL` is not set: the routes say history is off. */
  history: DashboardHistory | undefined;
  /** True while Redis answers (only replays need it). */
  isRedisReady: () => boolean;
}

/** Longest `limit` the list endpoint accepts. */
const MAX_LIST_LIMIT = 1000;
/** How many ids a dry run lists. */
const DRY_RUN_IDS = 10;

/** The JSON error of the history routes when `ARCHIVE_DATABASE_URL` is unset. */
export const HISTORY_DISABLED = {
  error: 'Event history is off: set ARCHIVE_DATABASE_URL',
  code: 'history_disabled',
} as const;

class BadRequest extends Error {}

function filtersOf(raw: RawFilters): EventFilters {
  try {
    return parseFilters(raw);
  } catch (error) {
    if (error instanceof FilterError) throw new BadRequest(error.message);
    throw error;
  }
}

function limitOf(raw: string | number | undefined, fallback: number | undefined, max: number) {
  if (raw === undefined || raw === '') return fallback;
  const text = String(raw);
  if (!/^[0-9]{1,9}$/.test(text) || Number(text) < 1 || Number(text) > max) {
    throw new BadRequest(`limit must be a whole number from 1 to ${max}`);
  }
  return Number(text);
}

function queryFilters(c: Context): RawFilters {
  return {
    type: c.req.query('type') || undefined,
    status: c.req.query('status') || undefined,
    since: c.req.query('since') || undefined,
    until: c.req.query('until') || undefined,
    idPrefix: c.req.query('idPrefix') || undefined,
  };
}

/**
 * The history's JSON API (mounted under `/api`): `GET /events`, `GET /events/:eventId`,
 * `GET /event-counts` (the chart's per-bucket counts by status) and `POST /events/replay`.
 * Without a history they answer 501 `history_disabled`; while its database is unreachable, 503
 * `history_unavailable`.
 */
export function eventsApi(deps: EventsApiDeps): Hono {
  const api = new Hono();
  // A wrapper, not `use('*')`: mounted under /api, such middleware would cover the other APIs.
  const guarded =
    (handler: (c: Context, history: DashboardHistory) => Promise<Response>) =>
    async (c: Context): Promise<Response> => {
      if (deps.history === undefined) return c.json(HISTORY_DISABLED, 501);
      try {
        return await handler(c, deps.history);
      } catch (error) {
        if (error instanceof BadRequest) {
          return c.json({ error: error.message, code: 'invalid_request' }, 400);
        }
        c.header('Retry-After', '5');
        return c.json({ error: 'History database unavailable', code: 'history_unavailable' }, 503);
      }
    };

  api.get(
    '/events',
    guarded(async (c, history) => {
      const filters = filtersOf(queryFilters(c));
      const limit = limitOf(c.req.query('limit'), 50, MAX_LIST_LIMIT) ?? 50;
      return c.json(await (await history.store()).list(filters, limit));
    }),
  );

  api.get(
    '/event-counts',
    guarded(async (c, history) => {
      const filters = filtersOf(queryFilters(c));
      return c.json(await (await history.store()).counts(filters));
    }),
  );

  api.post(
    '/events/replay',
    guarded(async (c, history) => {
      let body: Record<string, unknown>;
      try {
        const parsed: unknown = await c.req.json();
        if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
          throw new Error();
        body = parsed as Record<string, unknown>;
      } catch {
        throw new BadRequest('body must be a JSON object of filters');
      }
      const text = (key: string): string | undefined => {
        const value = body[key];
        if (value === undefined || value === null || value === '') return undefined;
        if (typeof value !== 'string') throw new BadRequest(`${key} must be a string`);
        return value;
      };
      const filters = filtersOf({
        type: text('type'),
        status: text('status'),
        since: text('since'),
        until: text('until'),
        idPrefix: text('idPrefix'),
      });
      const limitValue = body.limit;
      if (limitValue !== undefined && typeof limitValue !== 'number') {
        throw new BadRequest('limit must be a number');
      }
      const limit = limitOf(limitValue, undefined, 100_000_000);
      const store = await history.store();
      if (body.dryRun === true) {
        const matched = Math.min(await store.count(filters), limit ?? Number.POSITIVE_INFINITY);
        const first = await store.replayPage(filters, undefined, Math.min(DRY_RUN_IDS, matched));
        return c.json({ dryRun: true, matched, first: first.map((e) => e.eventId) });
      }
      if (!deps.isRedisReady()) {
        c.header('Retry-After', '5');
        return c.json({ error: 'Queue unavailable', code: 'queue_unavailable' }, 503);
      }
      return c.json(await history.replay(filters, limit));
    }),
  );

  api.get(
    '/events/:eventId',
    guarded(async (c, history) => {
      const event = await (await history.store()).show(c.req.param('eventId') ?? '');
      if (event === undefined) return c.json({ error: 'Unknown event', code: 'not_found' }, 404);
      return c.json(event);
    }),
  );

  return api;
}
