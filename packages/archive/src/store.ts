import type {
  AttemptRecord,
  DeliveryRecord,
  HistoryRecord,
  ReplayRecord,
} from '@groq-webhooks/queue';
import type { Pool, PoolClient } from 'pg';
import { type EventFilters, type EventStatus, filtersSql } from './filters.js';

/** A history record as read from its stream: where it came from makes it unique. */
export interface StreamEntry {
  /** The stream key. */
  stream: string;
  /** The stream entry id (`<ms>-<seq>`). */
  entryId: string;
  record: HistoryRecord;
}

/** One archived event, as listed. */
export interface EventSummary {
  eventId: string;
  type: string;
  /** The envelope's `created`, as sent. */
  created: string;
  /** ISO-8601: when the ingest first accepted it. */
  receivedAt: string;
  keyIndex: number | null;
  status: EventStatus;
  /** Accepted requests for it, duplicates included. */
  deliveries: number;
  /** Of which answered as duplicates. */
  duplicates: number;
  attempts: number;
  /** The last attempt's error, when it failed. */
  lastError: string | null;
  /** ISO-8601: when its last attempt ended. */
  lastAttemptAt: string | null;
}

/** One accepted request for an event. */
export interface DeliveryRow {
  receivedAt: string;
  outcome: string;
  keyIndex: number | null;
}

/** One attempt at an event. */
export interface AttemptRow {
  attempt: number;
  startedAt: string;
  endedAt: string;
  durationMs: number;
  worker: string;
  outcome: string;
  error: string | null;
  errorType: string | null;
  replayId: string | null;
}

/** Everything archived about one event. */
export interface EventHistory extends EventSummary {
  /** The envelope's JSON text exactly as received (null when no delivery of it was archived). */
  payload: string | null;
  deliveryList: DeliveryRow[];
  /** Oldest first. */
  attemptList: AttemptRow[];
}

/** Result of {@link HistoryStore.list}. */
export interface EventList {
  events: EventSummary[];
  /** True when more events match than were returned. */
  more: boolean;
}

/** Events per time bucket and status, for the chart. */
export interface EventCounts {
  since: string;
  until: string;
  bucketSeconds: number;
  /** Only buckets with events, oldest first. */
  buckets: { at: string; counts: Partial<Record<EventStatus, number>> }[];
}

/** An event as a replay needs it. */
export interface ReplayCandidate {
  eventId: string;
  type: string;
  receivedAt: Date;
  keyIndex: number;
  payload: string;
}

/** Where a keyset page of {@link HistoryStore.replayPage} stopped. */
export interface ReplayCursor {
  receivedAt: Date;
  eventId: string;
}

/** Bucket sizes the chart picks from: the smallest that gives at most {@link MAX_BUCKETS}. */
const BUCKET_SECONDS = [60, 300, 900, 3600, 6 * 3600, 86_400, 7 * 86_400] as const;
const MAX_BUCKETS = 360;

/**
 * An event's status from its last attempt (a skipped run says less than the run that did it)
 * and its last requeue: put back after its last attempt, it is `received` again.
 */
function statusSql(outcome: string, endedAt: string, requeuedAt: string): string {
  return `case when ${outcome} is null then 'received'
    when ${requeuedAt} is not null and ${requeuedAt} > ${endedAt} then 'received'
    else ${outcome} end`;
}

/** The batch's candidate for the event's own facts beats the row's: a payload, then earliest. */
const BETTER_FACTS =
  '(excluded.payload is null, excluded.received_at) < (e.payload is null, e.received_at)';
/** The batch's last attempt beats the row's (same order as `la` below). */
const LATER_ATTEMPT = `(excluded.last_outcome is not null and (e.last_outcome is null or
  (excluded.last_outcome = 'skipped', e.last_attempt_at, e.last_attempt, e.last_entry_id)
  < (e.last_outcome = 'skipped', excluded.last_attempt_at, excluded.last_attempt, excluded.last_entry_id)))`;
const ifBetter = (column: string) =>
  `case when ${BETTER_FACTS} then excluded.${column} else e.${column} end`;
const ifLater = (column: string) =>
  `case when ${LATER_ATTEMPT} then excluded.${column} else e.${column} end`;
const REQUEUED = 'greatest(e.last_requeue_at, excluded.last_requeue_at)';

/**
 * One batch in one statement: the deliveries and attempts inserted (a conflict means the entry
 * was archived before: it is not counted again), then each event upserted once with what the
 * inserted rows add. Parameters: $1–$6 deliveries, $7–$17 attempts, $18–$23 the events'
 * candidate facts (see {@link eventCandidates}). Rows are upserted in event-id order, so two
 * batches touching the same events lock them in the same order.
 */
const WRITE_EVENTS = `
with d as (
  insert into groq_deliveries (stream, entry_id, event_id, received_at, outcome, key_index)
  select s, e, id, to_timestamp(at / 1000.0), o, k
  from unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::text[], $6::int[])
    as u(s, e, id, at, o, k)
  on conflict do nothing
  returning event_id, received_at, outcome
), a as (
  insert into groq_attempts (stream, entry_id, event_id, attempt, started_at, ended_at, worker,
    outcome, error, error_type, replay_id)
  select s, e, id, n, to_timestamp(st / 1000.0), to_timestamp(en / 1000.0), w, o, er, et, r
  from unnest($7::text[], $8::text[], $9::text[], $10::int[], $11::float8[], $12::float8[],
    $13::text[], $14::text[], $15::text[], $16::text[], $17::text[])
    as u(s, e, id, n, st, en, w, o, er, et, r)
  on conflict do nothing
  returning event_id, attempt, ended_at, outcome, error, entry_id
), dn as (
  select event_id, count(*)::int as n, (count(*) filter (where outcome = 'duplicate'))::int as dup,
         max(received_at) filter (where outcome = 'requeued') as requeued
  from d group by event_id
), an as (
  select event_id, count(*)::int as n from a group by event_id
), la as (
  select distinct on (event_id) event_id, outcome, error, ended_at, attempt, entry_id from a
  order by event_id, (outcome = 'skipped'), ended_at desc, attempt desc, entry_id desc
)
insert into groq_events as e (event_id, type, created, received_at, key_index, payload,
  deliveries, duplicates, attempts, last_outcome, last_error, last_attempt_at, last_attempt,
  last_entry_id, last_requeue_at, status)
select c.id, c.t, c.cr, to_timestamp(c.at / 1000.0), c.k, c.p,
  coalesce(dn.n, 0), coalesce(dn.dup, 0), coalesce(an.n, 0),
  la.outcome, la.error, la.ended_at, la.attempt, la.entry_id, dn.requeued,
  ${statusSql('la.outcome', 'la.ended_at', 'dn.requeued')}
from unnest($18::text[], $19::text[], $20::text[], $21::float8[], $22::int[], $23::text[])
  as c(id, t, cr, at, k, p)
left join dn on dn.event_id = c.id
left join an on an.event_id = c.id
left join la on la.event_id = c.id
order by c.id
on conflict (event_id) do update set
  type = ${ifBetter('type')},
  created = ${ifBetter('created')},
  received_at = ${ifBetter('received_at')},
  key_index = ${ifBetter('key_index')},
  payload = ${ifBetter('payload')},
  deliveries = e.deliveries + excluded.deliveries,
  duplicates = e.duplicates + excluded.duplicates,
  attempts = e.attempts + excluded.attempts,
  last_outcome = ${ifLater('last_outcome')},
  last_error = ${ifLater('last_error')},
  last_attempt_at = ${ifLater('last_attempt_at')},
  last_attempt = ${ifLater('last_attempt')},
  last_entry_id = ${ifLater('last_entry_id')},
  last_requeue_at = ${REQUEUED},
  status = ${statusSql(ifLater('last_outcome'), ifLater('last_attempt_at'), REQUEUED)},
  updated_at = now()
where excluded.deliveries + excluded.attempts > 0 or ${BETTER_FACTS}`;

/** Arbitrary constant naming the pruner's advisory lock. */
const PRUNE_LOCK = 7_172_017_002;

/**
 * The history in PostgreSQL: idempotent batch writes (for the archiver), search, counts,
 * retention and the replay selection. Stateless over a `pg` pool the caller owns.
 */
export class HistoryStore {
  readonly #pool: Pool;

  constructor(pool: Pool) {
    this.#pool = pool;
  }

  /**
   * Writes a batch of stream entries in one transaction. Idempotent: each entry is inserted at
   * most once (keyed by stream and entry id), and an event's counts and last attempt move by the
   * entries actually inserted, so writing the same batch again, or batches out of order, ends in
   * the same state. The entries and their events go in one statement: each event's row is
   * written once per batch (a second pass recomputing it from its rows cost three times the
   * inserts: docs/history.md).
   */
  async writeBatch(entries: readonly StreamEntry[]): Promise<void> {
    const deliveries: (StreamEntry & { record: DeliveryRecord })[] = [];
    const attempts: (StreamEntry & { record: AttemptRecord })[] = [];
    const replays: ReplayRecord[] = [];
    for (const entry of entries) {
      const { record } = entry;
      if (record.kind === 'delivery') deliveries.push({ ...entry, record });
      else if (record.kind === 'attempt') attempts.push({ ...entry, record });
      else replays.push(record);
    }
    const events = eventCandidates(deliveries, attempts);
    await this.#transaction(async (client) => {
      for (const replay of replays) {
        await client.query(
          `insert into groq_replays (replay_id, filters, count, requested_at)
           values ($1, $2::jsonb, $3, to_timestamp($4 / 1000.0))
           on conflict do nothing`,
          [replay.replayId, validJson(replay.filters), replay.count, replay.requestedAt],
        );
      }
      if (events.length === 0) return;
      await client.query(WRITE_EVENTS, [
        deliveries.map((d) => d.stream),
        deliveries.map((d) => d.entryId),
        deliveries.map((d) => d.record.eventId),
        deliveries.map((d) => d.record.receivedAt),
        deliveries.map((d) => d.record.outcome),
        deliveries.map((d) => d.record.keyIndex),
        attempts.map((a) => a.stream),
        attempts.map((a) => a.entryId),
        attempts.map((a) => a.record.eventId),
        attempts.map((a) => a.record.attempt),
        attempts.map((a) => a.record.startedAt),
        attempts.map((a) => a.record.endedAt),
        attempts.map((a) => a.record.worker),
        attempts.map((a) => a.record.outcome),
        attempts.map((a) => a.record.error ?? null),
        attempts.map((a) => a.record.errorType ?? null),
        attempts.map((a) => a.record.replayId ?? null),
        events.map((c) => c.eventId),
        events.map((c) => c.type),
        events.map((c) => c.created),
        events.map((c) => c.at),
        events.map((c) => c.keyIndex),
        events.map((c) => c.payload),
      ]);
    });
  }

  /** Matching events, newest received first, at most `limit`. */
  async list(filters: EventFilters, limit: number): Promise<EventList> {
    const where = filtersSql(filters);
    const { rows } = await this.#pool.query<EventRow>(
      `select ${SUMMARY_COLUMNS} from groq_events where ${where.sql}
       order by received_at desc, event_id desc limit $${where.params.length + 1}`,
      [...where.params, limit + 1],
    );
    return { events: rows.slice(0, limit).map(toSummary), more: rows.length > limit };
  }

  /** How many events match. */
  async count(filters: EventFilters): Promise<number> {
    const where = filtersSql(filters);
    const { rows } = await this.#pool.query<{ n: number }>(
      `select count(*)::int as n from groq_events where ${where.sql}`,
      where.params,
    );
    return rows[0]?.n ?? 0;
  }

  /** One event with its payload, deliveries and attempts; undefined when not archived. */
  async show(eventId: string): Promise<EventHistory | undefined> {
    const [event, deliveries, attempts] = await Promise.all([
      this.#pool.query<EventRow & { payload: string | null }>(
        `select ${SUMMARY_COLUMNS}, payload from groq_events where event_id = $1`,
        [eventId],
      ),
      this.#pool.query<{ received_at: Date; outcome: string; key_index: number | null }>(
        `select received_at, outcome, key_index from groq_deliveries where event_id = $1
         order by received_at, entry_id`,
        [eventId],
      ),
      this.#pool.query<AttemptDbRow>(
        `select attempt, started_at, ended_at, worker, outcome, error, error_type, replay_id
         from groq_attempts where event_id = $1 order by started_at, attempt, entry_id`,
        [eventId],
      ),
    ]);
    const row = event.rows[0];
    if (row === undefined) return undefined;
    return {
      ...toSummary(row),
      payload: row.payload,
      deliveryList: deliveries.rows.map((d) => ({
        receivedAt: d.received_at.toISOString(),
        outcome: d.outcome,
        keyIndex: d.key_index,
      })),
      attemptList: attempts.rows.map((a) => ({
        attempt: a.attempt,
        startedAt: a.started_at.toISOString(),
        endedAt: a.ended_at.toISOString(),
        durationMs: a.ended_at.getTime() - a.started_at.getTime(),
        worker: a.worker,
        outcome: a.outcome,
        error: a.error,
        errorType: a.error_type,
        replayId: a.replay_id,
      })),
    };
  }

  /**
   * Events per bucket and status over [since, until) (default: the last hour up to `now`), with
   * the bucket size chosen so the range has at most a few hundred buckets.
   */
  async counts(filters: EventFilters, now = new Date()): Promise<EventCounts> {
    const until = filters.until ?? now;
    const since = filters.since ?? new Date(until.getTime() - 3600_000);
    const span = Math.max(1, (until.getTime() - since.getTime()) / 1000);
    const bucketSeconds =
      BUCKET_SECONDS.find((size) => span / size <= MAX_BUCKETS) ?? BUCKET_SECONDS.at(-1) ?? 60;
    const where = filtersSql({ ...filters, since, until });
    const n = where.params.length;
    const { rows } = await this.#pool.query<{ bucket: Date; status: EventStatus; n: number }>(
      `select date_bin(make_interval(secs => $${n + 1}), received_at, $${n + 2}::timestamptz)
                as bucket, status, count(*)::int as n
       from groq_events where ${where.sql}
       group by 1, 2 order by 1`,
      [...where.params, bucketSeconds, since],
    );
    const buckets = new Map<number, Partial<Record<EventStatus, number>>>();
    for (const row of rows) {
      const at = row.bucket.getTime();
      let counts = buckets.get(at);
      if (counts === undefined) {
        counts = {};
        buckets.set(at, counts);
      }
      counts[row.status] = row.n;
    }
    return {
      since: since.toISOString(),
      until: until.toISOString(),
      bucketSeconds,
      buckets: [...buckets].map(([at, counts]) => ({ at: new Date(at).toISOString(), counts })),
    };
  }

  /**
   * One page of events to replay, oldest received first, after `cursor` (keyset pagination:
   * each page is an index range scan however deep the replay is). Events archived without
   * their payload (only an attempt or a duplicate seen so far) cannot be replayed and are left
   * out.
   */
  async replayPage(
    filters: EventFilters,
    cursor: ReplayCursor | undefined,
    limit: number,
  ): Promise<ReplayCandidate[]> {
    const where = filtersSql(filters);
    const params: unknown[] = [...where.params];
    let after = '';
    if (cursor !== undefined) {
      params.push(cursor.receivedAt, cursor.eventId);
      after = ` and (received_at, event_id) > ($${params.length - 1}, $${params.length})`;
    }
    params.push(limit);
    const { rows } = await this.#pool.query<{
      event_id: string;
      type: string;
      received_at: Date;
      key_index: number | null;
      payload: string;
    }>(
      `select event_id, type, received_at, key_index, payload from groq_events
       where ${where.sql} and payload is not null${after}
       order by received_at, event_id limit $${params.length}`,
      params,
    );
    return rows.map((row) => ({
      eventId: row.event_id,
      type: row.type,
      receivedAt: row.received_at,
      keyIndex: row.key_index ?? 0,
      payload: row.payload,
    }));
  }

  /**
   * Deletes events received before `cutoff` (with their deliveries and attempts) and replays
   * requested before it, `batchSize` events per short transaction, so no lock is held long.
   * Only one pruner runs at a time (an advisory lock): returns undefined when another one holds
   * it, else the number of events deleted. `pause` runs between batches (to yield to other work).
   */
  async prune(
    cutoff: Date,
    options: { batchSize?: number; pause?: () => Promise<void>; signal?: AbortSignal } = {},
  ): Promise<number | undefined> {
    const batchSize = options.batchSize ?? 1000;
    const client = await this.#pool.connect();
    try {
      const { rows } = await client.query<{ locked: boolean }>(
        'select pg_try_advisory_lock($1) as locked',
        [PRUNE_LOCK],
      );
      if (rows[0]?.locked !== true) return undefined;
      try {
        let total = 0;
        for (;;) {
          const result = await client.query<{ n: number }>(
            `with doomed as (
               select event_id from groq_events where received_at < $1
               order by received_at limit $2 for update skip locked),
             gone_deliveries as (
               delete from groq_deliveries where event_id in (select event_id from doomed)),
             gone_attempts as (
               delete from groq_attempts where event_id in (select event_id from doomed)),
             gone as (
               delete from groq_events where event_id in (select event_id from doomed)
               returning 1)
             select count(*)::int as n from gone`,
            [cutoff, batchSize],
          );
          const deleted = result.rows[0]?.n ?? 0;
          total += deleted;
          if (deleted < batchSize || options.signal?.aborted) break;
          await options.pause?.();
        }
        await client.query('delete from groq_replays where requested_at < $1', [cutoff]);
        return total;
      } finally {
        await client.query('select pg_advisory_unlock($1)', [PRUNE_LOCK]).catch(() => {});
      }
    } finally {
      client.release();
    }
  }

  async #transaction(work: (client: PoolClient) => Promise<void>): Promise<void> {
    const client = await this.#pool.connect();
    try {
      await client.query('begin');
      await work(client);
      await client.query('commit');
    } catch (error) {
      await client.query('rollback').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }
}

const SUMMARY_COLUMNS = `event_id, type, created, received_at, key_index, status, deliveries,
  duplicates, attempts, last_error, last_attempt_at`;

interface EventRow {
  event_id: string;
  type: string;
  created: string;
  received_at: Date;
  key_index: number | null;
  status: EventStatus;
  deliveries: number;
  duplicates: number;
  attempts: number;
  last_error: string | null;
  last_attempt_at: Date | null;
}

interface AttemptDbRow {
  attempt: number;
  started_at: Date;
  ended_at: Date;
  worker: string;
  outcome: string;
  error: string | null;
  error_type: string | null;
  replay_id: string | null;
}

function toSummary(row: EventRow): EventSummary {
  return {
    eventId: row.event_id,
    type: row.type,
    created: row.created,
    receivedAt: row.received_at.toISOString(),
    keyIndex: row.key_index,
    status: row.status,
    deliveries: row.deliveries,
    duplicates: row.duplicates,
    attempts: row.attempts,
    lastError: row.last_error,
    lastAttemptAt: row.last_attempt_at?.toISOString() ?? null,
  };
}

/** The best candidate in a batch for an event's own facts (see {@link HistoryStore.writeBatch}). */
interface EventCandidate {
  eventId: string;
  type: string;
  created: string;
  at: number;
  keyIndex: number | null;
  payload: string | null;
}

function eventCandidates(
  deliveries: readonly { record: DeliveryRecord }[],
  attempts: readonly { record: AttemptRecord }[],
): EventCandidate[] {
  const best = new Map<string, EventCandidate>();
  const offer = (candidate: EventCandidate): void => {
    const current = best.get(candidate.eventId);
    if (current === undefined || better(candidate, current)) {
      best.set(candidate.eventId, candidate);
    }
  };
  for (const { record } of deliveries) {
    offer({
      eventId: record.eventId,
      type: record.type,
      created: record.created,
      at: record.receivedAt,
      keyIndex: record.payload === undefined ? null : record.keyIndex,
      payload: record.payload ?? null,
    });
  }
  for (const { record } of attempts) {
    offer({
      eventId: record.eventId,
      type: record.type,
      created: '',
      at: record.startedAt,
      keyIndex: null,
      payload: null,
    });
  }
  return [...best.values()];
}

/** The same order as the SQL: a payload first, then the earliest. */
function better(a: EventCandidate, b: EventCandidate): boolean {
  const aRank = a.payload === null ? 1 : 0;
  const bRank = b.payload === null ? 1 : 0;
  return aRank !== bRank ? aRank < bRank : a.at < b.at;
}

function validJson(text: string): string {
  try {
    JSON.parse(text);
    return text;
  } catch {
    return JSON.stringify({ unparsed: text });
  }
}
