/** Final statuses of an archived event (SPEC §7 `events list --status`). */
export const EVENT_STATUSES = [
  /** Accepted, no attempt finished yet (or put back after failing). */
  'received',
  /** The last attempt failed and another one is due. */
  'retrying',
  'completed',
  'failed',
  /** Already handled when its job ran (done-marker): skipped. */
  'skipped',
  /** Unknown event type: completed without a handler. */
  'unhandled',
  /** Older than what its resource already saw (per-resource ordering): completed unrun. */
  'stale',
] as const;

/** One of {@link EVENT_STATUSES}. */
export type EventStatus = (typeof EVENT_STATUSES)[number];

/** What `events list` and `events replay` select by. Every field is optional. */
export interface EventFilters {
  type?: string;
  status?: EventStatus;
  /** Received at or after (inclusive). */
  since?: Date;
  /** Received before (exclusive). */
  until?: Date;
  /** Event ids starting with this. */
  idPrefix?: string;
}

/** The filters as the CLI flags and the API's query parameters give them: text. */
export interface RawFilters {
  type?: string | undefined;
  status?: string | undefined;
  since?: string | undefined;
  until?: string | undefined;
  idPrefix?: string | undefined;
}

/** A filter value that cannot be used; its message names the filter and what is expected. */
export class FilterError extends Error {
  override name = 'FilterError';
  constructor(
    /** The filter at fault (`idPrefix` for the id prefix). */
    readonly field: keyof RawFilters,
    /** What is wrong, e.g. `must be an ISO-8601 time`. */
    readonly problem: string,
  ) {
    super(`${field} ${problem}`);
  }
}

/**
 * Checks and converts text filters. Times are ISO-8601 with a date (`2026-11-28`,
 * `2026-11-28T14:00:00Z`, with an offset or without one: then UTC). Throws {@link FilterError}.
 */
export function parseFilters(raw: RawFilters): EventFilters {
  const filters: EventFilters = {};
  if (raw.type !== undefined) {
    if (raw.type.length === 0 || raw.type.length > 255) {
      throw new FilterError('type', 'must be 1 to 255 characters');
    }
    filters.type = raw.type;
  }
  if (raw.status !== undefined) {
    if (!(EVENT_STATUSES as readonly string[]).includes(raw.status)) {
      throw new FilterError('status', `must be one of ${EVENT_STATUSES.join(', ')}`);
    }
    filters.status = raw.status as EventStatus;
  }
  if (raw.since !== undefined) filters.since = isoTime('since', raw.since);
  if (raw.until !== undefined) filters.until = isoTime('until', raw.until);
  if (filters.since && filters.until && filters.since >= filters.until) {
    throw new FilterError('since', 'must be before until');
  }
  if (raw.idPrefix !== undefined) {
    if (raw.idPrefix.length === 0 || raw.idPrefix.length > 255) {
      throw new FilterError('idPrefix', 'must be 1 to 255 characters');
    }
    filters.idPrefix = raw.idPrefix;
  }
  return filters;
}

const ISO_TIME =
  /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i;

function isoTime(name: 'since' | 'until', value: string): Date {
  const text = value.trim();
  if (!ISO_TIME.test(text)) {
    throw new FilterError(name, 'must be an ISO-8601 time, e.g. 2026-11-28T14:00:00Z');
  }
  // A time without a zone is UTC, not the machine's local time: the same command gives the same
  // answer wherever it runs.
  const zoned = /[T ]\d{2}:\d{2}/.test(text) && !/(Z|[+-]\d{2}:?\d{2})$/i.test(text);
  const date = new Date(zoned ? `${text.replace(' ', 'T')}Z` : text);
  if (Number.isNaN(date.getTime())) throw new FilterError(name, 'is not a valid time');
  return date;
}

/** The filters as JSON-friendly values (for the replay record and API answers). */
export function filtersJson(filters: EventFilters): Record<string, string> {
  const out: Record<string, string> = {};
  if (filters.type !== undefined) out.type = filters.type;
  if (filters.status !== undefined) out.status = filters.status;
  if (filters.since !== undefined) out.since = filters.since.toISOString();
  if (filters.until !== undefined) out.until = filters.until.toISOString();
  if (filters.idPrefix !== undefined) out.idPrefix = filters.idPrefix;
  return out;
}

/** A WHERE clause (without the keyword; `true` when empty) and its parameters. */
export interface SqlCondition {
  sql: string;
  params: unknown[];
}

/** The filters as SQL over `groq_events`, numbering parameters from `$<first>`. */
export function filtersSql(filters: EventFilters, first = 1): SqlCondition {
  const parts: string[] = [];
  const params: unknown[] = [];
  const param = (value: unknown): string => {
    params.push(value);
    return `$${first + params.length - 1}`;
  };
  if (filters.type !== undefined) parts.push(`type = ${param(filters.type)}`);
  if (filters.status !== undefined) parts.push(`status = ${param(filters.status)}`);
  if (filters.since !== undefined) parts.push(`received_at >= ${param(filters.since)}`);
  if (filters.until !== undefined) parts.push(`received_at < ${param(filters.until)}`);
  if (filters.idPrefix !== undefined) {
    // event_id is `collate "C"`, so a LIKE prefix is a range scan of the primary key.
    parts.push(`event_id like ${param(`${escapeLike(filters.idPrefix)}%`)}`);
  }
  return { sql: parts.length === 0 ? 'true' : parts.join(' and '), params };
}

function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}
